"""The real labelled scenes of ../shared (labelled and labelled-extra), masked as a user would.

Shared by the accuracy floors (tests/test_accuracy.py) and the accuracy table
(benchmarks/accuracy.py): each scene's reflectance, truth and what its truth labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from stacmask.cli import app
from stacmask.evaluate import Labels, evaluate_class_files, evaluate_files


@dataclass(frozen=True)
class LabelledScene:
    """A reflectance stack under ../shared, its truth, and what the truth labels."""

    name: str
    reflectance: str
    truth: str
    labels: Labels
    #: The truth's unlabelled pixels are not the class (hand-painted shadow taken as complete).
    complete: bool = False


_EXTRA = "data/labelled-extra"
_LAYTON = f"{_EXTRA}/layton_S2L2A_alberta_2020"
SCENES: tuple[LabelledScene, ...] = (
    LabelledScene(
        "sentinel2",
        "data/labelled/sentinel2_reflectance.tif",
        "data/labelled/sentinel2_truth.tif",
        "full",
    ),
    LabelledScene(
        "38cloud",
        f"{_EXTRA}/38cloud_LC08_002053_20160520_p192_reflectance.tif",
        f"{_EXTRA}/38cloud_LC08_002053_20160520_p192_truth.tif",
        "cloud",
    ),
    LabelledScene(
        "oncloudn_holy",
        f"{_EXTRA}/oncloudn_holy_reflectance.tif",
        f"{_EXTRA}/oncloudn_holy_truth.tif",
        "cloud",
    ),
    LabelledScene(
        "oncloudn_jaag",
        f"{_EXTRA}/oncloudn_jaag_reflectance.tif",
        f"{_EXTRA}/oncloudn_jaag_truth.tif",
        "cloud",
    ),
    LabelledScene(
        "layton_2020-06-15",
        f"{_LAYTON}-06-15_reflectance.tif",
        f"{_LAYTON}-06-15_truth.tif",
        "shadow",
        complete=True,
    ),
    LabelledScene(
        "layton_2020-07-05",
        f"{_LAYTON}-07-05_reflectance.tif",
        f"{_LAYTON}-07-05_truth.tif",
        "shadow",
        complete=True,
    ),
)


@dataclass(frozen=True)
class SceneScores:
    """accuracy.md's metrics of one mask, None where the truth does not label them."""

    kappa: float | None = None
    cloud_f1: float | None = None
    shadow_f1: float | None = None
    cloud_error: float | None = None
    shadow_error: float | None = None


def mask_file(reflectance: Path, out: Path, method: str | None = None) -> dict[str, object]:
    """`stacmask mask OUT --reflectance FILE [--method M] --json`, in process; its report."""
    args = ["mask", str(out), "--reflectance", str(reflectance), "--json"]
    if method is not None:
        args += ["--method", method]
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise RuntimeError(f"stacmask {' '.join(args)} failed: {result.output}")
    report: dict[str, object] = json.loads(result.stdout)
    return report


def score_mask(mask: Path, truth: Path, scene: LabelledScene) -> SceneScores:
    """The scores `stacmask evaluate --labels ...` gives `mask` for this scene."""
    if scene.labels == "full":
        s = evaluate_files(mask, truth)
        return SceneScores(
            s.kappa, s.cloud_f1, s.shadow_f1, s.cloud_cover_error, s.shadow_cover_error
        )
    one = evaluate_class_files(mask, truth, scene.labels, complete=scene.complete)
    if scene.labels == "cloud":
        return SceneScores(cloud_f1=one.f1, cloud_error=one.cover_error)
    return SceneScores(shadow_f1=one.f1, shadow_error=one.cover_error)
