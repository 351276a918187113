"""The default (physical) method and `stacmask evaluate` on real and synthetic scenes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from stacmask.cli import app
from stacmask.constants import CLOUD, DEFAULT_GAINS, ESUN_WPM
from stacmask.demo.samples import write_sample_scene
from stacmask.evaluate import Scores, evaluate_files, score
from stacmask.methods import physical
from stacmask.methods.physical import (
    PhysicalConfig,
    PhysicalMethod,
    ShadowDirection,
    match_shadows,
    shadow_zone,
    sun_direction,
)
from stacmask.methods.registry import DEFAULT_METHOD, METHODS
from stacmask.reading.band_source import ArrayBandSource, SceneInfo
from tests.conftest import shared_path
from tests.rasters import SWEEP_DATE, landsat8_clip, mask_synthetic_scene

runner = CliRunner()


def test_physical_is_kept_beside_the_default() -> None:
    assert DEFAULT_METHOD != "physical" and "physical" in METHODS


def test_labelled_sentinel2_scores_stay_above_floors(tmp_path: Path) -> None:
    """`mask --reflectance` with no options, then `evaluate`: the floors are the scores reached
    (kappa 0.874, cloud F1 0.905, shadow F1 0.871, errors +0.6/+1.0) less a small margin."""
    reflectance = shared_path("data/labelled/sentinel2_reflectance.tif")
    truth = shared_path("data/labelled/sentinel2_truth.tif")
    out = tmp_path / "mask.tif"
    args = ["mask", str(out), "--reflectance", str(reflectance), "--method", "physical", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["method"] == "physical" and report["calibration"] == "reflectance"
    scores = evaluate_files(out, truth)
    assert scores.kappa >= 0.865
    assert scores.cloud_f1 >= 0.90
    assert scores.shadow_f1 >= 0.86
    assert abs(scores.cloud_cover_error) <= 1.5
    assert abs(scores.shadow_cover_error) <= 1.5
    shown = runner.invoke(app, ["evaluate", str(out), str(truth), "--json"])
    assert json.loads(shown.output)["kappa"] == scores.kappa


@pytest.mark.parametrize("work_size", [128, 64])
def test_cloud_outline_follows_pixels_on_a_coarse_working_grid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, work_size: int
) -> None:
    """A full WPM scene is worked on 8 x 8 pixel cells; the labelled scene on 4 x 4 and 8 x 8
    cells (120 and 240 m) must keep its cloud outline, since edge cells are left to the pixels.
    Measured: cloud F1 0.904 / 0.900 and cover error +0.4 / +0.0 points; with the outline on
    the grid it was 0.887 / 0.840 and +0.7 / -0.5."""
    monkeypatch.setattr(physical, "WORK_SIZE", work_size)
    reflectance = shared_path("data/labelled/sentinel2_reflectance.tif")
    out = tmp_path / "mask.tif"
    args = ["mask", str(out), "--reflectance", str(reflectance), "--method", "physical"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    scores = evaluate_files(out, shared_path("data/labelled/sentinel2_truth.tif"))
    assert scores.cloud_f1 >= 0.89
    assert abs(scores.cloud_cover_error) <= 1.5


def _synthetic_scores(tmp_path: Path, fraction: float) -> Scores:
    return score(*mask_synthetic_scene(tmp_path / f"s{fraction}", fraction, PhysicalMethod()))


@pytest.mark.parametrize("fraction", [0.0, 0.15, 0.35, 0.6, 0.9])
def test_cloud_and_shadow_cover_track_truth_with_no_ceiling(
    tmp_path: Path, fraction: float
) -> None:
    """Cloud and shadow hold up from clear to overcast. Measured (seed 11): shadow F1 0.90 /
    0.92 / 0.95 / 0.86 and shadow cover -0.9 / -1.4 / -1.0 / -2.4 points at 15 / 35 / 60 / 90 %
    cloud; before the reference floor and the shaded-soil rule 0.70-0.78 and 0.00 at 90 %,
    with -5 to -10 points."""
    scores = _synthetic_scores(tmp_path, fraction)
    assert scores.cloud_cover_true == pytest.approx(100 * fraction, abs=1.0)
    assert scores.cloud_cover_predicted == pytest.approx(scores.cloud_cover_true, abs=3.0)
    if fraction == 0.0:
        assert scores.shadow_cover_predicted == 0.0
        return
    assert scores.shadow_f1 >= 0.80
    assert abs(scores.shadow_cover_error) <= 3.0


def test_clear_scene_of_soil_water_and_built_up_has_no_cloud(tmp_path: Path) -> None:
    scene = write_sample_scene(
        tmp_path / "clear",
        "CBERS_4A_WPM_20210110_221_116_L4",
        width=512,
        height=512,
        seed=5,
        cloud_fraction=0.0,
        acquired=SWEEP_DATE,
    )
    dn = np.stack([rasterio.open(scene.bands[f"BAND{b}"]).read(1) for b in range(1, 5)])
    # A built-up district: grey, bright TOA reflectance (roofs, concrete, asphalt) ...
    elevation = scene.sun_elevation
    built = np.array([0.16, 0.15, 0.16, 0.22])
    factor = np.array(
        [
            math.pi * g / (e * math.sin(math.radians(elevation)))
            for g, e in zip(DEFAULT_GAINS, ESUN_WPM, strict=True)
        ]
    )
    dn[:, 200:320, 200:320] = np.round(built / factor)[:, None, None].astype(dn.dtype)
    # ... and very bright bare soil (reddish, high red and NIR).
    soil = np.array([0.14, 0.17, 0.24, 0.30])
    dn[:, 340:420, 120:260] = np.round(soil / factor)[:, None, None].astype(dn.dtype)
    info = SceneInfo(
        512,
        512,
        scene.transform,
        scene.crs,
        8.0,
        elevation,
        scene.sun_azimuth,
        SWEEP_DATE,
        DEFAULT_GAINS,
        "default",
    )
    source = ArrayBandSource(dn, info, nodata=0)
    classes = np.concatenate([s[1] for s in PhysicalMethod().classify(source)])
    valid = classes != 255
    assert np.count_nonzero(classes[valid] == CLOUD) / valid.sum() < 0.01
    water = np.count_nonzero(classes == 1)
    assert water > 0, "the scene's water body must be found"


@pytest.mark.parametrize("work_size", [2048, 128])
def test_landsat8_clouds_agree_with_its_bqa(
    monkeypatch: pytest.MonkeyPatch, work_size: int
) -> None:
    """Real Landsat-8 DN and MTL rescaling; the BQA cloud confidence is a weak reference. Also
    on 5 x 5 pixel cells, where the clip's small cumulus test the cloud outline: 97 % of our
    cloud in BQA medium or high confidence (85 % with the outline on the grid)."""
    monkeypatch.setattr(physical, "WORK_SIZE", work_size)
    source, confidence = landsat8_clip()
    classes = np.concatenate([s[1] for s in PhysicalMethod().classify(source)])
    cloud = classes == CLOUD
    high = confidence == 3
    assert np.mean(confidence[cloud] >= 2) >= 0.9, "our clouds must lie in BQA cloud"
    assert 0.5 * high.mean() <= cloud.mean() <= 1.5 * high.mean()


def test_evaluate_on_a_hand_made_case(tmp_path: Path) -> None:
    truth = np.array([[0, 0, 4, 4], [2, 2, 1, 255]], np.uint8)
    pred = np.array([[0, 4, 4, 4], [2, 0, 1, 4]], np.uint8)
    s = score(pred, truth)
    # labelled: 7 pixels; rows truth, columns predicted (clear, cloud, shadow)
    assert s.confusion == [[2, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert s.overall_accuracy == pytest.approx(5 / 7, abs=1e-5)
    po, pe = 5 / 7, (3 * 3 + 2 * 3 + 2 * 1) / 49
    assert s.kappa == pytest.approx((po - pe) / (1 - pe), abs=1e-5)
    assert s.cloud_f1 == pytest.approx(2 * 2 / (3 + 2), abs=1e-5)
    assert s.shadow_f1 == pytest.approx(2 * 1 / (1 + 2), abs=1e-5)
    assert s.cloud_cover_error == pytest.approx(100 * (3 - 2) / 7, abs=1e-3)
    mismatched = np.zeros((3, 3), np.uint8)
    with pytest.raises(Exception, match="shapes differ"):
        score(mismatched, truth)


def test_sun_direction_points_away_from_the_sun() -> None:
    # Sun in the north-east (azimuth 45): shadows go south-west, i.e. rows down, columns left.
    d = sun_direction(45.0)
    assert d.step_row == pytest.approx(math.sqrt(0.5)) and d.step_col == pytest.approx(
        -math.sqrt(0.5)
    )
    # Sun in the south (180): shadows go north (rows up).
    d = sun_direction(180.0)
    assert d.step_row == pytest.approx(-1.0) and d.step_col == pytest.approx(0.0, abs=1e-12)


def test_shadow_zone_is_the_cloud_swept_over_the_distances() -> None:
    cloud = np.zeros((60, 60), bool)
    cloud[10, 10] = True
    zone = shadow_zone(cloud, ShadowDirection(0.0, 1.0), 5.0, 30.0)
    assert np.array_equal(np.flatnonzero(zone[10]), np.arange(15, 41))
    assert zone.sum() == 26
    diagonal = shadow_zone(cloud, ShadowDirection(math.sqrt(0.5), math.sqrt(0.5)), 0.0, 20.0)
    rows, cols = np.nonzero(diagonal)
    assert np.array_equal(rows, cols) and rows.min() == 10 and rows.max() >= 10 + 13


def test_dark_ground_on_the_sun_side_is_not_shadow() -> None:
    """With sun angles a shadow can only lie away from the sun (Fmask's geometry): of two equal
    dark patches beside a cloud, the one towards the sun stays clear, the other is shadow."""
    cell = 30.0  # shadow_reach of 2 km = 67 cells
    cloud = np.zeros((300, 300), bool)
    cloud[140:160, 140:160] = True
    south, north = (slice(170, 190), slice(140, 160)), (slice(110, 130), slice(140, 160))
    dark = np.zeros_like(cloud)
    dark[south] = True
    dark[north] = True
    # Sun in the north at 45 degrees: shadows fall south, 200 m to 12 km away.
    shadow = match_shadows(cloud, dark, cell, 45.0, 0.0, PhysicalConfig())
    assert shadow[south].all()
    assert not shadow[north].any()
    # Without sun angles both are dark objects near a cloud.
    anywhere = match_shadows(cloud, dark, cell, None, None, PhysicalConfig())
    assert anywhere[south].all() and anywhere[north].all()
    # Sun in the south: shadows fall north; a dark patch at the south edge, near a cloud, may
    # be the shadow of a cloud beyond the scene; the one at the north edge may not.
    cloud[260:280, 20:40] = True
    edges = np.zeros_like(cloud)
    edges[290:300, 20:40] = True
    edges[0:10, 140:160] = True
    beyond = match_shadows(cloud, dark | edges, cell, 45.0, 180.0, PhysicalConfig())
    assert beyond[290:300, 20:40].all() and beyond[north].all()
    assert not beyond[south].any() and not beyond[0:10, 140:160].any()
