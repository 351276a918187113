"""Read bands of different native grids (Sentinel-2 10/20/60 m, a Fmask file) onto one grid.

Local paths and http(s) URLs alike (GDAL reads URLs with range requests, with the engine's
GDAL_HTTP_OPTIONS: retries, timeouts, no directory listing). Each band is warped
with rasterio's WarpedVRT onto the target Grid: `average` when the source is finer than the
grid, `bilinear` when coarser, `nearest` for categorical or bit-packed bands.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from stacmask.errors import BandReadError
from stacmask.reading.rasters import GDAL_HTTP_OPTIONS

#: Rows per strip when a whole grid is read strip by strip.
STRIP_ROWS = 512


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform (north-up) and size in pixels."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def resolution(self) -> float:
        """Pixel width in CRS units."""
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in CRS units."""
        west, north = self.transform.c, self.transform.f
        return (
            west,
            north + self.height * self.transform.e,
            west + self.width * self.transform.a,
            north,
        )

    def strips(self, rows: int = STRIP_ROWS) -> Iterator[Window]:
        """Full-width row windows that tile the grid top to bottom."""
        for row in range(0, self.height, rows):
            yield Window(0, row, self.width, min(rows, self.height - row))


def _open_error(href: str, exc: Exception) -> BandReadError:
    return BandReadError(href, f"cannot read raster: {exc}")


def grid_of(href: str, resolution: float | None = None) -> Grid:
    """The grid of a raster file, or a grid over the same extent with `resolution` pixels."""
    try:
        with rasterio.Env(**GDAL_HTTP_OPTIONS), rasterio.open(href) as src:
            crs, transform, width, height = src.crs, src.transform, src.width, src.height
    except RasterioError as exc:
        raise _open_error(href, exc) from exc
    if crs is None:
        raise BandReadError(href, "raster has no CRS")
    if transform.b != 0 or transform.d != 0 or transform.e >= 0:
        raise BandReadError(href, f"raster is not north-up: {tuple(transform)[:6]}")
    if resolution is None or resolution == transform.a:
        return Grid(crs, transform, width, height)
    west, north = transform.c, transform.f
    span_x, span_y = width * transform.a, height * -transform.e
    out_w = max(1, round(span_x / resolution))
    out_h = max(1, round(span_y / resolution))
    return Grid(crs, Affine(resolution, 0.0, west, 0.0, -resolution, north), out_w, out_h)


def read_on_grid(
    href: str,
    grid: Grid,
    *,
    window: Window | None = None,
    resampling: Resampling | None = None,
    band: int = 1,
) -> tuple[NDArray[np.generic], NDArray[np.bool_]]:
    """Band `band` of `href` warped onto `grid` (or a window of it), and where it holds data.

    Values keep the source dtype; pixels outside the source or equal to its nodata are False
    in the returned valid mask.

    Default resampling: average when the source pixels are finer than the grid's, bilinear
    otherwise. Pass Resampling.nearest for class or bit-flag rasters.
    """
    try:
        with rasterio.Env(**GDAL_HTTP_OPTIONS), rasterio.open(href) as src:
            if resampling is None:
                finer = abs(src.transform.a) < grid.resolution
                resampling = Resampling.average if finer else Resampling.bilinear
            with WarpedVRT(
                src,
                crs=grid.crs,
                transform=grid.transform,
                width=grid.width,
                height=grid.height,
                resampling=resampling,
            ) as vrt:
                data = vrt.read(band, window=window, masked=True)
    except RasterioError as exc:
        raise _open_error(href, exc) from exc
    values: NDArray[np.generic] = np.asarray(data.data)
    valid: NDArray[np.bool_] = ~np.ma.getmaskarray(data)
    return values, valid


def read_stack(
    hrefs: list[str],
    grid: Grid,
    *,
    window: Window | None = None,
    scale: list[float] | None = None,
    offset: list[float] | None = None,
) -> NDArray[np.float32]:
    """Bands of `hrefs` on `grid` as float32 (n, h, w): value * scale + offset, NaN = no data."""
    height = grid.height if window is None else int(window.height)
    width = grid.width if window is None else int(window.width)
    out = np.empty((len(hrefs), height, width), dtype=np.float32)
    for i, href in enumerate(hrefs):
        data, valid = read_on_grid(href, grid, window=window)
        values = data.astype(np.float64)
        values[~valid] = np.nan
        if scale is not None:
            values *= scale[i]
        if offset is not None:
            values += offset[i]
        out[i] = values
    return out
