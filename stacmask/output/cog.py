"""Writing the mask: strips go to a tiled scratch GeoTIFF, which becomes a COG atomically.

The overviews are mode overviews (the most frequent class of each block, never an invented
code), computed here while the strips arrive (2x) and then level by level from the one before;
GDAL's COG driver copies them as they are, which is about 1.5 s faster on a full WPM scene than
letting it compute MODE overviews from the full resolution for every level.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any
from xml.sax.saxutils import escape

import numba
import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.shutil import copy
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from stacmask.constants import NODATA
from stacmask.errors import StacmaskError

#: Internal tile size of the mask COG.
BLOCK_SIZE = 512


@numba.njit(parallel=True, nogil=True, cache=True)
def mode_2x2(classes: Any) -> Any:
    """Half-resolution class codes: the most frequent code of each 2 x 2 block (blocks at an
    odd edge are smaller), ignoring NODATA unless the whole block is NODATA; a tie goes to the
    code met first in row-major order."""
    rows, cols = classes.shape
    out = np.empty(((rows + 1) // 2, (cols + 1) // 2), np.uint8)
    for i in numba.prange(out.shape[0]):
        block = np.empty(4, np.uint8)
        for j in range(out.shape[1]):
            n = 0
            for r in range(2 * i, min(2 * i + 2, rows)):
                for c in range(2 * j, min(2 * j + 2, cols)):
                    if classes[r, c] != NODATA:
                        block[n] = classes[r, c]
                        n += 1
            best, best_count = NODATA, 0
            for a in range(n):
                count = 0
                for b in range(n):
                    count += block[b] == block[a]
                if count > best_count:
                    best, best_count = block[a], count
            out[i, j] = best
    return out


def overview_factors(width: int, height: int) -> list[int]:
    """Overview levels: halve until the longest side fits in one tile (GDAL's COG default)."""
    factors: list[int] = []
    size = max(width, height)
    while size > BLOCK_SIZE:
        size = -(-size // 2)
        factors.append(2 ** (len(factors) + 1))
    return factors


class MaskWriter:
    """Collects class-code strips and publishes them as a DEFLATE COG at `path` on `finish()`.

    Nothing appears at `path` until the COG is complete (write to a temporary name, then rename).
    """

    def __init__(self, path: Path, width: int, height: int, transform: Affine, crs: CRS | None):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmpdir = tempfile.TemporaryDirectory(prefix=".stacmask-", dir=path.parent)
        self._scratch = Path(self._tmpdir.name) / "strips.tif"
        self._dataset = rasterio.open(
            self._scratch,
            "w",
            driver="GTiff",
            width=width,
            height=height,
            count=1,
            dtype="uint8",
            nodata=NODATA,
            crs=crs,
            transform=transform,
            tiled=True,
            blockxsize=BLOCK_SIZE,
            blockysize=BLOCK_SIZE,
        )
        self._profile = self._dataset.profile  # tiled: the COG driver reads tile by tile
        self._factors = overview_factors(width, height)
        #: The 2x overview, filled as strips arrive; an odd row waits for its pair.
        self._half: list[NDArray[np.uint8]] = []
        self._odd_row: NDArray[np.uint8] | None = None

    def write(self, window: Window, classes: NDArray[np.uint8]) -> None:
        """Write one strip of class codes (strips come top to bottom)."""
        self._dataset.write(classes, 1, window=window)
        if not self._factors:
            return
        if self._odd_row is not None:
            classes = np.concatenate([self._odd_row, classes])
        even = classes.shape[0] - classes.shape[0] % 2
        self._odd_row = classes[even:].copy() if even < classes.shape[0] else None
        if even:
            self._half.append(mode_2x2(classes[:even]))

    def _overview_vrt(self) -> Path:
        """A VRT of the strips with the mode overviews, each level written as a GeoTIFF."""
        if self._odd_row is not None:
            self._half.append(mode_2x2(self._odd_row))
        level = np.concatenate(self._half)
        self._half, self._odd_row = [], None
        profile = self._profile
        folder = Path(self._tmpdir.name)
        overviews = []
        for factor in self._factors:
            if factor > 2:
                level = mode_2x2(level)
            name = folder / f"overview_{factor}.tif"
            with rasterio.open(
                name,
                "w",
                **{**profile, "width": level.shape[1], "height": level.shape[0]},
            ) as dst:
                dst.write(level, 1)
            overviews.append(
                '<Overview><SourceFilename relativeToVRT="1">'
                f"{escape(name.name)}</SourceFilename><SourceBand>1</SourceBand></Overview>"
            )
        transform = ", ".join(repr(v) for v in profile["transform"].to_gdal())
        crs = f"<SRS>{escape(profile['crs'].to_wkt())}</SRS>" if profile["crs"] else ""
        vrt = folder / "mask.vrt"
        vrt.write_text(
            f'<VRTDataset rasterXSize="{profile["width"]}" rasterYSize="{profile["height"]}">'
            f"{crs}<GeoTransform>{transform}</GeoTransform>"
            f'<VRTRasterBand dataType="Byte" band="1"><NoDataValue>{NODATA}</NoDataValue>'
            '<SimpleSource><SourceFilename relativeToVRT="1">'
            f"{escape(self._scratch.name)}</SourceFilename><SourceBand>1</SourceBand>"
            f"</SimpleSource>{''.join(overviews)}</VRTRasterBand></VRTDataset>"
        )
        return vrt

    def finish(self) -> None:
        """Convert to a COG (internal tiles, DEFLATE, mode overviews) and move it into place."""
        self._dataset.close()
        cog = Path(self._tmpdir.name) / "mask.tif"
        # GDAL's COG driver (multi-threaded, 10x faster here than rio-cogeo's translate);
        # rio-cogeo then checks the result.
        source = self._overview_vrt() if self._factors else self._scratch
        with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=256):
            copy(
                source,
                cog,
                driver="COG",
                COMPRESS="DEFLATE",
                PREDICTOR="NO",  # class codes: smaller without (2.31 vs 2.48 MB, full scene)
                BLOCKSIZE=BLOCK_SIZE,
                OVERVIEWS="FORCE_USE_EXISTING" if self._factors else "NONE",
                NUM_THREADS="ALL_CPUS",
            )
        valid, errors, _ = cog_validate(cog, quiet=True)
        if not valid:
            raise StacmaskError(f"{self.path}: the written mask is not a valid COG: {errors}")
        os.replace(cog, self.path)
        self._tmpdir.cleanup()

    def abort(self) -> None:
        """Drop everything written so far."""
        if not self._dataset.closed:
            self._dataset.close()
        self._tmpdir.cleanup()

    def __enter__(self) -> MaskWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
