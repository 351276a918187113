"""s2cloudless on a small synthetic Sentinel-2 L1C scene read from its native 10/20/60 m grids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

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
from stacmask.methods.fmask import decode_fmask
from stacmask.methods.s2cloudless import (
    FMASK_BAND,
    PROBABILITY_LAYER,
    S2CloudlessConfig,
    S2CloudlessMethod,
    classify,
    cloud_mask,
    cloud_probability,
    probability_percent,
)
from stacmask.pipeline.masking import as_mask_strip
from stacmask.reading.grid import grid_of
from stacmask.reading.rasters import RasterBandSource
from stacmask.sensors.inputs import SceneInputs, SensorOptions
from stacmask.sensors.registry import get_sensor
from tests.sample_sentinel2 import SyntheticS2Scene, sentinel2_item, write_scene

KEY_OF = {band_id: key for band_id, key, _ in SENTINEL2_BANDS}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SyntheticS2Scene:
    return write_scene(Path(tmp_path_factory.mktemp("s2")), baseline="05.09")


def scene_inputs(
    scene: SyntheticS2Scene, extra: dict[str, dict[str, Any]] | None = None, **options: Any
) -> SceneInputs:
    """The scene's inputs from its L1C item (local hrefs), through the sentinel2-l1c sensor."""
    item = sentinel2_item(scene, {key: str(path) for key, path in scene.files.items()})
    item["assets"].update(extra or {})
    return get_sensor("sentinel2-l1c").scene_inputs(
        pystac.Item.from_dict(item), SensorOptions(**options)
    )


@pytest.fixture(scope="module")
def reflectance(scene: SyntheticS2Scene) -> np.ndarray:
    """The ten s2cloudless bands at 60 m, read by name through the reader."""
    with RasterBandSource(scene_inputs(scene)) as source:
        info = source.info
        assert (info.width, info.height) == scene.truth.shape[::-1]
        return source.read_bands(S2CLOUDLESS_BANDS, Window(0, 0, info.width, info.height))


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


def _write_half_fmask(scene: SyntheticS2Scene, path: Path, encoding: str) -> None:
    """An Fmask result at 30 m covering only the upper half of the 60 m scene: HLS-style bits
    with nodata 255, or categorical codes (truth's, clear in place of no data) with no nodata
    value at all, as some Fmask writers leave it."""
    size = scene.truth.shape[0]
    half = scene.truth[: size // 2]
    if encoding == "hls":
        values = np.where(half == CLOUD, 1 << 1, 0) | np.where(half == WATER, 1 << 5, 0)
    else:
        values = np.where(half == NODATA, CLEAR, half)
    bits = np.repeat(np.repeat(values, 2, axis=0), 2, axis=1).astype(np.uint8)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=bits.shape[1],
        height=bits.shape[0],
        count=1,
        dtype="uint8",
        nodata=255 if encoding == "hls" else None,
        crs="EPSG:32633",
        transform=Affine(30.0, 0.0, scene.transform60.c, 0.0, -30.0, scene.transform60.f),
    ) as dst:
        dst.write(bits, 1)


@pytest.mark.parametrize("encoding", ["hls", "categorical"])
def test_method_reads_an_fmask_band_on_another_grid(
    scene: SyntheticS2Scene, tmp_path: Path, encoding: str
) -> None:
    """Read by name, warped (nearest) onto the 60 m grid; outside the Fmask file is no data,
    also for a file with no nodata value (its footprint says where it has data)."""
    path = tmp_path / "fmask.tif"
    _write_half_fmask(scene, path, encoding)
    inputs = scene_inputs(
        scene, {"fmask": {"href": str(path)}}, fmask_asset="fmask", fmask_encoding=encoding
    )
    assert inputs.band(FMASK_BAND).categorical
    size = scene.truth.shape[0]
    top = scene.truth[: size // 2]
    with RasterBandSource(inputs, strip_pixels=size * 7) as source:
        whole = Window(0, 0, size, size)
        values, valid = source.read_values(FMASK_BAND, whole)
        fmask = decode_fmask(np.where(valid, values, 0), encoding)  # type: ignore[arg-type]
        assert valid[: size // 2].all() and not valid[size // 2 :].any()  # outside the raster
        assert (fmask[: size // 2][top == CLOUD] == CLOUD).all()
        assert (fmask[: size // 2][top == WATER] == WATER).all()
        config = S2CloudlessConfig(dilation_size=None)
        method = S2CloudlessMethod(config, fmask_encoding=encoding)
        strips = [as_mask_strip(strip) for strip in method.classify(source)]
    assert len(strips) > 1
    classes = np.concatenate([strip.classes for strip in strips])
    assert (classes[size // 2 :] == NODATA).all()  # where the Fmask says nothing
    assert (classes[: size // 2][top == WATER] == WATER).all()  # water only from the Fmask
    probability = np.concatenate([strip.layers[PROBABILITY_LAYER.name] for strip in strips])
    assert probability.dtype == np.uint8
    assert (probability[scene.truth == CLOUD] >= 90).all()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The hrefs every rasterio.open of the reader's bands opens, in order."""
    import stacmask.reading.storage as storage_module

    calls: list[str] = []
    real_open = rasterio.open

    def counting(path: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(storage_module.rasterio, "open", counting)
    yield calls


def test_warped_bands_open_once_per_scene(scene: SyntheticS2Scene, opened: list[str]) -> None:
    """Every band is opened (and warped) once per scene, not once per strip."""
    size = scene.truth.shape[0]
    with RasterBandSource(scene_inputs(scene), strip_pixels=size * 5) as source:
        strips = list(source.strips())
        assert len(strips) >= 8
        opened.clear()
        for window in strips:
            source.read_bands(S2CLOUDLESS_BANDS, window)
    hrefs = [str(scene.files[KEY_OF[b]]) for b in S2CLOUDLESS_BANDS]
    assert sorted(opened) == sorted(hrefs)


def test_band_reads_keep_the_timeout(
    scene: SyntheticS2Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Window reads of bands opened on first use run under the reader's GDAL settings
    (`--timeout`), also after the main bands were decoded and their files closed."""
    from rasterio.env import getenv, hasenv

    from stacmask.reading.grid import OpenBand

    seen: list[object] = []
    real_read = OpenBand.read

    def read(self: OpenBand, window: Window, out: Any = None) -> Any:
        seen.append(getenv().get("GDAL_HTTP_TIMEOUT") if hasenv() else None)
        return real_read(self, window, out)

    monkeypatch.setattr(OpenBand, "read", read)
    with RasterBandSource(scene_inputs(scene), timeout=7) as source:
        seen.clear()
        for window in source.strips():
            source.read_bands(["B10"], window)
            source.read_values("B09", window)
    assert seen and set(seen) == {7}
