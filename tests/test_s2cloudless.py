"""s2cloudless on a small synthetic Sentinel-2 L1C scene read from its native 10/20/60 m grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stacmask.constants import (
    CLEAR,
    CLOUD,
    NODATA,
    PROBABILITY_NODATA,
    S2CLOUDLESS_BANDS,
    SENTINEL2_BANDS,
    SHADOW,
    WATER,
)
from stacmask.errors import DecodeError
from stacmask.methods.s2cloudless import (
    S2CloudlessConfig,
    classify,
    cloud_mask,
    cloud_probability,
    probability_percent,
)
from stacmask.reading.grid import grid_of, read_stack
from tests.sample_sentinel2 import SyntheticS2Scene, write_scene

KEY_OF = {band_id: key for band_id, key, _ in SENTINEL2_BANDS}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SyntheticS2Scene:
    return write_scene(Path(tmp_path_factory.mktemp("s2")), baseline="05.09")


@pytest.fixture(scope="module")
def reflectance(scene: SyntheticS2Scene) -> np.ndarray:
    hrefs = [str(scene.files[KEY_OF[b]]) for b in S2CLOUDLESS_BANDS]
    grid = grid_of(str(scene.files["blue"]), 60)
    assert (grid.width, grid.height) == scene.truth.shape[::-1]
    n = len(hrefs)
    return read_stack(hrefs, grid, scale=[1e-4] * n, offset=[-0.1] * n)


def test_bands_sit_on_their_native_grids(scene: SyntheticS2Scene) -> None:
    size = scene.truth.shape[0]
    for _, key, gsd in SENTINEL2_BANDS:
        grid = grid_of(str(scene.files[key]))
        assert grid.resolution == gsd
        assert grid.width == size * 60 // gsd


def test_probability_separates_cloud_from_clear(
    scene: SyntheticS2Scene, reflectance: np.ndarray
) -> None:
    probability = cloud_probability(reflectance)
    truth = scene.truth
    assert np.isnan(probability[truth == NODATA]).all()
    assert not np.isnan(probability[truth != NODATA]).any()
    assert probability[truth == CLOUD].min() > 0.9
    for surface in (CLEAR, WATER, SHADOW):
        assert probability[truth == surface].max() < 0.2, surface
    percent = probability_percent(probability)
    assert percent.dtype == np.uint8
    assert (percent[truth == NODATA] == PROBABILITY_NODATA).all()
    assert percent[truth == CLOUD].min() >= 90 and percent[truth == CLEAR].max() <= 20


def test_mask_post_processing(scene: SyntheticS2Scene, reflectance: np.ndarray) -> None:
    probability = cloud_probability(reflectance)
    cloud = scene.truth == CLOUD
    plain = cloud_mask(probability, S2CloudlessConfig(average_over=None, dilation_size=None))
    assert (plain == (probability > 0.4)).all()
    assert (plain == cloud).mean() > 0.99
    dilated = cloud_mask(probability, S2CloudlessConfig(average_over=None, dilation_size=2))
    assert dilated[plain].all() and dilated.sum() > plain.sum()
    # Disk averaging smooths the edge; the default config still covers the whole cloud.
    default = cloud_mask(probability)
    assert default[cloud].all()
    assert default.sum() < 2.0 * cloud.sum()


def test_classify_fuses_fmask_and_keeps_probability(
    scene: SyntheticS2Scene, reflectance: np.ndarray
) -> None:
    truth = scene.truth
    alone = classify(reflectance, config=S2CloudlessConfig(dilation_size=None))
    assert (alone.classes[truth == CLOUD] == CLOUD).all()
    assert (alone.classes[truth == NODATA] == NODATA).all()
    assert not np.isin(alone.classes, [SHADOW, WATER]).any()  # s2cloudless finds cloud only
    # An Fmask result that knows shadow and water but missed half of the cloud.
    fmask = truth.copy()
    fmask[(truth == CLOUD) & (np.arange(truth.shape[1]) % 2 == 0)] = CLEAR
    fused = classify(reflectance, config=S2CloudlessConfig(dilation_size=None), fmask=fmask)
    assert (fused.classes[truth == CLOUD] == CLOUD).all()
    assert (fused.classes[truth == SHADOW] == SHADOW).all()
    assert (fused.classes[truth == WATER] == WATER).all()
    np.testing.assert_array_equal(fused.probability, alone.probability)


def test_wrong_inputs_say_how_to_fix_them(reflectance: np.ndarray) -> None:
    with pytest.raises(DecodeError, match="B01, B02, B04"):
        cloud_probability(reflectance[:4])
    with pytest.raises(DecodeError, match="floats"):
        cloud_probability(np.nan_to_num(reflectance * 10000).astype(np.uint16))  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="valid mask"):
        cloud_probability(reflectance, np.ones((3, 3), bool))
    with pytest.raises(DecodeError, match="threshold"):
        S2CloudlessConfig(threshold=40)


def test_source_reads_an_hls_fmask_on_another_grid(scene: SyntheticS2Scene, tmp_path: Path) -> None:
    import rasterio
    from affine import Affine

    from stacmask.reading.warped import Sentinel2Source
    from stacmask.sensors.profiles import get_profile
    from stacmask.sensors.sensor_scene import scene_info

    # HLS-style bits at 30 m covering only the upper half of the 60 m scene.
    size = scene.truth.shape[0]
    half = scene.truth[: size // 2]
    bits = np.where(half == CLOUD, 1 << 1, 0) | np.where(half == WATER, 1 << 5, 0)
    bits = np.repeat(np.repeat(bits, 2, axis=0), 2, axis=1).astype(np.uint8)
    path = tmp_path / "hls_fmask.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=bits.shape[1],
        height=bits.shape[0],
        count=1,
        dtype="uint8",
        nodata=255,
        crs="EPSG:32633",
        transform=Affine(30.0, 0.0, scene.transform60.c, 0.0, -30.0, scene.transform60.f),
    ) as dst:
        dst.write(bits, 1)
    profile = get_profile("sentinel2-l1c")
    grid = grid_of(str(scene.files["blue"]), 60)
    rgbn = [str(scene.files[profile.asset_key(b)]) for b in profile.rgbn]
    model = [str(scene.files[KEY_OF[b]]) for b in S2CLOUDLESS_BANDS]
    import pystac

    item = pystac.Item("x", None, None, scene.acquired, {"view:sun_elevation": 50.0})
    source = Sentinel2Source(
        rgbn,
        [(1e-4, -0.1)] * 4,
        model,
        [(1e-4, -0.1)] * 10,
        grid,
        scene_info(item, grid),
        fmask_href=str(path),
        fmask_encoding="hls",
    )
    fmask = source.read_fmask()
    assert fmask is not None and fmask.shape == scene.truth.shape
    top = scene.truth[: size // 2]
    assert (fmask[: size // 2][top == CLOUD] == CLOUD).all()
    assert (fmask[: size // 2][top == WATER] == WATER).all()
    assert (fmask[size // 2 :] == NODATA).all()  # outside the Fmask raster
    assert source.read_model_bands(next(iter(grid.strips()))).shape[0] == 10
