"""Band sources of Sentinel-2 and Landsat scenes: their bands warped onto one working grid.

GridBandSource is the lead engine's RasterBandSource (one decoding pass into a scratch file,
whole-scene statistics, strips) over bands that WarpedVRT brings onto a Grid, with per-band
scale and offset for reflectance. Sentinel2Source adds the ten s2cloudless bands and an
optional Fmask raster; LandsatSource adds QA_PIXEL. Methods read through them; they open
nothing themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from stacmask.constants import NODATA
from stacmask.errors import BandReadError
from stacmask.methods.fmask import FmaskEncoding, decode_fmask
from stacmask.reading.band_source import SceneInfo
from stacmask.reading.grid import Grid, read_on_grid, read_stack
from stacmask.reading.rasters import GDAL_HTTP_OPTIONS, RasterBandSource

#: Rows decoded at a time from the warped bands.
WARP_ROWS = 256


class _WarpedBand:
    """A source dataset and its WarpedVRT onto a grid; read() and close() like a dataset."""

    def __init__(self, href: str, grid: Grid) -> None:
        try:
            self._src = rasterio.open(href)
            finer = abs(self._src.transform.a) < grid.resolution
            self._vrt = WarpedVRT(
                self._src,
                crs=grid.crs,
                transform=grid.transform,
                width=grid.width,
                height=grid.height,
                resampling=Resampling.average if finer else Resampling.bilinear,
            )
        except RasterioError as exc:
            raise BandReadError(href, f"cannot open raster: {exc}") from exc

    def read(self, band: int, window: Window, out: NDArray[Any] | None = None) -> NDArray[Any]:
        data: NDArray[Any] = self._vrt.read(band, window=window, out=out)
        return data

    def close(self) -> None:
        self._vrt.close()
        self._src.close()

    def __enter__(self) -> _WarpedBand:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GridBandSource(RasterBandSource):
    """Blue, green, red and NIR of any grids, warped onto `grid` (BandSource protocol).

    `scale` and `offset` turn stored values into reflectance (read_reflectance); `info` is the
    scene's SceneInfo on the grid.
    """

    def __init__(
        self,
        hrefs: Sequence[str],
        grid: Grid,
        info: SceneInfo,
        scale: Sequence[float],
        offset: Sequence[float],
        *,
        timeout: float = 60.0,
    ) -> None:
        self.grid = grid
        self._info_on_grid = info
        self._scale = np.asarray(scale, dtype=np.float32)
        self._offset_values = np.asarray(offset, dtype=np.float32)
        super().__init__(hrefs, lambda *_: info, timeout=timeout)

    def _open_and_check(self) -> SceneInfo:
        with rasterio.Env(**self._gdal):
            for href in self.hrefs:
                try:
                    with rasterio.open(href) as ds:
                        if ds.count < 1:
                            raise BandReadError(href, "raster has no band")
                        if ds.crs is None:
                            raise BandReadError(href, "raster has no CRS")
                        if href == self.hrefs[0]:
                            self.nodata = float(ds.nodata) if ds.nodata is not None else 0.0
                            self.dtype = np.dtype(ds.dtypes[0])
                except RasterioError as exc:
                    raise BandReadError(href, f"cannot open raster: {exc}") from exc
        self._block_rows = WARP_ROWS
        info = self._info_on_grid
        if (info.width, info.height) != (self.grid.width, self.grid.height):
            raise ValueError("SceneInfo size differs from the grid's")
        return info

    def _open(self, href: str) -> Any:
        return _WarpedBand(href, self.grid)

    def reflectance_scaling(self) -> tuple[NDArray[np.float32], NDArray[np.float32], float]:
        """The bands' scale and offset."""
        return self._scale, self._offset_values, self.nodata

    def read_reflectance(self, window: Window) -> NDArray[np.float32]:
        """value * scale + offset of a window; NaN where a band holds no data."""
        raw = self._read_cached(window)
        out = raw.astype(np.float32)
        out *= self._scale[:, None, None]
        out += self._offset_values[:, None, None]
        out[raw == self.nodata] = np.nan
        return out


class Sentinel2Source(GridBandSource):
    """A Sentinel-2 L1C scene on its working grid: preview bands, s2cloudless bands, Fmask."""

    def __init__(
        self,
        rgbn_hrefs: Sequence[str],
        rgbn_scaling: Sequence[tuple[float, float]],
        model_hrefs: Sequence[str],
        model_scaling: Sequence[tuple[float, float]],
        grid: Grid,
        info: SceneInfo,
        *,
        fmask_href: str | None = None,
        fmask_encoding: FmaskEncoding = "categorical",
        fmask_adjacent_as_cloud: bool = False,
    ) -> None:
        super().__init__(
            rgbn_hrefs,
            grid,
            info,
            [s for s, _ in rgbn_scaling],
            [o for _, o in rgbn_scaling],
        )
        self.model_hrefs = list(model_hrefs)
        self._model_scale = [s for s, _ in model_scaling]
        self._model_offset = [o for _, o in model_scaling]
        self.fmask_href = fmask_href
        self._fmask_encoding: FmaskEncoding = fmask_encoding
        self._fmask_adjacent = fmask_adjacent_as_cloud

    def read_model_bands(self, window: Window) -> NDArray[np.float32]:
        """TOA reflectance of the s2cloudless bands in a window, (10, h, w), NaN = no data."""
        with rasterio.Env(**GDAL_HTTP_OPTIONS):
            return read_stack(
                self.model_hrefs,
                self.grid,
                window=window,
                scale=self._model_scale,
                offset=self._model_offset,
            )

    def read_fmask(self) -> NDArray[np.uint8] | None:
        """The scene's Fmask result decoded to class codes on the whole grid (nearest), or None.

        Pixels outside the Fmask raster, or equal to its declared nodata, are NODATA.
        """
        if self.fmask_href is None:
            return None
        with rasterio.Env(**GDAL_HTTP_OPTIONS):
            values, valid = read_on_grid(self.fmask_href, self.grid, resampling=Resampling.nearest)
        classes = decode_fmask(
            np.asarray(values), self._fmask_encoding, adjacent_as_cloud=self._fmask_adjacent
        )
        classes[~valid] = NODATA
        return classes


class LandsatSource(GridBandSource):
    """A Landsat Collection 2 scene on its QA_PIXEL grid: preview bands and QA_PIXEL."""

    def __init__(
        self,
        rgbn_hrefs: Sequence[str],
        rgbn_scaling: Sequence[tuple[float, float]],
        qa_href: str,
        grid: Grid,
        info: SceneInfo,
    ) -> None:
        super().__init__(
            rgbn_hrefs, grid, info, [s for s, _ in rgbn_scaling], [o for _, o in rgbn_scaling]
        )
        self.qa_href = qa_href

    def read_qa(self, window: Window) -> NDArray[np.uint16]:
        """QA_PIXEL of a window (nearest: bit flags are never averaged); fill outside the file."""
        with rasterio.Env(**GDAL_HTTP_OPTIONS):
            values, valid = read_on_grid(
                self.qa_href, self.grid, window=window, resampling=Resampling.nearest
            )
        if not np.issubdtype(values.dtype, np.integer):
            raise BandReadError(
                self.qa_href, f"QA_PIXEL must be an integer band, is {values.dtype}"
            )
        qa = np.asarray(values).astype(np.uint16)
        qa[~valid] = 1  # the fill bit
        return qa
