"""The per-scene engine shared by `build` and `mask`: method strips -> COGs, covers, preview.

The method's classes become the mask COG; each optional layer it hands back (MaskStrip.layers)
becomes a COG of its own (`layer_path(name)`), written strip by strip alongside.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from stacmask.constants import CLOUD, NODATA, SHADOW, WATER
from stacmask.errors import StacmaskError
from stacmask.methods import ClassifiedStrip, MaskMethod, MaskStrip
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
    #: Files of the optional layers written, by layer name.
    layers: dict[str, str] = field(default_factory=dict)

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


def as_mask_strip(strip: ClassifiedStrip) -> MaskStrip:
    """A method's strip as a MaskStrip (a plain (window, classes) has no layers)."""
    return strip if isinstance(strip, MaskStrip) else MaskStrip(*strip)


class _LayerWriters:
    """One MaskWriter per optional layer, opened when its first strip arrives."""

    def __init__(
        self, method: MaskMethod, source: BandSource, path: Callable[[str], Path], stack: ExitStack
    ) -> None:
        self._declared = {spec.name for spec in method.layers}
        self._method, self._info, self._path, self._stack = method.name, source.info, path, stack
        self.writers: dict[str, MaskWriter] = {}
        self.rows: dict[str, int] = {}

    def write(self, window: Window, name: str, values: NDArray[np.uint8]) -> None:
        if name not in self._declared:
            raise StacmaskError(
                f"the {self._method} method gave a layer {name!r} it does not declare"
            )
        writer = self.writers.get(name)
        if writer is None:
            info = self._info
            writer = MaskWriter(self._path(name), info.width, info.height, info.transform, info.crs)
            self.writers[name] = self._stack.enter_context(writer)
        writer.write(window, values)
        self.rows[name] = self.rows.get(name, 0) + int(window.height)

    def finish(self) -> dict[str, str]:
        for name, writer in self.writers.items():
            if self.rows[name] != self._info.height:
                raise StacmaskError(
                    f"the {self._method} method gave layer {name!r} for {self.rows[name]} of "
                    f"{self._info.height} rows"
                )
            writer.finish()
        return {name: str(writer.path) for name, writer in self.writers.items()}


def mask_scene(
    source: BandSource,
    method: MaskMethod,
    mask_path: Path,
    preview_path: Path | None = None,
    layer_path: Callable[[str], Path] | None = None,
) -> MaskResult:
    """Classify `source` with `method`, write the mask COG (and preview, and each optional
    layer to `layer_path(name)`; none without it); return the covers."""
    info = source.info
    counts = np.zeros(256, dtype=np.int64)
    step = preview_step(info.width, info.height)
    preview_classes: list[NDArray[np.uint8]] = []
    with ExitStack() as stack:
        writer = stack.enter_context(
            MaskWriter(mask_path, info.width, info.height, info.transform, info.crs)
        )
        layers = None if layer_path is None else _LayerWriters(method, source, layer_path, stack)
        for strip in method.classify(source):
            window, classes, strip_layers = as_mask_strip(strip)
            writer.write(window, classes)
            if layers is not None:
                for name, values in strip_layers.items():
                    layers.write(window, name, values)
            counts += _class_counts(classes, 2 * numba.get_num_threads())
            top = int(window.row_off)
            first = -(-top // step) * step - top
            preview_classes.append(classes[first::step, ::step])
        writer.finish()
        layer_files = {} if layers is None else layers.finish()
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
        layers=layer_files,
    )
