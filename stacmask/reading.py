"""Band reading: four single-band rasters (local or HTTP) as one windowed BandSource.

The first pass decodes every band once, strip by strip, into an uncompressed scratch file and
gathers whole-scene statistics on the way. Mask methods then make as many passes as they need
over the scratch file, which costs a disk read instead of a DEFLATE decode or an HTTP request.
Memory follows the strip: nothing scene-sized is ever held in RAM.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from types import TracebackType
from typing import Any

import numba
import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.windows import Window

from stacmask.errors import BandReadError
from stacmask.reflectance import reflectance_factors
from stacmask.scene import BandStats, SceneInfo

#: GDAL settings for reading bands over HTTP: retries on 429/5xx, timeouts, no directory
#: listing of the remote folder, merged consecutive range requests.
GDAL_HTTP_OPTIONS: dict[str, str | int | bool] = {
    "GDAL_HTTP_MAX_RETRY": 3,
    "GDAL_HTTP_RETRY_DELAY": 1,
    "GDAL_HTTP_TIMEOUT": 60,
    "GDAL_HTTP_CONNECTTIMEOUT": 15,
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "CPL_VSIL_CURL_USE_HEAD": "NO",
    # GDAL's block cache defaults to 5 % of RAM; decoded blocks are read once, so keep it small.
    "GDAL_CACHEMAX": 128,
}

#: Pixels per strip that methods read from the scratch file: memory follows this, not the scene.
STRIP_PIXELS = 1 << 21


@numba.njit(parallel=True, nogil=True, cache=True)
def _to_reflectance(raw: Any, factors: Any, nodata: float, out: Any) -> None:
    """out = raw * factor per band, NaN where the band holds `nodata` (one fused loop)."""
    for b in range(raw.shape[0]):
        for i in numba.prange(raw.shape[1]):
            for j in range(raw.shape[2]):
                v = raw[b, i, j]
                out[b, i, j] = np.nan if v == nodata else v * factors[b]


@numba.njit(parallel=True, nogil=True, cache=True)
def _mismatch(b1: Any, b2: Any, b3: Any, nodata: float) -> int:
    """Pixels where some but not all of three bands hold data."""
    count = 0
    for i in numba.prange(b1.shape[0]):
        for j in range(b1.shape[1]):
            has = (b1[i, j] != nodata) + (b2[i, j] != nodata) + (b3[i, j] != nodata)
            if has == 1 or has == 2:
                count += 1
    return count


class RasterBandSource:
    """Blue, green, red and NIR rasters of one scene, decoded once into a scratch file.

    Use as a context manager: `prepare()` runs on entry, the scratch file goes on exit.
    """

    def __init__(
        self,
        hrefs: Sequence[str],
        make_info: Callable[[int, int, Affine, CRS | None], SceneInfo],
        *,
        scratch_dir: str | os.PathLike[str] | None = None,
        threads: int = 4,
        timeout: float = 60.0,
        strip_pixels: int = STRIP_PIXELS,
        indexes: Sequence[int] = (1, 1, 1, 1),
        progress: Callable[[int], object] | None = None,
    ) -> None:
        if len(hrefs) != 4:
            raise ValueError("RasterBandSource needs exactly four bands: blue, green, red, nir")
        self.hrefs = tuple(hrefs)
        #: Band index read from each href (1, 2, 3, 4 for one four-band stack given four times).
        self.indexes = tuple(indexes)
        self._make_info = make_info
        self._scratch_dir = scratch_dir
        self._threads = threads
        self._strip_pixels = strip_pixels
        #: Called with the number of rows each decode or strip read covered (progress bars).
        self._progress = progress
        self._gdal = {**GDAL_HTTP_OPTIONS, "GDAL_HTTP_TIMEOUT": max(1, round(timeout))}
        self._scratch: tempfile._TemporaryFileWrapper[bytes] | None = None
        self._stats: BandStats | None = None
        self.nodata: float = 0.0
        self.dtype = np.dtype(np.uint16)
        self.info = self._open_and_check()
        self._factors = (
            np.array(self.info.gains, dtype=np.float64)
            if self.info.calibration == "reflectance"
            else reflectance_factors(self.info.gains, self.info.sun_elevation, self.info.acquired)
        )

    # -- setup -----------------------------------------------------------------------------
    def _open_and_check(self) -> SceneInfo:
        shapes = []
        first = None
        with rasterio.Env(**self._gdal):
            for href, index in zip(self.hrefs, self.indexes, strict=True):
                try:
                    with rasterio.open(href) as ds:
                        if ds.count < index:
                            raise BandReadError(
                                href, f"raster has {ds.count} band(s); band {index} is needed"
                            )
                        shapes.append((ds.width, ds.height, ds.transform, ds.crs))
                        if first is None:
                            first = ds.profile
                            self.dtype = np.dtype(ds.dtypes[0])
                            # DN rasters use 0 for no data; a float stack without a nodata
                            # value has none (NaN compares unequal to everything).
                            default = 0.0 if self.dtype.kind in "iu" else float("nan")
                            self.nodata = float(ds.nodata) if ds.nodata is not None else default
                            self._block_rows = ds.block_shapes[0][0]
                except RasterioError as exc:
                    raise BandReadError(href, f"cannot open raster: {exc}") from exc
        width, height, transform, crs = shapes[0]
        for href, shape in zip(self.hrefs[1:], shapes[1:], strict=True):
            if shape[:2] != (width, height):
                raise BandReadError(
                    href,
                    f"size {shape[0]}x{shape[1]} differs from the blue band's {width}x{height}",
                )
            if shape[2] != transform or shape[3] != crs:
                raise BandReadError(href, "georeferencing differs from the blue band's")
        return self._make_info(width, height, transform, crs)

    def __enter__(self) -> RasterBandSource:
        try:
            self.prepare()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove the scratch file."""
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None

    # -- BandSource ------------------------------------------------------------------------
    @property
    def stats(self) -> BandStats:
        """Whole-scene band statistics (after `prepare`)."""
        if self._stats is None:
            raise RuntimeError("call prepare() before reading statistics")
        return self._stats

    def strips(self) -> Iterator[Window]:
        """Full-width row strips of about STRIP_PIXELS pixels, whatever the scene's width."""
        return self._row_windows(max(1, self._strip_pixels // self.info.width))

    def _row_windows(self, rows: int) -> Iterator[Window]:
        for top in range(0, self.info.height, rows):
            yield Window(0, top, self.info.width, min(rows, self.info.height - top))

    def read_raw(self, window: Window) -> NDArray[Any]:
        """Stored band values of a window, in the bands' dtype."""
        return self._read_cached(window)

    def read_reflectance(self, window: Window) -> NDArray[np.float32]:
        """TOA reflectance of a window; NaN where a band holds no data."""
        raw = self._read_cached(window)
        out = np.empty(raw.shape, np.float32)
        _to_reflectance(raw, self._factors.astype(np.float32), self.nodata, out)
        return out

    def valid(self, window: Window) -> NDArray[np.bool_]:
        """Pixels where all four bands hold data."""
        valid: NDArray[np.bool_] = np.all(self._read_cached(window) != self.nodata, axis=0)
        return valid

    # -- the decoding pass -----------------------------------------------------------------
    def prepare(self) -> None:
        """Decode all bands once into the scratch file, gathering min, max and footprint QA."""
        if self._stats is not None:
            return
        width, height = self.info.width, self.info.height
        self._scratch = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives until close())
            prefix="stacmask-bands-", suffix=".raw", dir=self._scratch_dir
        )
        self._scratch.truncate(4 * width * height * self.dtype.itemsize)
        minimum = np.full(4, np.inf)
        maximum = np.full(4, -np.inf)
        mismatch = 0
        with rasterio.Env(**self._gdal), ExitStack() as open_datasets:
            datasets = [open_datasets.enter_context(self._open(href)) for href in self.hrefs]
            # The pool is left (every decode finished) before the datasets are closed, also
            # when one band fails: GDAL must never decode from a closed dataset.
            with ThreadPoolExecutor(self._threads) as pool:
                for window in self._row_windows(self._block_rows):
                    bands = list(
                        pool.map(self._decode, datasets, self.hrefs, [window] * 4, self.indexes)
                    )
                    for b, data in enumerate(bands):
                        self._write_cached(b, window, data)
                        if data.dtype.kind == "f" and np.isnan(data).all():
                            continue
                        minimum[b] = min(minimum[b], float(np.nanmin(data)))
                        maximum[b] = max(maximum[b], float(np.nanmax(data)))
                    mismatch += self._count_mismatch(bands)
                    if self._progress is not None:
                        self._progress(int(window.height))
        self._stats = BandStats(
            minimum=(float(minimum[0]), float(minimum[1]), float(minimum[2]), float(minimum[3])),
            maximum=(float(maximum[0]), float(maximum[1]), float(maximum[2]), float(maximum[3])),
            mismatch_pixels=mismatch,
        )

    def _count_mismatch(self, bands: list[NDArray[np.generic]]) -> int:
        """Pixels where blue, green and red disagree on holding data (the notebook's xor test)."""
        return int(_mismatch(bands[0], bands[1], bands[2], self.nodata))

    def _open(self, href: str) -> rasterio.io.DatasetReader:
        try:
            return rasterio.open(href)
        except RasterioError as exc:
            raise BandReadError(href, f"cannot open raster: {exc}") from exc

    @staticmethod
    def _decode(
        ds: rasterio.io.DatasetReader, href: str, window: Window, index: int = 1
    ) -> NDArray[np.generic]:
        try:
            data: NDArray[np.generic] = ds.read(index, window=window)
        except RasterioError as exc:
            raise BandReadError(
                href, f"cannot decode rows {window.row_off}-{window.row_off + window.height}: {exc}"
            ) from exc
        return data

    def _offset(self, band: int, row: int) -> int:
        return ((band * self.info.height) + row) * self.info.width * self.dtype.itemsize

    def _write_cached(self, band: int, window: Window, data: NDArray[np.generic]) -> None:
        assert self._scratch is not None
        self._scratch.seek(self._offset(band, int(window.row_off)))
        self._scratch.write(np.ascontiguousarray(data, dtype=self.dtype).tobytes())

    def _read_cached(self, window: Window) -> NDArray[np.generic]:
        if self._scratch is None:
            raise RuntimeError("call prepare() before reading strips")
        row, rows = int(window.row_off), int(window.height)
        col, cols = int(window.col_off), int(window.width)
        out = np.empty((4, rows, self.info.width), dtype=self.dtype)
        for band in range(4):
            self._scratch.seek(self._offset(band, row))
            self._scratch.readinto(memoryview(out[band]).cast("B"))
        if self._progress is not None and rows > 1:
            self._progress(rows)
        if col == 0 and cols == self.info.width:
            return out
        return out[:, :, col : col + cols]
