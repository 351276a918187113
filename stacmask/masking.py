"""The per-scene engine shared by `build` and `mask`: method strips -> COG, covers, preview."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from stacmask.cog import MaskWriter
from stacmask.constants import CLOUD, NODATA, SHADOW, WATER
from stacmask.methods import MaskMethod
from stacmask.preview import preview_step, write_preview
from stacmask.scene import BandSource

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
    preview_rgb: list[NDArray[np.float64]] = []
    preview_classes: list[NDArray[np.uint8]] = []
    next_row = 0
    with MaskWriter(mask_path, info.width, info.height, info.transform, info.crs) as writer:
        for window, classes in method.classify(source):
            writer.write(window, classes)
            counts += np.bincount(classes.ravel(), minlength=256)
            top, bottom = int(window.row_off), int(window.row_off + window.height)
            while preview_path is not None and next_row < bottom:
                row = source.read_raw(Window(0, next_row, info.width, 1))[:, 0, ::step]
                preview_rgb.append(row[[2, 1, 0]])
                preview_classes.append(classes[next_row - top, ::step])
                next_row += step
        writer.finish()
    if preview_path is not None:
        write_preview(
            preview_path, np.stack(preview_rgb, axis=1), np.stack(preview_classes, axis=0)
        )
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
