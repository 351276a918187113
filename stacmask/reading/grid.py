"""The working grid, and one band of a raster opened onto it (as it is, or warped).

Local paths and the /vsicurl/ and /vsis3/ paths of reading/storage.py (GDAL reads URLs with
range requests, with the reader's GDAL settings: retries, timeouts, no directory listing); any
other GDAL prefix is refused. A band whose file is on the grid is
read as it is; any other is warped with rasterio's WarpedVRT: `average` when the source is
finer than the grid, `bilinear` when coarser, `nearest` for categorical or bit-packed bands.
Each band is opened once per scene and read window by window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from stacmask.errors import BandReadError
from stacmask.reading.storage import open_raster
from stacmask.sensors.inputs import BandRef


def gdal_message(exc: BaseException) -> str:
    """GDAL's own words for a rasterio error: the messages of the exception and of the GDAL
    errors chained under it (rasterio's "Read failed. See previous exception" says nothing),
    the most specific first, each said once."""
    messages: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).strip()
        if text and "see previous exception" not in text.lower():
            messages.append(text)
        current = current.__cause__ or current.__context__
    kept = [m for m in messages if not any(m != other and m in other for other in messages)]
    return "; ".join(dict.fromkeys(reversed(kept))) or type(exc).__name__


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform (north-up) and size in pixels."""

    crs: CRS | None
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


def dataset_grid(ds: DatasetReader) -> Grid:
    """The grid of an open raster."""
    return Grid(ds.crs, ds.transform, ds.width, ds.height)


def resampled(grid: Grid, resolution: float | None, href: str) -> Grid:
    """`grid`'s extent with `resolution` pixels (None: `grid` itself); the file must be
    north-up with a CRS to be resampled."""
    if resolution is None or resolution == grid.transform.a:
        return grid
    transform = grid.transform
    if grid.crs is None:
        raise BandReadError(href, "raster has no CRS")
    if transform.b != 0 or transform.d != 0 or transform.e >= 0:
        raise BandReadError(href, f"raster is not north-up: {tuple(transform)[:6]}")
    west, north = transform.c, transform.f
    out_w = max(1, round(grid.width * transform.a / resolution))
    out_h = max(1, round(grid.height * -transform.e / resolution))
    return Grid(grid.crs, Affine(resolution, 0.0, west, 0.0, -resolution, north), out_w, out_h)


def grid_of(href: str, resolution: float | None = None) -> Grid:
    """The grid of a raster file, or a grid over the same extent with `resolution` pixels."""
    try:
        with open_raster(href) as src:
            grid = dataset_grid(src)
    except RasterioError as exc:
        raise BandReadError(href, f"cannot read raster: {gdal_message(exc)}") from exc
    return resampled(grid, resolution, href)


def default_nodata(dtype: np.dtype[Any]) -> float:
    """No data of a raster whose file says nothing: 0 for integer DN, NaN for floats (NaN
    compares unequal to everything, so a float stack then has none)."""
    return 0.0 if dtype.kind in "iub" else float("nan")


class OpenBand:
    """A band of a raster (BandRef) opened onto `grid`; `read(window)` like a dataset's.

    `nodata` is the band's no-data value: BandRef's, else the file's, else default_nodata
    (None for a categorical band: every class value is data). Pixels outside the file read
    as `nodata`; for a warped categorical band without one, `valid` says where the file
    covers the grid. With `warp=False` a band off the grid is a BandReadError naming its file.
    """

    def __init__(
        self, band: BandRef, grid: Grid, *, warp: bool = True, reference: str = "blue"
    ) -> None:
        self.band = band
        self.href = band.href
        try:
            self._src = open_raster(band.href)
        except RasterioError as exc:
            raise BandReadError(band.href, f"cannot open raster: {gdal_message(exc)}") from exc
        self._vrt: WarpedVRT | None = None
        try:
            self._check(grid, warp, reference)
            if not self.on_grid:
                self._vrt = self._warped(grid)
        except BaseException:
            self.close()
            raise

    def _check(self, grid: Grid, warp: bool, reference: str) -> None:
        src, band = self._src, self.band
        if src.count < band.index:
            raise BandReadError(
                band.href, f"raster has {src.count} band(s); band {band.index} is needed"
            )
        #: Bands of the file, and the type of the one read.
        self.file_bands = src.count
        self.dtype = np.dtype(src.dtypes[band.index - 1])
        if band.categorical and self.dtype.kind not in "iu":
            raise BandReadError(
                band.href,
                f"{band.name} is a class or bit-flag band and must hold integers, is {self.dtype}",
            )
        declared = band.nodata if band.nodata is not None else src.nodatavals[band.index - 1]
        self.nodata: float | None = None if declared is None else float(declared)
        if self.nodata is None and not band.categorical:
            self.nodata = default_nodata(self.dtype)
        self.on_grid = dataset_grid(src) == grid
        if self.on_grid or warp:
            return
        if (src.width, src.height) != (grid.width, grid.height):
            raise BandReadError(
                band.href,
                f"size {src.width}x{src.height} differs from the {reference} band's "
                f"{grid.width}x{grid.height}",
            )
        raise BandReadError(band.href, f"georeferencing differs from the {reference} band's")

    def _warped(self, grid: Grid) -> WarpedVRT:
        band = self.band
        if self._src.crs is None:
            raise BandReadError(band.href, "raster has no CRS")
        if band.resampling is not None:
            resampling = Resampling[band.resampling]
        elif band.categorical:
            resampling = Resampling.nearest
        elif abs(self._src.transform.a) < grid.resolution:
            resampling = Resampling.average
        else:
            resampling = Resampling.bilinear
        options: dict[str, Any] = (
            {"src_nodata": self.nodata, "nodata": self.nodata}
            if self.nodata is not None
            else {"add_alpha": True}  # a class band without nodata: alpha says what is covered
        )
        return WarpedVRT(
            self._src,
            crs=grid.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            resampling=resampling,
            **options,
        )

    @property
    def dataset(self) -> DatasetReader | WarpedVRT:
        """What reads go to: the file, or its WarpedVRT onto the grid."""
        return self._src if self._vrt is None else self._vrt

    def read(self, window: Window, out: NDArray[Any] | None = None) -> NDArray[Any]:
        """Stored values of the band in a window of the grid (into `out` when given)."""
        try:
            data: NDArray[Any] = self.dataset.read(self.band.index, window=window, out=out)
        except RasterioError as exc:
            raise BandReadError(
                self.href,
                f"cannot decode rows {window.row_off}-{window.row_off + window.height}: "
                f"{gdal_message(exc)}",
            ) from exc
        return data

    def valid(self, values: NDArray[Any], window: Window) -> NDArray[np.bool_]:
        """Where `values` (read from `window`) hold data: not `nodata`, and inside the file."""
        if self.nodata is not None:
            holds: NDArray[np.bool_] = values != self.nodata
            return holds
        if self._vrt is None:
            return np.ones(values.shape, np.bool_)
        try:
            masks = self._vrt.read_masks(self.band.index, window=window)
        except RasterioError as exc:
            raise BandReadError(
                self.href, f"cannot decode the footprint: {gdal_message(exc)}"
            ) from exc
        covered: NDArray[np.bool_] = masks > 0
        return covered

    def close(self) -> None:
        """Close the VRT and the file."""
        if self._vrt is not None:
            self._vrt.close()
        self._src.close()

    def __enter__(self) -> OpenBand:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
