"""`stacmask evaluate`: a predicted mask against a labelled truth, as accuracy.md defines it.

Fully labelled truth (`--labels full`): three classes are scored over the pixels whose truth is
not no data: clear (codes 0, 1, 3), cloud (4) and shadow (2): confusion matrix, overall
accuracy, Cohen's kappa, F1 of cloud and shadow, and cover errors (predicted minus true share,
percentage points).

Truth labelled for one class only (`--labels cloud` or `--labels shadow`, as the scenes of
shared/data/labelled-extra): that class against everything else, over the labelled pixels:
precision, recall, F1 and cover error of that class, nothing else. In cloud-only truth (38-Cloud,
On Cloud N) 0 means "not cloud" (shadow and water are 0 too). Shadow painted by hand (Layton)
is 2 where painted and 255 elsewhere: `complete` takes the painting as complete, so its 255
pixels count as "not shadow" wherever the prediction has data (what Layton's `_shadowmask.tif`
says); without it only recall means anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.errors import RasterioError

from stacmask.constants import CLOUD, NODATA, SHADOW
from stacmask.errors import StacmaskError

#: Scored classes, in the confusion matrix's order.
SCORED = ("clear", "cloud", "shadow")

Labels = Literal["full", "cloud", "shadow"]
#: What a truth may be labelled for: every class, or cloud only, or shadow only.
LABELS: Final[tuple[Labels, ...]] = ("full", "cloud", "shadow")
#: The class code scored by each one-class labelling.
LABEL_CODE: Final = {"cloud": CLOUD, "shadow": SHADOW}


def three_classes(codes: NDArray[np.integer]) -> NDArray[np.int8]:
    """0 clear (codes 0, 1, 3 and anything else), 1 cloud (4), 2 shadow (2)."""
    out = np.zeros(codes.shape, np.int8)
    out[codes == CLOUD] = 1
    out[codes == SHADOW] = 2
    return out


@dataclass(frozen=True)
class Scores:
    """Accuracy of a predicted mask (covers in percent, errors in percentage points)."""

    pixels: int
    confusion: list[list[int]]
    overall_accuracy: float
    kappa: float
    cloud_f1: float
    shadow_f1: float
    cloud_cover_true: float
    cloud_cover_predicted: float
    cloud_cover_error: float
    shadow_cover_true: float
    shadow_cover_predicted: float
    shadow_cover_error: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, for `--json`."""
        return asdict(self)


def _f1(confusion: NDArray[np.int64], k: int) -> float:
    tp = confusion[k, k]
    predicted, actual = confusion[:, k].sum(), confusion[k, :].sum()
    return float(2 * tp / (predicted + actual)) if predicted + actual else 1.0


def score(predicted: NDArray[np.integer], truth: NDArray[np.integer]) -> Scores:
    """Scores of class codes `predicted` against `truth` (same shape)."""
    if predicted.shape != truth.shape:
        raise StacmaskError(f"shapes differ: prediction {predicted.shape}, truth {truth.shape}")
    keep = truth != NODATA
    t, p = three_classes(truth[keep]), three_classes(predicted[keep])
    n = int(keep.sum())
    if n == 0:
        raise StacmaskError("the truth has no labelled pixel (all no data)")
    confusion = np.bincount(t * 3 + p, minlength=9).reshape(3, 3).astype(np.int64)
    observed = np.trace(confusion) / n
    expected = float((confusion.sum(axis=0) * confusion.sum(axis=1)).sum()) / (n * n)
    kappa = (observed - expected) / (1 - expected) if expected < 1 else 1.0
    cover_t = confusion.sum(axis=1) / n * 100
    cover_p = confusion.sum(axis=0) / n * 100
    return Scores(
        pixels=n,
        confusion=confusion.tolist(),
        overall_accuracy=round(float(observed), 5),
        kappa=round(float(kappa), 5),
        cloud_f1=round(_f1(confusion, 1), 5),
        shadow_f1=round(_f1(confusion, 2), 5),
        cloud_cover_true=round(float(cover_t[1]), 3),
        cloud_cover_predicted=round(float(cover_p[1]), 3),
        cloud_cover_error=round(float(cover_p[1] - cover_t[1]), 3),
        shadow_cover_true=round(float(cover_t[2]), 3),
        shadow_cover_predicted=round(float(cover_p[2]), 3),
        shadow_cover_error=round(float(cover_p[2] - cover_t[2]), 3),
    )


