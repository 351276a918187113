"""The per-scene engine shared by `build` and `mask`: method strips -> COG, covers, preview."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from stacmask.constants import CLOUD, NODATA, SHADOW, WATER
from stacmask.methods import MaskMethod
from stacmask.output.cog import MaskWriter
from stacmask.output.preview import preview_step, write_preview
from stacmask.reading.band_source import BandSource

#: More footprint-disagreeing pixels than this flags a band mismatch (notebook-method.md rule 2).
BAND_MISMATCH_PIXELS = 100


@dataclass(frozen=True)
class MaskResult:
    """What masking one scene produced: covers in percent of the valid pixels."""

    method: str
    valid_pixels: int
    cloud_cover: float
    shadow_cover: float
    water_cover: float
    band_mismatch: bool
    mismatch_pixels: int
    calibration: str
    sun_elevation: float | None
    sun_azimuth: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, for `--json` output."""
        return asdict(self)


@numba.njit(parallel=True, nogil=True, cache=True)
def _class_counts(classes: Any, chunks: int) -> Any:
    """Pixels of each code 0-255 in a strip (np.bincount, on both cores)."""
    rows = classes.shape[0]
    partial = np.zeros((chunks, 256), np.int64)
    for k in numba.prange(chunks):
        for i in range(k * rows // chunks, (k + 1) * rows // chunks):
            for code in classes[i]:
                partial[k, code] += 1
    return partial.sum(axis=0)


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 4) if whole else 0.0


def mask_scene(
    source: BandSource,
    method: MaskMethod,
    mask_path: Path,
    preview_path: Path | None = None,
) -> MaskResult:
    """Classify `source` with `method`, write the mask COG (and preview); return the covers."""
    info = source.info
    counts = np.zeros(256, dtype=np.int64)
    step = preview_step(info.width, info.height)
    preview_classes: list[NDArray[np.uint8]] = []
    with MaskWriter(mask_path, info.width, info.height, info.transform, info.crs) as writer:
        for window, classes in method.classify(source):
            writer.write(window, classes)
            counts += _class_counts(classes, 2 * numba.get_num_threads())
            top = int(window.row_off)
            first = -(-top // step) * step - top
            preview_classes.append(classes[first::step, ::step])
        writer.finish()
    if preview_path is not None:
        rgb = source.thumbnail(step)[[2, 1, 0]]
        write_preview(preview_path, rgb, np.concatenate(preview_classes, axis=0))
    valid = int(counts.sum() - counts[NODATA])
    mismatch = source.stats.mismatch_pixels
    return MaskResult(
        method=method.name,
        valid_pixels=valid,
        cloud_cover=_percent(int(counts[CLOUD]), valid),
        shadow_cover=_percent(int(counts[SHADOW]), valid),
        water_cover=_percent(int(counts[WATER]), valid),
        band_mismatch=mismatch > BAND_MISMATCH_PIXELS,
        mismatch_pixels=mismatch,
        calibration=info.calibration,
        sun_elevation=info.sun_elevation,
        sun_azimuth=info.sun_azimuth,
    )
