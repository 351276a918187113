"""The reader: one scene's bands (SceneInputs) as one windowed BandSource, for every sensor.

The four main bands (blue, green, red, nir) are decoded once, strip by strip, on a thread pool
that decodes the next strip while the current one is used, gathering whole-scene statistics
and the preview on the way. Two modes:
- cached (default): `prepare()` decodes everything into an uncompressed scratch file; methods then
  make as many passes as they need over it (a disk read, not a DEFLATE decode or HTTP request);
- streamed (`cache_bands=False`, for methods that read the bands once): strips are decoded as the
  method asks for them, top to bottom, and nothing is written.
Any other band (the s2cloudless bands, QA_PIXEL, an Fmask result) is opened once on first use
and read window by window (`read_bands`, `read_values`). Bands on another grid than the working
grid are warped onto it (grid.OpenBand). Memory follows the strip, not the scene.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from types import TracebackType
from typing import Any

import numba
import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.errors import RasterioError
from rasterio.windows import Window

from stacmask.errors import BandReadError, UnusualValueWarning
from stacmask.output.preview import preview_step
from stacmask.reading.band_source import BandStats, BandValues, SceneInfo
from stacmask.reading.grid import Grid, OpenBand, dataset_grid, gdal_message, resampled
from stacmask.reading.scratch import ScratchRaster
from stacmask.reading.storage import gdal_options, open_raster
from stacmask.sensors.inputs import MAIN_BANDS, BandRef, SceneInputs

#: Types of DN bands (calibrated with gains): unsigned or signed 16-bit counts.
DN_TYPES = (np.dtype(np.uint16), np.dtype(np.int16))
#: Pixels per strip that methods read from the scratch file: memory follows this, not the scene.
STRIP_PIXELS = 1 << 21
#: Rows decoded at a time from warped bands (a WarpedVRT has no blocks of its own to follow).
WARP_ROWS = 256


@numba.njit(parallel=True, nogil=True, cache=True)
def _to_reflectance(raw: Any, scale: Any, offset: Any, nodata: float, out: Any) -> None:
    """out = raw * scale + offset per band, NaN where the band holds `nodata` (one fused loop)."""
    for b in range(raw.shape[0]):
        for i in numba.prange(raw.shape[1]):
            for j in range(raw.shape[2]):
                v = raw[b, i, j]
                out[b, i, j] = np.nan if v == nodata else v * scale[b] + offset[b]


@numba.njit(parallel=True, nogil=True, cache=True)
def _strip_statistics(raw: Any, nodata: float, chunks: int) -> Any:
    """One pass over a (4, h, w) strip: each band's min and max over its non-NaN values (inf
    and -inf when it has none) and the pixels where blue, green and red disagree on holding
    data (some but not all of them equal `nodata`)."""
    rows, cols = raw.shape[1], raw.shape[2]
    low = np.full((chunks, 4), np.inf)
    high = np.full((chunks, 4), -np.inf)
    mismatch = np.zeros(chunks, np.int64)
    for k in numba.prange(chunks):
        for i in range(k * rows // chunks, (k + 1) * rows // chunks):
            for j in range(cols):
                for b in range(4):
                    v = raw[b, i, j]
                    if v == v:
                        low[k, b] = min(low[k, b], v)
                        high[k, b] = max(high[k, b], v)
                has = (raw[0, i, j] != nodata) + (raw[1, i, j] != nodata) + (raw[2, i, j] != nodata)
                if has == 1 or has == 2:
                    mismatch[k] += 1
    out_low, out_high = np.full(4, np.inf), np.full(4, -np.inf)
    for k in range(chunks):
        for b in range(4):
            out_low[b] = min(out_low[b], low[k, b])
            out_high[b] = max(out_high[b], high[k, b])
    return out_low, out_high, mismatch.sum()


class RasterBandSource:
    """The bands of one scene (SceneInputs) on its working grid: the BandSource of every sensor.

    Use as a context manager: `prepare()` runs on entry; files, threads and scratch go on exit.
    """

    def __init__(
        self,
        inputs: SceneInputs,
        *,
        scratch_dir: str | os.PathLike[str] | None = None,
        threads: int = 4,
        timeout: float = 60.0,
        strip_pixels: int = STRIP_PIXELS,
        progress: Callable[[int], object] | None = None,
        cache_bands: bool = True,
    ) -> None:
        self.inputs = inputs
        self.main = tuple(inputs.band(name) for name in MAIN_BANDS)
        self.hrefs = tuple(band.href for band in self.main)
        #: False: decode strips as they are read, once, top to bottom; no scratch file.
        self.cache_bands = cache_bands
        self._scratch_dir = scratch_dir
        self._threads = threads
        self._strip_pixels = strip_pixels
        #: Called with the number of rows each decode or strip read covered (progress bars).
        self._progress = progress
        self._gdal = gdal_options(timeout)
        self._scratch: ScratchRaster | None = None
        self._open_files: ExitStack | None = None
        self._other = ExitStack()
        self._others: dict[str, OpenBand] = {}
        self._decoder: Iterator[tuple[Window, NDArray[Any]]] | None = None
        self._current: tuple[Window, NDArray[Any]] | None = None
        self._stats: BandStats | None = None
        self._minimum = np.full(4, np.inf)
        self._maximum = np.full(4, -np.inf)
        self._mismatch = 0
        #: DN below 0 (not no data) per main band: counts are never negative.
        self._negative = np.zeros(4, np.int64)
        self._thumbnail_rows: list[NDArray[Any]] = []
        self.nodata: float = 0.0
        self.dtype = np.dtype(np.uint16)
        self._block_rows = 1
        self.grid = self._open_and_check()
        self.info = self._scene_info(self.grid)
        self._thumbnail_step = preview_step(self.info.width, self.info.height)
        self._scale = np.array([band.scale for band in self.main], np.float32)
        self._offset = np.array([band.offset for band in self.main], np.float32)

    # -- setup -----------------------------------------------------------------------------
    def _open(self, band: BandRef, grid: Grid) -> OpenBand:
        spec = self.inputs.grid
        return OpenBand(band, grid, warp=spec.warp, reference=spec.reference)

    def _open_and_check(self) -> Grid:
        """The working grid; every main band opens onto it (BandReadError naming the file)."""
        spec = self.inputs.grid
        reference = self.inputs.band(spec.reference)
        with rasterio.Env(**self._gdal):
            try:
                with open_raster(reference.href) as ds:
                    grid = resampled(dataset_grid(ds), spec.resolution, reference.href)
            except RasterioError as exc:
                raise BandReadError(
                    reference.href, f"cannot open raster: {gdal_message(exc)}"
                ) from exc
            for number, band in enumerate(self.main):
                with self._open(band, grid) as opened:
                    self._check_band(band, opened.file_bands, opened.dtype)
                    if number and opened.dtype != self.dtype:
                        raise BandReadError(
                            band.href,
                            f"{band.name} band holds {opened.dtype} values, the "
                            f"{self.main[0].name} band {self.dtype}: the four bands are read "
                            f"as {self.dtype} and must share a type",
                        )
                    if number == 0:
                        self.dtype = opened.dtype
                        assert opened.nodata is not None  # reflectance bands always have one
                        self.nodata = opened.nodata
                        shapes = opened.dataset.block_shapes
                        self._block_rows = int(shapes[0][0]) if opened.on_grid else WARP_ROWS
        return grid

    def _check_band(self, band: BandRef, count: int, dtype: np.dtype[Any]) -> None:
        """BandReadError naming the file when a main band's file is not what the scene says: a
        file of several bands given for one band, or no DN where DN are calibrated."""
        same_file = [other for other in self.main if other.href == band.href]
        if count > 1 and len({other.index for other in same_file}) == 1:
            raise BandReadError(
                band.href,
                f"raster has {count} bands but is given for the {band.name} band alone (band "
                f"{band.index} would be read as {band.name}); give a file of one band",
            )
        if self.inputs.calibration != "reflectance" and dtype not in DN_TYPES:
            raise BandReadError(
                band.href,
                f"{band.name} band holds {dtype} values; DN (calibrated with gains, "
                f"{self.inputs.calibration}) are uint16 or int16",
            )

    def _scene_info(self, grid: Grid) -> SceneInfo:
        inputs = self.inputs
        return SceneInfo(
            width=grid.width,
            height=grid.height,
            transform=grid.transform,
            crs=grid.crs,
            pixel_size=abs(grid.transform.a),
            sun_elevation=inputs.sun_elevation,
            sun_azimuth=inputs.sun_azimuth,
            acquired=inputs.acquired,
            gains=inputs.gains,
            calibration=inputs.calibration,
        )

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
        """Stop decoding, close the band files and remove the scratch file."""
        self._decoder = None
        self._current = None
        if self._open_files is not None:
            self._open_files.close()
            self._open_files = None
        self._other.close()
        self._others.clear()
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None

    # -- BandSource ------------------------------------------------------------------------
    @property
    def stats(self) -> BandStats:
        """Whole-scene band statistics: after `prepare`, or when streamed after the last strip."""
        if self._stats is None:
            raise RuntimeError(
                "band statistics are complete once every strip is decoded: "
                + (
                    "streamed bands have them after the last strip (use cache_bands=True for "
                    "methods that need them first)"
                    if self._decoder
                    else "call prepare() first"
                )
            )
        return self._stats

    def strips(self) -> Iterator[Window]:
        """Full-width row strips that tile the scene: about STRIP_PIXELS pixels each, or the
        decoding strips when streamed."""
        if self.cache_bands:
            return self._row_windows(max(1, self._strip_pixels // self.info.width))
        return self._row_windows(self._decode_rows)

    @property
    def _decode_rows(self) -> int:
        """Rows decoded at once: whole blocks, at least about STRIP_PIXELS pixels."""
        blocks = -(-self._strip_pixels // (self.info.width * self._block_rows))
        return self._block_rows * max(1, blocks)

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
        _to_reflectance(raw, self._scale, self._offset, self.nodata, out)
        return out

    def reflectance_scaling(self) -> tuple[NDArray[np.float32], NDArray[np.float32], float]:
        """The main bands' scale and offset to reflectance (BandRef), and their no data."""
        return self._scale, self._offset, self.nodata

    def valid(self, window: Window) -> NDArray[np.bool_]:
        """Pixels where all four bands hold data."""
        valid: NDArray[np.bool_] = np.all(self._read_cached(window) != self.nodata, axis=0)
        return valid

    def thumbnail(self, step: int) -> NDArray[Any]:
        """Stored values of every `step`-th row and column, shape (4, rows, cols), once every
        strip is decoded (gathered while decoding, for the preview)."""
        self.stats  # noqa: B018 (raises until every strip is decoded)
        if step != self._thumbnail_step:
            raise ValueError(f"the thumbnail kept while decoding has step {self._thumbnail_step}")
        return np.stack(self._thumbnail_rows, axis=1)

    @property
    def band_names(self) -> tuple[str, ...]:
        """Every band of the scene by name (SceneInputs.bands)."""
        return self.inputs.band_names

    def read_bands(self, names: Sequence[str], window: Window) -> NDArray[np.float32]:
        """Reflectance of the bands `names` in a window, shape (n, h, w); NaN = no data."""
        out = np.empty((len(names), int(window.height), int(window.width)), np.float32)
        for number, name in enumerate(names):
            band = self._other_band(name)
            with rasterio.Env(**self._gdal):  # GDAL's settings are restored after each use
                raw = band.read(window)[np.newaxis]
            nodata = np.nan if band.nodata is None else band.nodata
            scale = np.array([band.band.scale], np.float32)
            offset = np.array([band.band.offset], np.float32)
            _to_reflectance(raw, scale, offset, nodata, out[number : number + 1])
        return out

    def read_values(self, name: str, window: Window) -> BandValues:
        """Stored values of band `name` in a window (classes, bit flags) and where it holds data
        (not its nodata, inside its file)."""
        band = self._other_band(name)
        with rasterio.Env(**self._gdal):
            values = band.read(window)
            return BandValues(values, band.valid(values, window))

    def _other_band(self, name: str) -> OpenBand:
        """Band `name`, opened onto the grid on first use and kept open until `close()`."""
        opened = self._others.get(name)
        if opened is None:
            with rasterio.Env(**self._gdal):
                opened = self._other.enter_context(self._open(self.inputs.band(name), self.grid))
            self._others[name] = opened
        return opened

    # -- decoding --------------------------------------------------------------------------
    def prepare(self) -> None:
        """Open the bands and start decoding; when cached, decode them all into scratch now."""
        if self._open_files is not None or self._stats is not None:
            return
        self._open_files = ExitStack()
        self._open_files.enter_context(rasterio.Env(**self._gdal))
        bands = [self._open_files.enter_context(self._open(b, self.grid)) for b in self.main]
        # Closed first (exits run last-in first-out): every decode has finished, also when one
        # band failed, before the datasets close. GDAL must never decode from a closed dataset.
        pool = self._open_files.enter_context(ThreadPoolExecutor(self._threads))
        self._open_files.callback(pool.shutdown, wait=True, cancel_futures=True)
        if self.cache_bands:  # decoded straight into the scratch file's memory map
            width, height = self.info.width, self.info.height
            self._scratch = ScratchRaster(4, height, width, self.dtype, self._scratch_dir)
        self._decoder = self._decode_strips(bands, pool)
        if self._scratch is None:
            return
        for window, _ in self._decoder:
            self._scratch.release(int(window.row_off), int(window.height))
        self._open_files.close()
        self._open_files = None

    def _decode_strips(
        self, bands: list[OpenBand], pool: ThreadPoolExecutor
    ) -> Iterator[tuple[Window, NDArray[Any]]]:
        """Decoded strips top to bottom; the next strip decodes while the caller uses this one."""
        windows = list(self._row_windows(self._decode_rows))

        def submit(window: Window) -> tuple[NDArray[Any], list[Future[NDArray[Any]]]]:
            rows = int(window.height)
            out = (
                np.empty((4, rows, self.info.width), self.dtype)
                if self._scratch is None
                else self._scratch.view(int(window.row_off), rows, writeable=True)
            )
            futures = [
                pool.submit(band.read, window, out[number]) for number, band in enumerate(bands)
            ]
            return out, futures

        pending = submit(windows[0]) if windows else None
        for number, window in enumerate(windows):
            assert pending is not None
            raw, futures = pending
            for future in futures:
                future.result()
            pending = submit(windows[number + 1]) if number + 1 < len(windows) else None
            self._account(window, raw)
            if pending is None:  # the last strip: the statistics are whole
                self._warn_negative_dn()
                self._stats = BandStats(
                    minimum=tuple(float(v) for v in self._minimum),  # type: ignore[arg-type]
                    maximum=tuple(float(v) for v in self._maximum),  # type: ignore[arg-type]
                    mismatch_pixels=self._mismatch,
                )
            yield window, raw

    def _warn_negative_dn(self) -> None:
        for band, negative in zip(self.main, self._negative, strict=True):
            if negative:
                warnings.warn(
                    f"{band.href}: {negative} pixel(s) of the {band.name} band hold negative DN; "
                    "DN are counts, so the file is damaged or not DN",
                    UnusualValueWarning,
                    stacklevel=2,
                )

    def _account(self, window: Window, raw: NDArray[Any]) -> None:
        """Fold a decoded strip into min, max, the footprint QA and the thumbnail."""
        low, high, mismatch = _strip_statistics(raw, self.nodata, 2 * numba.get_num_threads())
        np.minimum(self._minimum, low, out=self._minimum)
        np.maximum(self._maximum, high, out=self._maximum)
        self._mismatch += int(mismatch)
        if (
            self.dtype.kind == "i"
            and self.inputs.calibration != "reflectance"
            and bool((low < 0).any())  # the strip's minimum says whether to count at all
        ):
            self._negative += np.count_nonzero((raw < 0) & (raw != self.nodata), axis=(1, 2))
        step, top = self._thumbnail_step, int(window.row_off)
        for row in range(-(-top // step) * step, top + int(window.height), step):
            self._thumbnail_rows.append(raw[:, row - top, ::step].copy())
        if self._progress is not None:
            self._progress(int(window.height))

    def _read_cached(self, window: Window) -> NDArray[Any]:
        """A window's stored values: from the scratch file, or decoded now when streamed."""
        row, rows = int(window.row_off), int(window.height)
        col, cols = int(window.col_off), int(window.width)
        if self._scratch is not None:
            out = self._scratch.read(row, rows)
            if self._progress is not None and rows > 1:
                self._progress(rows)
        else:
            out = self._streamed(window)
        if col == 0 and cols == self.info.width:
            return out
        return out[:, :, col : col + cols]

    def _streamed(self, window: Window) -> NDArray[Any]:
        """The strip `window` (one of `strips()`, in order) of a streamed source."""
        if self._current is not None and self._current[0] == window:
            return self._current[1]
        if self._decoder is None:
            raise RuntimeError("call prepare() before reading strips")
        top = (
            0 if self._current is None else int(self._current[0].row_off + self._current[0].height)
        )
        rows = min(self._decode_rows, self.info.height - top)
        if window != Window(0, top, self.info.width, rows):
            raise RuntimeError(
                f"streamed bands are read once, strip by strip from the top; {window} was "
                "asked for out of turn (use cache_bands=True for methods that read again)"
            )
        self._current = next(self._decoder)
        return self._current[1]