@dataclass(frozen=True)
class ClassScores:
    """Accuracy of one class against a truth labelled for that class only (covers in percent
    of the labelled pixels, error in percentage points)."""

    labels: str
    pixels: int
    #: Rows truth, columns predicted: (not the class, the class).
    confusion: list[list[int]]
    precision: float
    recall: float
    f1: float
    cover_true: float
    cover_predicted: float
    cover_error: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, for `--json`."""
        return asdict(self)


def score_class(
    predicted: NDArray[np.integer],
    truth: NDArray[np.integer],
    labels: Labels,
    *,
    complete: bool = False,
) -> ClassScores:
    """Scores of one class (`labels`: "cloud" or "shadow") of `predicted` against a truth
    labelled for it only; with `complete`, unlabelled truth counts as not the class where the
    prediction has data."""
    if labels not in LABEL_CODE:
        raise StacmaskError(f"one-class scoring needs labels cloud or shadow, not {labels!r}")
    if predicted.shape != truth.shape:
        raise StacmaskError(f"shapes differ: prediction {predicted.shape}, truth {truth.shape}")
    code = LABEL_CODE[labels]
    keep = truth != NODATA
    if complete:
        keep |= predicted != NODATA
    n = int(keep.sum())
    if n == 0:
        raise StacmaskError("the truth has no labelled pixel (all no data)")
    t = (truth[keep] == code).astype(np.int64)
    p = (predicted[keep] == code).astype(np.int64)
    confusion = np.bincount(t * 2 + p, minlength=4).reshape(2, 2)
    tp, fp, fn = int(confusion[1, 1]), int(confusion[0, 1]), int(confusion[1, 0])
    cover_t, cover_p = (tp + fn) / n * 100, (tp + fp) / n * 100
    return ClassScores(
        labels=labels,
        pixels=n,
        confusion=confusion.tolist(),
        precision=round(tp / (tp + fp), 5) if tp + fp else 1.0,
        recall=round(tp / (tp + fn), 5) if tp + fn else 1.0,
        f1=round(2 * tp / (2 * tp + fp + fn), 5) if tp + fp + fn else 1.0,
        cover_true=round(cover_t, 3),
        cover_predicted=round(cover_p, 3),
        cover_error=round(cover_p - cover_t, 3),
    )


def _read(path: Path) -> NDArray[np.integer]:
    try:
        with rasterio.open(path) as src:
            data: NDArray[np.integer] = src.read(1)
    except RasterioError as exc:
        raise StacmaskError(f"{path}: cannot read mask: {exc}") from exc
    return data


def evaluate_files(predicted: Path, truth: Path) -> Scores:
    """Scores of the mask file `predicted` against the labelled file `truth`."""
    p, t = _read(predicted), _read(truth)
    if p.shape != t.shape:
        raise StacmaskError(f"{predicted}: shape {p.shape} differs from {truth}'s {t.shape}")
    return score(p, t)


def evaluate_class_files(
    predicted: Path, truth: Path, labels: Labels, *, complete: bool = False
) -> ClassScores:
    """One-class scores of the mask file `predicted` against the file `truth` (score_class)."""
    p, t = _read(predicted), _read(truth)
    if p.shape != t.shape:
        raise StacmaskError(f"{predicted}: shape {p.shape} differs from {truth}'s {t.shape}")
    return score_class(p, t, labels, complete=complete)
