"""The item thumbnail: a small true-colour PNG with the mask classes drawn over it."""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.errors import NotGeoreferencedWarning

from stacmask.constants import CLASS_NAMES, CLEAR, NODATA

#: Longest side of the preview, in pixels.
PREVIEW_SIZE = 512
#: Opacity of the class colours over the true-colour image.
OVERLAY_ALPHA = 0.55


def preview_step(width: int, height: int) -> int:
    """Decimation step that brings the scene's longest side to at most PREVIEW_SIZE."""
    return max(1, -(-max(width, height) // PREVIEW_SIZE))


def _stretch(band: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.float64]:
    """2-98 % linear stretch to 0..1 over the valid pixels."""
    values = band[valid & np.isfinite(band)]
    if values.size == 0:
        return np.zeros_like(band)
    lo, hi = np.percentile(values, [2, 98])
    scale = hi - lo if hi > lo else 1.0
    stretched: NDArray[np.float64] = np.clip((band - lo) / scale, 0, 1)
    return stretched


def write_preview(path: Path, rgb: NDArray[np.float64], classes: NDArray[np.uint8]) -> None:
    """Write an RGBA PNG: stretched true colour, classes blended over, no data transparent.

    `rgb` is (3, h, w) red, green, blue in any radiometric unit; `classes` is (h, w).
    """
    valid = classes != NODATA
    image = np.stack([_stretch(band, valid) for band in rgb])
    for code, (_, _, colour) in CLASS_NAMES.items():
        if code in (CLEAR, NODATA):
            continue
        where = classes == code
        rgb_colour = np.array([int(colour[i : i + 2], 16) / 255 for i in (0, 2, 4)])
        for b in range(3):
            image[b][where] = (1 - OVERLAY_ALPHA) * image[b][where] + OVERLAY_ALPHA * rgb_colour[b]
    out = np.empty((4, *classes.shape), dtype=np.uint8)
    out[:3] = np.round(image * 255).astype(np.uint8)
    out[3] = np.where(valid, 255, 0)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # two writers never share it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        dst = rasterio.open(
            tmp,
            "w",
            driver="PNG",
            width=classes.shape[1],
            height=classes.shape[0],
            count=4,
            dtype="uint8",
        )
    with dst:
        dst.write(out)
    aux = tmp.with_name(tmp.name + ".aux.xml")
    if aux.exists():
        aux.unlink()
    os.replace(tmp, path)
