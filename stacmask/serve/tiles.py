"""Map tiles of a mask COG in its class colours, for STAC Browser's map.

`GET /tiles/{z}/{x}/{y}.png?href=URL` renders the 256 x 256 web-mercator tile of a mask COG of
the served catalog: every class code gets its colour hint (constants.CLASS_NAMES), no data is
transparent. STAC Browser asks for these through its `buildTileUrlTemplate` setting (written
into /browser/config.js), so "Show on map" draws the mask's classes, not grey levels. Only
files inside the catalog folder are read (the href must be one of the server's /catalog/ URLs).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, WindowError
from rasterio.io import MemoryFile
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window, from_bounds

from stacmask.constants import CLASS_NAMES, NODATA
from stacmask.errors import QueryError

TILE = 256
MAX_ZOOM = 24
#: Half the side of the web-mercator square, in metres (EPSG:3857).
HALF_WORLD = 20037508.342789244


def class_palette() -> NDArray[np.uint8]:
    """RGBA for each of the 256 codes: the class colour hints, no data and unknown transparent."""
    palette = np.zeros((256, 4), dtype=np.uint8)
    for code, (_, _, colour) in CLASS_NAMES.items():
        if code != NODATA:
            palette[code] = [int(colour[i : i + 2], 16) for i in (0, 2, 4)] + [255]
    return palette


PALETTE = class_palette()


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """West, south, east, north of an XYZ tile in EPSG:3857 metres."""
    if not (0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z):
        raise QueryError(f"tile {z}/{x}/{y}: no such tile")
    size = 2 * HALF_WORLD / 2**z
    west, north = -HALF_WORLD + x * size, HALF_WORLD - y * size
    return west, north - size, west + size, north


def render_tile(path: Path, z: int, x: int, y: int) -> bytes:
    """The PNG of one tile of the mask COG at `path` (transparent where it has no pixels)."""
    west, south, east, north = tile_bounds(z, x, y)
    codes = np.full((TILE, TILE), NODATA, dtype=np.uint8)
    with (
        rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"),
        rasterio.open(path) as source,
        WarpedVRT(source, crs="EPSG:3857", resampling=Resampling.nearest, nodata=NODATA) as vrt,
    ):
        window = from_bounds(west, south, east, north, transform=vrt.transform)
        try:
            inside = window.intersection(Window(0, 0, vrt.width, vrt.height))
        except WindowError:  # the tile misses the mask: all transparent
            return _png(PALETTE[codes].transpose(2, 0, 1))
        scale_x, scale_y = TILE / window.width, TILE / window.height
        col0 = max(0, math.floor((inside.col_off - window.col_off) * scale_x))
        row0 = max(0, math.floor((inside.row_off - window.row_off) * scale_y))
        width = max(1, min(TILE - col0, round(inside.width * scale_x)))
        height = max(1, min(TILE - row0, round(inside.height * scale_y)))
        codes[row0 : row0 + height, col0 : col0 + width] = vrt.read(
            1, window=inside, out_shape=(height, width), resampling=Resampling.nearest
        )
    return _png(PALETTE[codes].transpose(2, 0, 1))


def _png(rgba: NDArray[np.uint8]) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile() as memory:
            with memory.open(
                driver="PNG", width=rgba.shape[2], height=rgba.shape[1], count=4, dtype="uint8"
            ) as png:
                png.write(rgba)
            return bytes(memory.read())
