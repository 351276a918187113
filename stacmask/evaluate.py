"""`stacmask evaluate`: a predicted mask against a labelled truth, as accuracy.md defines it.

Three classes are scored over the pixels whose truth is not no data: clear (codes 0, 1, 3),
cloud (4) and shadow (2): confusion matrix, overall accuracy, Cohen's kappa, F1 of cloud and
shadow, and cover errors (predicted minus true share, percentage points).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.errors import RasterioError

from stacmask.constants import CLOUD, NODATA, SHADOW
from stacmask.errors import StacmaskError

#: Scored classes, in the confusion matrix's order.
SCORED = ("clear", "cloud", "shadow")


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
