"""The default method (hybrid): floors on every real labelled scene, and behaviour checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate
from typer.testing import CliRunner

from stacmask.cli import app
from stacmask.constants import CLOUD, DEFAULT_GAINS, NODATA, PROBABILITY_ASSET, SHADOW
from stacmask.evaluate import score
from stacmask.methods.csmask import CsmaskConfig, working_plan
from stacmask.methods.hybrid import (
    CLOUD_PROBABILITY,
    FIXED_LINE,
    HybridConfig,
    HybridMethod,
    edge_thresholds,
    fit_clear_line,
)
from stacmask.methods.registry import DEFAULT_METHOD
from stacmask.reading.band_source import ArrayBandSource, SceneInfo
from tests.conftest import shared_path
from tests.labelled import SCENES, LabelledScene, SceneScores, mask_file, score_mask
from tests.rasters import landsat8_clip, mask_synthetic_scene
from tests.sample_api import SampleStacApi
from tests.test_build import COLLECTION, make_scenes

#: Floors a little below what the default reaches with `stacmask mask --reflectance FILE`
#: (measured, docs/methods.md): (kappa, cloud F1, shadow F1, |cloud err|, |shadow err|).
FLOORS: dict[str, SceneScores] = {
    # measured 0.898 / 0.924 / 0.896 / +1.4 / +0.8 (0.879 / 0.902 / ... / +2.8 without the
    # outline refinement at 30 m)
    "sentinel2": SceneScores(0.89, 0.915, 0.885, 2.5, 1.5),
    # measured 0.955 / +1.7
    "38cloud": SceneScores(cloud_f1=0.945, cloud_error=2.5),
    # measured 0.999 / -0.3
    "oncloudn_holy": SceneScores(cloud_f1=0.99, cloud_error=1.0),
    # measured 0.884 / -3.7
    "oncloudn_jaag": SceneScores(cloud_f1=0.875, cloud_error=4.5),
    # measured 0.814 / -0.9 and 0.795 / -0.1
    "layton_2020-06-15": SceneScores(shadow_f1=0.80, shadow_error=1.5),
    "layton_2020-07-05": SceneScores(shadow_f1=0.78, shadow_error=1.0),
}


def test_hybrid_is_the_default() -> None:
    assert DEFAULT_METHOD == "hybrid"
    assert {s.name for s in SCENES} == set(FLOORS)


@pytest.mark.parametrize("scene", SCENES, ids=lambda s: s.name)
def test_default_holds_its_floor_on_every_real_labelled_scene(
    tmp_path: Path, scene: LabelledScene
) -> None:
    """`stacmask mask OUT --reflectance FILE` with no options, scored as `evaluate --labels`."""
    reflectance, truth = shared_path(scene.reflectance), shared_path(scene.truth)
    report = mask_file(reflectance, tmp_path / "mask.tif")
    assert report["method"] == "hybrid"
    got, floor = score_mask(tmp_path / "mask.tif", truth, scene), FLOORS[scene.name]
    for metric in ("kappa", "cloud_f1", "shadow_f1"):
        low = getattr(floor, metric)
        assert (getattr(got, metric) is None) == (low is None), metric
        if low is not None:
            assert getattr(got, metric) >= low, (metric, got)
    for metric in ("cloud_error", "shadow_error"):
        bound = getattr(floor, metric)
        if bound is not None:
            assert abs(getattr(got, metric)) <= bound, (metric, got)


def test_clear_line_is_fitted_on_clear_cells_or_falls_back() -> None:
    rng = np.random.default_rng(1)
    red = rng.uniform(0.02, 0.3, (60, 60)).astype(np.float32)
    blue = (0.6 * red + 0.02 + rng.normal(0, 0.003, red.shape)).astype(np.float32)
    blue[:5] += 0.3  # a few cloudy cells among the clear ones are trimmed
    clear, valid = np.ones(red.shape, bool), np.ones(red.shape, bool)
    line = fit_clear_line(blue, red, clear, valid, HybridConfig())
    assert line.fitted
    assert line.slope == pytest.approx(0.6, abs=0.01) and line.intercept == pytest.approx(
        0.02, abs=0.003
    )
    few = np.zeros(red.shape, bool)
    few[0, :10] = True  # 10 of 3600 cells: an overcast scene
    assert fit_clear_line(blue, red, few, valid, HybridConfig()) == FIXED_LINE
    flat = np.full(red.shape, 0.1, np.float32) + 2.0 * red  # slope 2: not a clear line
    assert fit_clear_line(flat, red, clear, valid, HybridConfig()) == FIXED_LINE


def test_soft_edge_threshold_is_half_way_from_ground_to_core_at_30_m_only() -> None:
    """Cells of clear ground (visible 0.1) beside cloud cores (0.5) with an uncertain edge
    between: the unmixing threshold is half-way (0.3) at 30 m; none at 10 m (the CNN's
    outline is kept there) nor where the cores are less than 0.1 brighter than the ground."""
    p_cloud = np.zeros((9, 9), np.float32)
    p_cloud[:, 5:], p_cloud[:, 4] = 1.0, 0.7
    r = np.full((4, 9, 9), 0.1, np.float32)
    r[:3, :, 5:], r[3] = 0.5, 0.3
    valid, no_shadow = np.ones((9, 9), bool), np.zeros((9, 9), np.float32)
    at_30 = edge_thresholds(r, p_cloud, no_shadow, valid, 30.0, 30.0, HybridConfig())
    assert at_30[:, 4] == pytest.approx(0.3, abs=1e-6)
    assert np.isneginf(
        edge_thresholds(r, p_cloud, no_shadow, valid, 30.0, 10.0, HybridConfig())
    ).all()
    r[:3, :, 5:] = 0.18  # thin cloud on the ground: unmixing is ill-posed, left to the CNN
    assert np.isneginf(
        edge_thresholds(r, p_cloud, no_shadow, valid, 30.0, 30.0, HybridConfig())
    ).all()


def test_soft_edges_of_the_labelled_scene_are_clear() -> None:
    """On the real 30 m labelled scene the refinement only takes uncertain CNN cloud whose
    brightness is under the threshold away (nothing becomes cloud), and that raises its
    cloud F1 (labels drawn inside the soft edge)."""
    scene = next(s for s in SCENES if s.name == "sentinel2")
    with rasterio.open(shared_path(scene.reflectance)) as src:
        values, transform, crs = src.read().astype(np.float32), src.transform, src.crs
    with rasterio.open(shared_path(scene.truth)) as src:
        truth = src.read(1)
    info = _reflectance_info(values.shape[2], values.shape[1], transform, crs)
    masks = {}
    for name, config in (("refined", HybridConfig()), ("kept", HybridConfig(edge_pixel_min=1e9))):
        method = HybridMethod(config)
        source = ArrayBandSource(values, info, reflectance_scale=1.0)
        masks[name] = np.concatenate([s[1] for s in method.classify(source)])
    refined, kept = masks["refined"] == CLOUD, masks["kept"] == CLOUD
    assert not np.any(refined & ~kept)
    assert 0.01 < np.mean(kept & ~refined) < 0.05
    assert score(masks["refined"], truth).cloud_f1 > score(masks["kept"], truth).cloud_f1 + 0.01


def test_model_cells_stay_within_the_budget() -> None:
    config = HybridConfig().csmask
    assert working_plan(512, 512, 30.0, config) == (1, 4)
    assert working_plan(743, 689, 30.0, config) == (1, 4)
    k, flips = working_plan(14198, 14584, 8.0, config)  # a full WPM scene
    assert flips == 1 and k == 8  # 64 m cells
    assert -(-14198 // k) * -(-14584 // k) <= 3_300_000
    assert working_plan(14198, 14584, 8.0, CsmaskConfig()) == (4, 1)


@pytest.mark.parametrize("fraction", [0.0, 0.15, 0.6, 0.9])
def test_cover_tracks_synthetic_truth(tmp_path: Path, fraction: float) -> None:
    """Synthetic 8 m WPM scenes (smooth blobs the CNN was not trained on): the thick-cloud
    rule keeps their clouds, so cover tracks the truth from clear to nearly overcast."""
    classes, truth = mask_synthetic_scene(tmp_path, fraction, HybridMethod())
    s = score(classes, truth)
    assert s.cloud_cover_predicted == pytest.approx(s.cloud_cover_true, abs=3.0)
    if fraction == 0.0:
        assert s.cloud_cover_predicted < 0.5 and s.shadow_cover_predicted < 1.0
    else:
        assert s.cloud_f1 >= 0.93
    assert np.array_equal(classes == NODATA, truth == NODATA)


def test_overcast_is_all_cloud() -> None:
    """A flat white sky with a little texture: cloud everywhere (and the fixed line used)."""
    rng = np.random.default_rng(2)
    values = (0.55 + rng.normal(0, 0.02, (4, 256, 256))).astype(np.float32)
    values[3] -= 0.03
    info = _reflectance_info(256, 256, _transform(30.0), None)
    method = HybridMethod()
    classes = np.concatenate(
        [s[1] for s in method.classify(ArrayBandSource(values, info, reflectance_scale=1.0))]
    )
    assert np.mean(classes == CLOUD) > 0.99
    assert method.grid is not None and not method.grid.line.fitted


def _reflectance_info(width: int, height: int, transform: Any, crs: Any) -> SceneInfo:
    """A 30 m reflectance stack without sun angles."""
    return SceneInfo(
        width, height, transform, crs, 30.0, None, None, None, (1.0,) * 4, "reflectance"
    )


def _transform(pixel: float) -> object:
    from affine import Affine

    return Affine(pixel, 0, 500000, 0, -pixel, 8000000)


def test_no_false_cloud_on_the_real_clear_wpm_clip() -> None:
    """Real CBERS-4A WPM DN (8 m, bright bare soil, clear; no NIR band, so red stands in for
    it, which also takes away the vegetation guard): under 1 % cloud."""
    bands = []
    for name in ("BAND1", "BAND2", "BAND3", "BAND3"):
        with rasterio.open(shared_path(f"data/cbers4a-wpm-clips/{name}.tif")) as src:
            bands.append(src.read(1))
            transform, crs = src.transform, src.crs
    dn = np.stack(bands)
    info = SceneInfo(
        dn.shape[2], dn.shape[1], transform, crs, 8.0, None, None, None, DEFAULT_GAINS, "default"
    )
    classes = np.concatenate(
        [s[1] for s in HybridMethod().classify(ArrayBandSource(dn, info, nodata=0))]
    )
    valid = classes != NODATA
    assert valid.sum() > 0.5 * valid.size
    assert np.mean(classes[valid] == CLOUD) < 0.01


def test_cloud_probability_layer_matches_the_mask() -> None:
    """The probability layer is what the CNN's cloud is decided on: >= 50 % is cloud, less
    the soft edges unmixed at 30 m (only pixels under 90 %)."""
    source, _ = landsat8_clip()
    method = HybridMethod()
    strips = list(method.classify(source))
    assert method.optional_layers == (CLOUD_PROBABILITY,)
    assert [spec.name for spec in method.layers] == [CLOUD_PROBABILITY]
    for window, classes, layers in strips:
        percent = method.layer(CLOUD_PROBABILITY, window)
        assert np.array_equal(layers[CLOUD_PROBABILITY], percent)
        assert percent.shape == classes.shape and percent.dtype == np.uint8
        valid = classes != NODATA
        assert percent[valid].max() <= 100
        assert np.all(classes[valid & (percent >= 91)] == CLOUD)
    with pytest.raises(ValueError, match="unknown layer"):
        method.layer("haze", strips[0][0])


def test_shadows_fall_away_from_the_sun_when_it_is_known() -> None:
    """On the Landsat-8 clip (sun angles from its MTL) shadow is only found where the sun
    geometry allows: fewer shadow pixels than without sun angles, and some."""
    source, _ = landsat8_clip()
    with_sun = np.concatenate([s[1] for s in HybridMethod().classify(source)])
    info = source.info
    blind = ArrayBandSource(
        source.values,
        _reflectance_info(info.width, info.height, info.transform, info.crs),
        reflectance_scale=1.0,
    )
    without = np.concatenate([s[1] for s in HybridMethod().classify(blind)])
    assert np.count_nonzero(with_sun == SHADOW) <= np.count_nonzero(without == SHADOW)
    assert np.array_equal(with_sun == CLOUD, without == CLOUD)


def test_build_publishes_the_default_cloud_probability(tmp_path: Path) -> None:
    """`stacmask build` with the default method publishes the CNN's cloud probability as the
    item asset `cloud_probability` (a COG on the mask's grid, percent, 255 no data; pixels at
    >= 51 % are cloud in the mask); `--no-probability` leaves it out."""
    served = tmp_path / "served"
    served.mkdir()
    with SampleStacApi(served) as api:
        api.add_scene(make_scenes(served, 1)[0])
        item_id = next(iter(api.items))
        for flag, published in (((), True), (("--no-probability",), False)):
            out = tmp_path / f"catalog{len(flag)}"
            result = CliRunner().invoke(
                app, ["build", "--out", str(out), "--stac-url", api.url, "--quiet", *flag]
            )
            assert result.exit_code == 0, result.output
            folder = out / COLLECTION / item_id
            item = json.loads((folder / f"{item_id}.json").read_text())
            assert item["properties"]["stacmask:method"] == DEFAULT_METHOD
            assert (PROBABILITY_ASSET in item["assets"]) == published
            path = folder / f"{item_id}_{PROBABILITY_ASSET}.tif"
            assert path.exists() == published
            templates = json.loads((out / COLLECTION / "collection.json").read_text())
            template = templates["item_assets"].get(PROBABILITY_ASSET)
            assert (template is not None) == published  # the collection lists it too
            if published:
                assert template["raster:bands"][0]["unit"] == "percent"
                assert "href" not in template and "file:size" not in template
    path = tmp_path / "catalog0" / COLLECTION / item_id / f"{item_id}_{PROBABILITY_ASSET}.tif"
    assert cog_validate(path, quiet=True)[0]
    with rasterio.open(path) as src, rasterio.open(path.with_name(f"{item_id}_mask.tif")) as m:
        percent, classes = src.read(1), m.read(1)
        assert src.nodata == NODATA and src.transform == m.transform
    valid = classes != NODATA
    assert percent[valid].max() <= 100
    assert np.all(classes[valid & (percent >= 51)] == CLOUD)
