"""What a mask method sees of a scene: its facts (SceneInfo) and windowed band reads (BandSource).

Mask methods are numpy in, numpy out: they never open files. They read the scene strip by strip
through a BandSource, as many passes as they need, so memory follows the strip, not the scene:
the four main bands (blue, green, red, nir) with read_raw / read_reflectance, any other band of
the scene by name with read_bands (reflectance) or read_values (classes, bit flags).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.windows import Window

from stacmask.sensors.inputs import MAIN_BANDS, Calibration


@dataclass(frozen=True)
class SceneInfo:
    """Facts about one scene that a mask method may use."""

    width: int
    height: int
    transform: Affine
    crs: CRS | None
    #: Ground sampling distance in metres (8 for WPM multispectral).
    pixel_size: float
    #: Sun elevation and azimuth in degrees, None when unknown.
    sun_elevation: float | None
    sun_azimuth: float | None
    acquired: datetime | None
    #: Absolute calibration gains of blue, green, red, nir (radiance = DN * gain).
    gains: tuple[float, float, float, float]
    #: Where the gains came from: the scene's XML, stacmask's defaults, or a reflectance input.
    calibration: Calibration


@dataclass(frozen=True)
class BandStats:
    """Whole-scene per-band statistics gathered while the bands are first read."""

    #: min and max of each band's raw values over the WHOLE raster, no-data included.
    minimum: tuple[float, float, float, float]
    maximum: tuple[float, float, float, float]
    #: Pixels where blue, green and red disagree on holding data (the notebook's band-mismatch
    #: test, (b1 xor b2) or (b2 xor b3) or (b1 xor b3)); the scene is flagged above 100.
    mismatch_pixels: int = 0


class BandValues(NamedTuple):
    """Stored values of a band in a window, and where they hold data."""

    values: NDArray[Any]
    valid: NDArray[np.bool_]


class BandSource(Protocol):
    """Windowed access to the bands of one scene: the four main ones (blue, green, red, nir)
    strip by strip with whole-scene statistics, and any other by name."""

    info: SceneInfo

    @property
    def stats(self) -> BandStats:
        """Whole-scene band statistics (available before any strip is read)."""
        ...

    def strips(self) -> Iterator[Window]:
        """Row strips that tile the scene top to bottom, aligned to the source's blocks."""
        ...

    def read_raw(self, window: Window) -> NDArray[Any]:
        """Stored values in their stored dtype (DN, or reflectance), shape (4, h, w)."""
        ...

    def read_reflectance(self, window: Window) -> NDArray[np.float32]:
        """Top-of-atmosphere reflectance, shape (4, h, w); NaN where a band has no data."""
        ...

    def valid(self, window: Window) -> NDArray[np.bool_]:
        """Pixels where all four bands hold data, shape (h, w)."""
        ...

    def thumbnail(self, step: int) -> NDArray[Any]:
        """Stored values of every `step`-th row and column, shape (4, rows, cols)."""
        ...

    def reflectance_scaling(self) -> tuple[NDArray[np.float32], NDArray[np.float32], float]:
        """(scale, offset, nodata) per band: reflectance = stored x scale + offset, in float32,
        no data where the stored value is `nodata`, NaN or infinite (read_reflectance's rule)."""
        ...

    @property
    def band_names(self) -> tuple[str, ...]:
        """Every band of the scene by name (the main four and any other the sensor gave)."""
        ...

    def read_bands(self, names: Sequence[str], window: Window) -> NDArray[np.float32]:
        """Reflectance of the bands `names` in a window, shape (n, h, w); NaN = no data."""
        ...

    def read_values(self, name: str, window: Window) -> BandValues:
        """Stored values of band `name` in a window (classes, bit flags) and where it holds
        data (not its nodata, inside its file)."""
        ...


class ArrayBandSource:
    """A BandSource over a (4, H, W) array held in memory (small scenes, tests, reflectance)."""

    def __init__(
        self,
        values: NDArray[Any],
        info: SceneInfo,
        *,
        reflectance_scale: float | None = None,
        nodata: float | None = None,
        strip_rows: int = 256,
    ) -> None:
        """`values` are DN converted with `info.gains`, or reflectance times `reflectance_scale`."""
        self.values = values
        self.info = info
        self._scale = reflectance_scale
        self._nodata = nodata
        self._rows = strip_rows
        finite = np.where(np.isfinite(values), values, np.nan)
        self._stats = BandStats(
            minimum=tuple(float(np.nanmin(b)) for b in finite),  # type: ignore[arg-type]
            maximum=tuple(float(np.nanmax(b)) for b in finite),  # type: ignore[arg-type]
        )

    @property
    def stats(self) -> BandStats:
        """Whole-array band statistics."""
        return self._stats

    def strips(self) -> Iterator[Window]:
        """Row strips of `strip_rows` rows."""
        for top in range(0, self.info.height, self._rows):
            yield Window(0, top, self.info.width, min(self._rows, self.info.height - top))

    def _slice(self, window: Window) -> NDArray[Any]:
        r, c = int(window.row_off), int(window.col_off)
        return self.values[:, r : r + int(window.height), c : c + int(window.width)]

    def read_raw(self, window: Window) -> NDArray[Any]:
        """Stored values of a window."""
        return self._slice(window)

    def valid(self, window: Window) -> NDArray[np.bool_]:
        """Pixels where every band holds a finite value (and not `nodata`)."""
        raw = self._slice(window)
        ok: NDArray[np.bool_] = np.all(np.isfinite(raw), axis=0)
        if self._nodata is not None:
            ok &= np.all(raw != self._nodata, axis=0)
        return ok

    def thumbnail(self, step: int) -> NDArray[Any]:
        """Every `step`-th row and column."""
        return self.values[:, ::step, ::step]

    def reflectance_scaling(self) -> tuple[NDArray[np.float32], NDArray[np.float32], float]:
        """`reflectance_scale`, or the gains' reflectance factors; no offset."""
        from stacmask.sensors.cbers4a.reflectance import reflectance_factors

        if self._scale is not None:
            scale = np.full(4, self._scale, np.float32)
        else:
            info = self.info
            factors = reflectance_factors(info.gains, info.sun_elevation, info.acquired)
            scale = factors.astype(np.float32)
        nodata = float("nan") if self._nodata is None else float(self._nodata)
        return scale, np.zeros(4, np.float32), nodata

    def read_reflectance(self, window: Window) -> NDArray[np.float32]:
        """TOA reflectance of a window; NaN where a band has no data."""
        scale, _, _ = self.reflectance_scaling()
        out = self._slice(window).astype(np.float32) * scale[:, None, None]
        out[:, ~self.valid(window)] = np.nan
        return out

    @property
    def band_names(self) -> tuple[str, ...]:
        """The four main bands."""
        return MAIN_BANDS

    def _index(self, name: str) -> int:
        if name not in MAIN_BANDS:
            raise KeyError(f"no band {name!r}; an array source has {', '.join(MAIN_BANDS)}")
        return MAIN_BANDS.index(name)

    def read_bands(self, names: Sequence[str], window: Window) -> NDArray[np.float32]:
        """Reflectance of some of the four bands in a window."""
        reflectance = self.read_reflectance(window)
        return reflectance[[self._index(name) for name in names]]

    def read_values(self, name: str, window: Window) -> BandValues:
        """Stored values of one of the four bands in a window, and where all four hold data."""
        return BandValues(self._slice(window)[self._index(name)], self.valid(window))
