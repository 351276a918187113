"""`stacmask evaluate` on fully and partly labelled truth (--labels, --complete)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from typer.testing import CliRunner

from stacmask.cli import app
from stacmask.constants import CLEAR, CLOUD, NODATA, SHADOW, WATER
from stacmask.errors import StacmaskError
from stacmask.evaluate import score_class

runner = CliRunner()


def test_cloud_only_truth_scores_cloud_against_everything_else() -> None:
    truth = np.array([CLOUD, CLOUD, CLEAR, CLEAR, CLEAR, NODATA], np.uint8)
    # A predicted shadow or water on "not cloud" truth is right: the truth says only not cloud.
    predicted = np.array([CLOUD, SHADOW, CLOUD, SHADOW, WATER, CLOUD], np.uint8)
    s = score_class(predicted, truth, "cloud")
    assert s.pixels == 5 and s.confusion == [[2, 1], [1, 1]]
    assert (s.precision, s.recall, s.f1) == (0.5, 0.5, 0.5)
    assert s.cover_true == 40.0 and s.cover_predicted == 40.0 and s.cover_error == 0.0


def test_painted_shadow_counts_its_unlabelled_pixels_only_when_complete() -> None:
    truth = np.array([SHADOW, SHADOW, NODATA, NODATA, NODATA], np.uint8)
    predicted = np.array([SHADOW, CLEAR, SHADOW, CLEAR, NODATA], np.uint8)
    painted = score_class(predicted, truth, "shadow")
    assert painted.pixels == 2 and painted.recall == 0.5 and painted.precision == 1.0
    complete = score_class(predicted, truth, "shadow", complete=True)
    assert complete.pixels == 4  # the prediction's own no data stays out
    assert complete.precision == 0.5 and complete.recall == 0.5
    assert complete.cover_true == 50.0 and complete.cover_error == 0.0
    with pytest.raises(StacmaskError, match="cloud or shadow"):
        score_class(predicted, truth, "full")


def _write(path: Path, codes: np.ndarray) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=codes.shape[1],
        height=codes.shape[0],
        count=1,
        dtype="uint8",
        transform=Affine(30, 0, 0, 0, -30, 0),
    ) as out:
        out.write(codes, 1)
    return path


def test_cli_labels_option(tmp_path: Path) -> None:
    truth = _write(tmp_path / "t.tif", np.array([[CLOUD, CLEAR], [CLEAR, CLEAR]], np.uint8))
    mask = _write(tmp_path / "m.tif", np.array([[CLOUD, CLOUD], [SHADOW, CLEAR]], np.uint8))
    shown = runner.invoke(app, ["evaluate", str(mask), str(truth), "--labels", "cloud", "--json"])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.stdout)
    assert report["labels"] == "cloud" and report["f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["cover_error"] == 25.0 and "kappa" not in report
    text = runner.invoke(app, ["evaluate", str(mask), str(truth), "--labels", "cloud"])
    assert "cloud precision 0.5000" in text.stdout and "shadow" not in text.stdout
    full = runner.invoke(app, ["evaluate", str(mask), str(truth), "--json"])
    assert json.loads(full.stdout)["shadow_cover_error"] == 25.0
    bad = runner.invoke(app, ["evaluate", str(mask), str(truth), "--labels", "water"])
    assert bad.exit_code != 0 and "--labels must be one of" in bad.output
