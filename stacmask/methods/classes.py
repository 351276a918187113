"""Boolean class layers to one uint8 class raster, in the project's priority order."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stacmask.constants import CLASS_PRIORITY, CLEAR, CLOUD, NODATA, SHADOW, SNOW, WATER


def compose_classes(
    valid: NDArray[np.bool_],
    *,
    cloud: NDArray[np.bool_] | None = None,
    shadow: NDArray[np.bool_] | None = None,
    snow: NDArray[np.bool_] | None = None,
    water: NDArray[np.bool_] | None = None,
) -> NDArray[np.uint8]:
    """One class code per pixel: NODATA outside `valid`, else the first set layer of CLASS_PRIORITY.

    Where a pixel is in several layers the order is shadow, cloud, snow, water, clear
    (constants.CLASS_PRIORITY). Layers left as None are empty. All layers must share one shape.
    """
    layers = {SHADOW: shadow, CLOUD: cloud, SNOW: snow, WATER: water}
    for code, layer in layers.items():
        if layer is not None and layer.shape != valid.shape:
            raise ValueError(
                f"class layer {code} has shape {layer.shape}, the valid mask {valid.shape}"
            )
    out = np.full(valid.shape, CLEAR, dtype=np.uint8)
    # Write lowest priority first so that higher classes overwrite it.
    for code in reversed(CLASS_PRIORITY):
        layer = layers.get(code)
        if layer is not None:
            out[layer] = code
    out[~valid] = NODATA
    return out


def class_shares(classes: NDArray[np.uint8]) -> dict[int, float]:
    """Percent of the valid (non-NODATA) pixels in each class code; all zero when none is valid."""
    counts = np.bincount(classes.ravel(), minlength=256)
    valid = int(counts.sum() - counts[NODATA])
    codes = (CLEAR, WATER, SHADOW, SNOW, CLOUD)
    if valid == 0:
        return {code: 0.0 for code in codes}
    return {code: 100.0 * float(counts[code]) / valid for code in codes}
