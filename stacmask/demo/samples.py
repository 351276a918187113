"""Synthetic CBERS-4A WPM L4 scenes in INPE's layout, with a truth mask, for tests and the demo.

A scene is four single-band DN GeoTIFFs (BAND1..BAND4: blue, green, red, nir), one INPE "prdf"
XML per band, a truth raster of class codes and a small PNG thumbnail. Content is built in
top-of-atmosphere reflectance and converted to 10-bit DN with the default WPM gains, so a
correct DN -> reflectance conversion recovers plausible reflectances:

- land: rectangular crop parcels (vegetation or bare, sometimes bright, soil) with texture,
- water bodies (very low NIR),
- clouds: smooth bright blobs, roughly flat spectrum, soft edges; `cloud_fraction` is the share
  of valid pixels whose truth class is cloud,
- cloud shadows: the cloud field displaced away from the sun by `cloud_height`, darkening the
  ground, more in NIR than in blue,
- no-data corners (DN 0 in all bands) around a rotated footprint, as in a real L4 scene.

Every field is procedural (coarse seeded random grids interpolated on demand), so the scene is
written strip by strip: memory follows the strip, and a full-size 14198 x 14584 scene fits in a
few hundred MB.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final
from xml.etree import ElementTree as ET

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from stacmask.constants import (
    CLEAR,
    CLOUD,
    DEFAULT_COLLECTION,
    DEFAULT_GAINS,
    NODATA,
    SHADOW,
    WATER,
    XML_NAMESPACE,
)
from stacmask.sensors.cbers4a.reflectance import reflectance_factors

BAND_KEYS: Final = ("BAND1", "BAND2", "BAND3", "BAND4")
#: Scene ids as INPE names them: CBERS_4A_WPM_YYYYMMDD_PPP_RRR_L4.
SCENE_ID_RE: Final = re.compile(r"^CBERS_4A_WPM_(\d{8})_(\d{3})_(\d{3})_L(\d)$")
GEOTIFF_MEDIA_TYPE: Final = "image/tiff; application=geotiff"
DEFAULT_ORIGIN: Final = (300000.0, 8300000.0)  # UTM 23S, west of Brasilia
FULL_SIZE: Final = (14198, 14584)  # width, height of a real L4 WPM multispectral scene

# --- Scene content, in TOA/surface reflectance (blue, green, red, nir) ----------------------------
_PATH_REFLECTANCE: Final = (0.065, 0.040, 0.020, 0.008)  # Rayleigh + aerosol path, added to all
_WATER: Final = (0.050, 0.045, 0.025, 0.008)
_VEG_BASE: Final = (0.030, 0.060, 0.035, 0.220)
_VEG_VIGOUR: Final = (-0.010, 0.020, -0.015, 0.200)  # added x vigour in 0..1
_SOIL_BASE: Final = (0.070, 0.100, 0.140, 0.200)
_SOIL_BRIGHT: Final = (0.090, 0.110, 0.160, 0.140)  # added x brightness in 0..1
_SHADOW_FACTOR: Final = (0.45, 0.38, 0.32, 0.25)  # ground reflectance kept inside a shadow
_CLOUD_TINT: Final = (1.04, 1.00, 0.98, 0.95)  # nearly flat cloud spectrum
_WATER_FRACTION: Final = 0.06
_FOOTPRINT_ANGLE: Final = 9.0  # degrees; a real L4 WPM footprint is rotated by ~8-12 deg
_DN_MAX: Final = 1023  # 10-bit quantisation
_RENDER_ROWS: Final = 256  # rows rendered at once (memory: ~80 bytes per pixel of a piece)


@dataclass(frozen=True)
class SampleScene:
    """A synthetic scene on disk and the facts needed to describe it in STAC."""

    scene_id: str
    directory: Path
    bands: dict[str, Path]
    xml: dict[str, Path]
    truth: Path
    thumbnail: Path
    width: int
    height: int
    transform: Affine
    crs: CRS
    #: Footprint polygon in lon/lat (GeoJSON geometry dict).
    footprint: dict[str, Any]
    #: [west, south, east, north] in lon/lat.
    bbox: tuple[float, float, float, float]
    acquired: datetime
    sun_elevation: float
    sun_azimuth: float
    path: int
    row: int
    gains: tuple[float, float, float, float]
    #: Whether the XML carries absoluteCalibrationCoefficient.
    with_gains: bool
    dtype: str
    #: Pixel count per truth class code (including NODATA).
    class_counts: dict[int, int] = field(default_factory=dict)

    @property
    def valid_pixels(self) -> int:
        """Pixels inside the footprint."""
        return sum(n for code, n in self.class_counts.items() if code != NODATA)

    def cover(self, code: int) -> float:
        """Share of valid pixels with truth class `code`, in percent."""
        valid = self.valid_pixels
        return 100.0 * self.class_counts.get(code, 0) / valid if valid else 0.0


def parse_scene_id(scene_id: str) -> tuple[datetime, int, int] | None:
    """Date, path and row of an INPE scene id, or None if it does not follow the pattern."""
    match = SCENE_ID_RE.match(scene_id)
    if match is None:
        return None
    day = datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=timezone.utc)
    return day, int(match.group(2)), int(match.group(3))


def scene_id_for(acquired: datetime, path: int, row: int) -> str:
    """INPE scene id for an acquisition date, path and row."""
    return f"CBERS_4A_WPM_{acquired:%Y%m%d}_{path:03d}_{row:03d}_L4"


# --- Procedural fields --------------------------------------------------------------------------


def _lerp_grid(
    grid: NDArray[np.float32],
    y: NDArray[np.float32],
    x: NDArray[np.float32],
    smooth: bool,
) -> NDArray[np.float32]:
    """Separable (smoothstep or linear) interpolation of `grid` at fractional indices y, x."""
    i = np.clip(np.floor(y).astype(np.intp), 0, grid.shape[0] - 2)
    j = np.clip(np.floor(x).astype(np.intp), 0, grid.shape[1] - 2)
    ty = np.clip(y - i, 0.0, 1.0).astype(np.float32)
    tx = np.clip(x - j, 0.0, 1.0).astype(np.float32)
    if smooth:
        ty = ty * ty * (np.float32(3.0) - np.float32(2.0) * ty)
        tx = tx * tx * (np.float32(3.0) - np.float32(2.0) * tx)
    top = grid[i]
    by_row = top + (grid[i + 1] - top) * ty[:, None]
    # np.take keeps the result C-contiguous (by_row[:, j] would be column-major: slow later)
    out: NDArray[np.float32] = np.take(by_row, j, axis=1)
    right = np.take(by_row, j + 1, axis=1)
    right -= out
    right *= tx
    out += right
    return out


class _ValueNoise:
    """Smooth random field: a coarse seeded grid, smoothstep-interpolated at any pixel."""

    def __init__(
        self, rng: np.random.Generator, height: int, width: int, cell: float, margin: float
    ) -> None:
        self.cell = float(cell)
        self.margin = float(margin)
        rows = int((height + 2 * margin) / cell) + 3
        cols = int((width + 2 * margin) / cell) + 3
        self.grid = rng.standard_normal((rows, cols)).astype(np.float32)

    def sample(self, rows: NDArray[np.float32], cols: NDArray[np.float32]) -> NDArray[np.float32]:
        """Field values at every (row, col) pair, shape (len(rows), len(cols))."""
        scale = np.float32(1.0 / self.cell)
        y = (rows + np.float32(self.margin)) * scale
        x = (cols + np.float32(self.margin)) * scale
        return _lerp_grid(self.grid, y, x, smooth=True)


class _Fbm:
    """Sum of value-noise octaves (fractal Brownian motion), standard deviation about 1.

    When the finest octave is smooth enough, the octaves are summed on a lattice every `_STEP`
    pixels (aligned to multiples of _STEP in field coordinates, so strips join seamlessly) and
    interpolated linearly to full resolution: one full-size interpolation instead of one per
    octave.
    """

    _STEP: Final = 4

    def __init__(
        self,
        rng: np.random.Generator,
        height: int,
        width: int,
        cell: float,
        octaves: int,
        margin: float = 0.0,
        persistence: float = 0.5,
    ) -> None:
        cells = [max(cell / 2**k, 2.0) for k in range(octaves)]
        margin = margin + 2 * self._STEP
        self.octaves = [_ValueNoise(rng, height, width, c, margin) for c in cells]
        amps = [persistence**k for k in range(octaves)]
        norm = math.sqrt(sum(a * a for a in amps)) * 0.6  # smoothstep noise has std ~0.6
        self.amps = [np.float32(a / norm) for a in amps]
        self.step = self._STEP if min(cells) >= 4 * self._STEP else 1

    def _direct(self, rows: NDArray[np.float32], cols: NDArray[np.float32]) -> NDArray[np.float32]:
        out = self.octaves[0].sample(rows, cols)
        out *= self.amps[0]
        for noise, amp in zip(self.octaves[1:], self.amps[1:], strict=True):
            octave = noise.sample(rows, cols)
            octave *= amp
            out += octave
        return out

    def sample(self, rows: NDArray[np.float32], cols: NDArray[np.float32]) -> NDArray[np.float32]:
        """Field values at every (row, col) pair, shape (len(rows), len(cols))."""
        if self.step == 1:
            return self._direct(rows, cols)
        step = np.float32(self.step)
        r0 = np.float32(math.floor(float(rows[0]) / self.step) * self.step)
        c0 = np.float32(math.floor(float(cols[0]) / self.step) * self.step)
        lattice_rows = np.arange(r0, float(rows[-1]) + 2 * self.step, self.step, dtype=np.float32)
        lattice_cols = np.arange(c0, float(cols[-1]) + 2 * self.step, self.step, dtype=np.float32)
        coarse = self._direct(lattice_rows, lattice_cols)
        return _lerp_grid(coarse, (rows - r0) / step, (cols - c0) / step, smooth=False)


def _mix32(h: NDArray[np.uint32]) -> NDArray[np.uint32]:
    """In-place integer finaliser (murmur3-style) of a uint32 array."""
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return h


def _hash32(ix: NDArray[np.int64], iy: NDArray[np.int64], salt: int) -> NDArray[np.uint32]:
    """Deterministic 32-bit hash per integer cell."""
    h = ix.astype(np.uint32)
    h *= np.uint32(0x9E3779B1)
    h ^= iy.astype(np.uint32) * np.uint32(0x85EBCA77)
    h ^= np.uint32(salt & 0xFFFFFFFF)
    return _mix32(h)


@dataclass(frozen=True)
class _Footprint:
    """A rotated rectangle inside the raster (pixel units)."""

    cx: float
    cy: float
    half_u: float
    half_v: float
    cos: float
    sin: float

    @classmethod
    def inside(cls, width: int, height: int, angle: float) -> _Footprint:
        margin = max(2.0, 0.01 * min(width, height))
        w_in, h_in = width - 2 * margin, height - 2 * margin
        a = math.radians(angle)
        c, s = math.cos(a), math.sin(a)
        det = c * c - s * s
        fw, fh = (w_in * c - h_in * s) / det, (h_in * c - w_in * s) / det
        if fw <= 0 or fh <= 0:  # too elongated for this angle: axis-aligned
            c, s, fw, fh = 1.0, 0.0, w_in, h_in
        return cls(width / 2, height / 2, fw / 2, fh / 2, c, s)

    def mask(self, rows: NDArray[np.float32], cols: NDArray[np.float32]) -> NDArray[np.bool_]:
        dy = (rows + np.float32(0.5 - self.cy))[:, None]
        dx = (cols + np.float32(0.5 - self.cx))[None, :]
        u = dx * np.float32(self.cos) + dy * np.float32(self.sin)
        v = dy * np.float32(self.cos) - dx * np.float32(self.sin)
        np.abs(u, out=u)
        np.abs(v, out=v)
        out: NDArray[np.bool_] = (u <= self.half_u) & (v <= self.half_v)
        return out

    def corners(self) -> list[tuple[float, float]]:
        """Pixel (col, row) corners UL, UR, LR, LL."""
        out = []
        for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            u, v = su * self.half_u, sv * self.half_v
            out.append(
                (self.cx + u * self.cos - v * self.sin, self.cy + u * self.sin + v * self.cos)
            )
        return out


_LEVELS: Final = 256  # quantisation of a parcel's vigour/brightness in the ground look-up table
_PATCH: Final = 509  # side of the tiled texture and noise patches (prime: no alignment with tiles)


class _SceneModel:
    """All procedural fields of one scene; `render` computes any strip directly in DN."""

    def __init__(
        self,
        width: int,
        height: int,
        seed: int,
        cloud_fraction: float,
        shadow: bool,
        water: bool,
        pixel_size: float,
        sun_elevation: float,
        sun_azimuth: float,
        cloud_height: float,
        to_dn: tuple[float, float, float, float],
    ) -> None:
        rng = np.random.default_rng(seed)
        self.width, self.height = width, height
        self.footprint = _Footprint.inside(width, height, _FOOTPRINT_ANGLE)
        # Shadow = cloud seen from the ground point towards the sun, cloud_height up.
        reach = cloud_height / math.tan(math.radians(max(sun_elevation, 5.0))) / pixel_size
        az = math.radians(sun_azimuth)
        self.shadow_dx = np.float32(reach * math.sin(az))  # columns grow eastwards
        self.shadow_dy = np.float32(-reach * math.cos(az))  # rows grow southwards
        self.shadow = shadow and cloud_fraction > 0
        self.water = water
        margin = reach + 4
        span = min(width, height)
        # Feature scales in pixels: physical, but small enough for small test scenes.
        cloud_cell = float(np.clip(span / 3, 24, 420))
        self.cloud = _Fbm(rng, height, width, cloud_cell, 5, margin=margin, persistence=0.55)
        self.cloud_texture = _Fbm(rng, height, width, max(cloud_cell / 6, 4), 2, margin=margin)
        self.landuse = _Fbm(rng, height, width, float(np.clip(span / 2, 32, 900)), 3)
        self.lakes = _Fbm(rng, height, width, float(np.clip(span / 3, 24, 600)), 4)
        self.haze = _ValueNoise(rng, height, width, float(np.clip(span / 2, 32, 2000)), 0)
        self.salt = int(rng.integers(0, 2**31))
        self.parcel_angle = math.radians(float(rng.uniform(-30, 30)))
        self.parcel_size = (float(rng.uniform(60, 110)), float(rng.uniform(40, 80)))
        patch = rng.standard_normal((3, _PATCH, _PATCH)).astype(np.float32)
        # patch 0: ground texture (slightly smoothed, +-6 %); 1-2: sensor noise (1.5 DN std).
        # Tiled across the scene width once, so a strip only gathers rows.
        smooth = (patch[0] + np.roll(patch[0], 1, 0) + np.roll(patch[0], 1, 1)) / np.float32(1.7)
        patch[0] = np.float32(1.0) + np.float32(0.06) * smooth
        patch[1:] *= np.float32(1.5)
        columns = np.arange(width) % _PATCH
        self.patch = np.ascontiguousarray(patch[:, :, columns])
        self.to_dn = tuple(np.float32(k) for k in to_dn)
        # Ground look-up tables in DN: index = class * _LEVELS + level (veg 0, soil 1, water 2).
        level = np.arange(_LEVELS, dtype=np.float32) / np.float32(_LEVELS - 1)
        self.ground_lut = np.empty((4, 3 * _LEVELS), dtype=np.float32)
        for b in range(4):
            veg = _VEG_BASE[b] + _VEG_VIGOUR[b] * level
            soil = _SOIL_BASE[b] + _SOIL_BRIGHT[b] * level
            water_ = np.full(_LEVELS, _WATER[b], dtype=np.float32)
            self.ground_lut[b] = np.concatenate([veg, soil, water_]) * self.to_dn[b]
        self.cloud_threshold, self.cloud_soft, self.cloud_std, self.water_threshold = (
            self._calibrate(cloud_fraction)
        )

    def _calibrate(self, cloud_fraction: float) -> tuple[float, float, float, float]:
        """Field thresholds giving the requested cloud share and ~6 % water, on a subsample."""
        step = max(1, int(math.sqrt(self.width * self.height / 250_000)))
        rows = np.arange(step / 2, self.height, step, dtype=np.float32)
        cols = np.arange(step / 2, self.width, step, dtype=np.float32)
        inside = self.footprint.mask(rows, cols)
        clouds = self.cloud.sample(rows, cols)[inside]
        std = float(clouds.std()) or 1.0
        if cloud_fraction <= 0:
            threshold = math.inf
        else:
            threshold = float(np.quantile(clouds, 1.0 - cloud_fraction))
        lakes = self.lakes.sample(rows, cols)[inside]
        water_threshold = float(np.quantile(lakes, 1.0 - _WATER_FRACTION))
        return threshold, 0.12 * std, std, water_threshold

    def _cloud_alpha(
        self, rows: NDArray[np.float32], cols: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Cloud opacity (0..1, >= 0.5 is truth cloud) and the field's excess over threshold."""
        excess = self.cloud.sample(rows, cols)
        excess -= np.float32(self.cloud_threshold)
        alpha = excess / np.float32(self.cloud_soft)
        alpha += np.float32(0.5)
        np.clip(alpha, 0.0, 1.0, out=alpha)
        return alpha, excess

    def _ground_index(
        self, rows: NDArray[np.float32], cols: NDArray[np.float32]
    ) -> NDArray[np.intp]:
        """Ground look-up index per pixel: parcels in a rotated, staggered grid, and lakes."""
        ca, sa = np.float32(math.cos(self.parcel_angle)), np.float32(math.sin(self.parcel_angle))
        size_u, size_v = np.float32(self.parcel_size[0]), np.float32(self.parcel_size[1])
        v = rows[:, None] * ca - cols[None, :] * sa
        v /= size_v
        iy = np.floor(v).astype(np.int64)
        del v
        # each parcel row is shifted by its own random fraction of a parcel (a few distinct rows)
        low = int(iy.min())
        row_ids = np.arange(low, int(iy.max()) + 1, dtype=np.int64)
        row_shift = (_hash32(row_ids, row_ids, self.salt + 7) >> np.uint32(8)).astype(np.float32)
        row_shift *= np.float32(1.0 / (1 << 24))
        u = cols[None, :] * ca + rows[:, None] * sa
        u /= size_u
        u += row_shift[iy - low]
        ix = np.floor(u).astype(np.int64)
        del u
        h = _hash32(ix, iy, self.salt)
        del ix, iy
        pick = (h & np.uint32(0xFFFF)).astype(np.float32) * np.float32(1.0 / 65536)
        index = (h >> np.uint32(24)).astype(np.intp)  # level 0..255
        del h
        soil_share = self.landuse.sample(rows, cols)
        soil_share *= np.float32(0.25)
        soil_share += np.float32(0.30)
        np.clip(soil_share, 0.03, 0.8, out=soil_share)
        index[pick < soil_share] += _LEVELS
        if self.water:
            lake = self.lakes.sample(rows, cols) > np.float32(self.water_threshold)
            index[lake] = 2 * _LEVELS
        return index

    def render(
        self, row0: int, nrows: int, dtype: str
    ) -> tuple[NDArray[np.generic], NDArray[np.uint8]]:
        """DN (4, nrows, width) of `dtype` and truth class codes for rows row0..row0+nrows."""
        rows = np.arange(row0, row0 + nrows, dtype=np.float32)
        cols = np.arange(self.width, dtype=np.float32)
        shape = (nrows, self.width)
        valid = self.footprint.mask(rows, cols)
        index = self._ground_index(rows, cols)
        truth = np.full(shape, CLEAR, dtype=np.uint8)
        truth[index >= 2 * _LEVELS] = WATER

        patch_rows = np.arange(row0, row0 + nrows) % _PATCH
        texture = self.patch[0][patch_rows]
        haze = self.haze.sample(rows, cols)
        haze *= np.float32(0.15)
        haze += np.float32(1.0)

        alpha, excess = self._cloud_alpha(rows, cols)
        cloudy = bool(alpha.max() > 0)
        truth[alpha >= 0.5] = CLOUD
        if cloudy:
            np.clip(excess, 0.0, 2 * self.cloud_std, out=excess)
            cloud_bright = excess
            cloud_bright *= np.float32(0.30 / (2 * self.cloud_std))
            cloud_bright += np.float32(0.36)
            texture_c = self.cloud_texture.sample(rows, cols)
            texture_c *= np.float32(0.05)
            texture_c += np.float32(1.0)
            cloud_bright *= texture_c
            cloud_bright *= alpha  # premultiplied cloud reflectance
            del texture_c
            clear_share = np.float32(1.0) - alpha
        del excess
        shade: NDArray[np.float32] | None = None
        if self.shadow:
            s_alpha, _ = self._cloud_alpha(rows + self.shadow_dy, cols + self.shadow_dx)
            if s_alpha.max() > 0:
                truth[(s_alpha >= 0.5) & (truth != CLOUD)] = SHADOW
                shade = s_alpha
        truth[~valid] = NODATA

        out = np.empty((4, *shape), dtype=dtype)
        work = np.empty(shape, dtype=np.float32)
        for b in range(4):
            k = self.to_dn[b]
            dn = np.take(self.ground_lut[b], index)
            dn *= texture
            if shade is not None:
                np.multiply(shade, np.float32(1.0 - _SHADOW_FACTOR[b]), out=work)
                np.subtract(np.float32(1.0), work, out=work)
                dn *= work
            np.multiply(haze, np.float32(_PATH_REFLECTANCE[b]) * k, out=work)
            work += np.float32(0.5)  # so that truncation below rounds
            dn += work
            if cloudy:
                dn *= clear_share
                np.multiply(cloud_bright, np.float32(_CLOUD_TINT[b]) * k, out=work)
                dn += work
            dn += self.patch[1 + b % 2][(patch_rows + 131 * b) % _PATCH]
            np.clip(dn, 1.5, _DN_MAX + 0.49, out=dn)
            out[b] = dn
            np.multiply(out[b], valid, out=out[b])
        return out, truth


# --- Writing ------------------------------------------------------------------------------------


def write_sample_scene(
    out_dir: Path,
    scene_id: str,
    *,
    width: int = 1024,
    height: int = 1024,
    seed: int = 0,
    cloud_fraction: float = 0.2,
    shadow: bool = True,
    water: bool = True,
    dtype: str = "uint16",
    blocksize: int = 256,
    pixel_size: float = 8.0,
    sun_elevation: float = 55.0,
    sun_azimuth: float = 45.0,
    acquired: datetime | None = None,
    with_gains: bool = False,
    epsg: int = 32723,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
    cloud_height: float = 1500.0,
    zlevel: int = 1,
    stripped: bool = False,
) -> SampleScene:
    """Write a synthetic WPM L4 scene (4 DN bands, 4 XMLs, truth, thumbnail) into `out_dir`.

    Files: <scene_id>_BAND{1..4}.tif (tiled `blocksize`, DEFLATE, nodata 0), <scene_id>_BAND{n}.xml,
    <scene_id>_truth.tif (uint8 class codes, nodata 255) and <scene_id>.png. `acquired` defaults to
    the date in an INPE-style `scene_id` at 13:30:24 UTC; path/row come from the id (0 otherwise).
    `origin` is the UTM (x, y) of the upper-left corner. The same arguments give the same bytes,
    and the pixels do not depend on `blocksize`. `zlevel` is the DEFLATE level (1: fastest, a
    full-size scene in ~22 s; 6 makes files ~10 % smaller and writing ~2.5x slower).
    `stripped` writes strips instead of tiles, as INPE's Brazil Data Cube files are (with
    `dtype="int16"`: BDC's layout).
    """
    if not 0.0 <= cloud_fraction <= 0.95:
        raise ValueError(f"cloud_fraction must be in [0, 0.95], got {cloud_fraction}")
    if dtype not in ("uint16", "int16"):
        raise ValueError(f"dtype must be 'uint16' or 'int16', got {dtype!r}")
    if width < 16 or height < 16:
        raise ValueError(f"scene too small: {width} x {height}")
    if blocksize % 16:
        raise ValueError(f"blocksize must be a multiple of 16, got {blocksize}")
    parsed = parse_scene_id(scene_id)
    path, row = (parsed[1], parsed[2]) if parsed else (0, 0)
    if acquired is None:
        day = parsed[0] if parsed else datetime(2021, 7, 12, tzinfo=timezone.utc)
        acquired = day + timedelta(hours=13, minutes=30, seconds=24)
    elif acquired.tzinfo is None:
        acquired = acquired.replace(tzinfo=timezone.utc)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gains = DEFAULT_GAINS
    factors = reflectance_factors(gains, sun_elevation, acquired)
    to_dn = (1 / factors[0], 1 / factors[1], 1 / factors[2], 1 / factors[3])
    model = _SceneModel(
        width,
        height,
        seed,
        cloud_fraction,
        shadow,
        water,
        pixel_size,
        sun_elevation,
        sun_azimuth,
        cloud_height,
        to_dn,
    )
    transform = Affine(pixel_size, 0.0, origin[0], 0.0, -pixel_size, origin[1])
    crs = CRS.from_epsg(epsg)

    bands = {key: out_dir / f"{scene_id}_{key}.tif" for key in BAND_KEYS}
    xmls = {key: out_dir / f"{scene_id}_{key}.xml" for key in BAND_KEYS}
    truth_path = out_dir / f"{scene_id}_truth.tif"
    thumb_path = out_dir / f"{scene_id}.png"
    block = blocksize
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "crs": crs,
        "transform": transform,
        **(
            {"tiled": False}
            if stripped
            else {"tiled": True, "blockxsize": block, "blockysize": block}
        ),
        "compress": "deflate",
        "predictor": 2,
        "zlevel": zlevel,
        "interleave": "band",
    }
    thumb_step = max(1, math.ceil(max(width, height) / 400))
    thumb_rows: list[NDArray[np.uint8]] = []
    counts = np.zeros(256, dtype=np.int64)

    with rasterio.Env(GDAL_CACHEMAX=64, GDAL_NUM_THREADS=1):
        outs = [
            rasterio.open(bands[key], "w", **profile, dtype=dtype, nodata=0) for key in BAND_KEYS
        ]
        truth_ds = rasterio.open(truth_path, "w", **profile, dtype="uint8", nodata=NODATA)
        try:
            for row0 in range(0, height, block):
                nrows = min(block, height - row0)
                # Whole tile rows are written at once; they are rendered in pieces of at most
                # _RENDER_ROWS rows, so the float temporaries stay small for big blocks.
                dn_strip = np.empty((4, nrows, width), dtype=dtype)
                truth = np.empty((nrows, width), dtype=np.uint8)
                for sub in range(0, nrows, _RENDER_ROWS):
                    n = min(_RENDER_ROWS, nrows - sub)
                    dn_strip[:, sub : sub + n], truth[sub : sub + n] = model.render(
                        row0 + sub, n, dtype
                    )
                window = Window(0, row0, width, nrows)
                for b, ds in enumerate(outs):
                    ds.write(dn_strip[b], 1, window=window)
                truth_ds.write(truth, 1, window=window)
                counts += np.bincount(truth.ravel(), minlength=256)
                first = (-row0) % thumb_step
                if first < nrows:
                    rgb = dn_strip[[2, 1, 0], first::thumb_step, ::thumb_step].astype(np.float32)
                    thumb_rows.append(np.clip(rgb * (255 / 700), 0, 255).astype(np.uint8))
        finally:
            for ds in [*outs, truth_ds]:
                ds.close()
    _write_png(thumb_path, np.concatenate(thumb_rows, axis=1))

    corners_px = model.footprint.corners()
    lonlat = _to_lonlat(crs, transform, corners_px)
    ring = [lonlat[0], lonlat[3], lonlat[2], lonlat[1], lonlat[0]]  # counter-clockwise
    footprint = {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}
    lons = [p[0] for p in lonlat]
    lats = [p[1] for p in lonlat]
    scene = SampleScene(
        scene_id=scene_id,
        directory=out_dir,
        bands=bands,
        xml=xmls,
        truth=truth_path,
        thumbnail=thumb_path,
        width=width,
        height=height,
        transform=transform,
        crs=crs,
        footprint=footprint,
        bbox=(min(lons), min(lats), max(lons), max(lats)),
        acquired=acquired,
        sun_elevation=sun_elevation,
        sun_azimuth=sun_azimuth,
        path=path,
        row=row,
        gains=gains,
        with_gains=with_gains,
        dtype=dtype,
        class_counts={int(c): int(n) for c, n in enumerate(counts) if n},
    )
    for number, key in enumerate(BAND_KEYS, start=1):
        write_inpe_xml(scene, number, xmls[key], corners_px=corners_px)
    return scene


def _to_lonlat(
    crs: CRS, transform: Affine, points: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    xs, ys = zip(*(transform @ p for p in points), strict=True)
    lons, lats = warp_transform(crs, CRS.from_epsg(4326), list(xs), list(ys))
    return [(round(lon, 6), round(lat, 6)) for lon, lat in zip(lons, lats, strict=True)]


def _write_png(path: Path, rgb: NDArray[np.uint8]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="PNG", width=rgb.shape[2], height=rgb.shape[1], count=3, dtype="uint8"
        ) as dst:
            dst.write(rgb)
    aux = path.with_name(path.name + ".aux.xml")
    aux.unlink(missing_ok=True)


# --- INPE XML -----------------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: object = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{XML_NAMESPACE}}}{tag}", attrib)
    if text is not None:
        element.text = str(text)
    return element


def _iso(when: datetime, digits: int = 6) -> str:
    text = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[: len(text) - 6 + digits] if digits else text[:-7]


def write_inpe_xml(
    scene: SampleScene,
    band: int,
    out: Path,
    *,
    corners_px: list[tuple[float, float]] | None = None,
) -> Path:
    """Write the INPE "prdf" XML of one band of `scene` (structure of the real WPM L4 files).

    Carries absoluteCalibrationCoefficient for bands 1..4 only when `scene.with_gains`.
    `corners_px` are the footprint's (col, row) corners UL, UR, LR, LL (for imageData).
    """
    ET.register_namespace("", XML_NAMESPACE)
    root = ET.Element(f"{{{XML_NAMESPACE}}}prdf", {"generator": "stacmask.demo.samples"})
    satellite = _sub(root, "satellite")
    _sub(satellite, "name", "CBERS")
    _sub(satellite, "number", "4A")
    _sub(satellite, "instrument", "WPM", channel="1")
    _sub(root, "imageMode", "VIEW")
    available = _sub(root, "availableBands")
    for number in range(5):
        _sub(available, "band", number)
    begin = scene.acquired - timedelta(seconds=6.861)
    end = scene.acquired + timedelta(seconds=6.861)
    viewing = _sub(root, "viewing")
    for tag, when in (("begin", begin), ("center", scene.acquired), ("end", end)):
        _sub(viewing, tag, _iso(when, 3))

    image = _sub(root, "image")
    _sub(image, "processingStation", "Sao Jose dos Campos")
    _sub(image, "processingTime", _iso(scene.acquired + timedelta(hours=15)))
    _sub(image, "level", 4)
    _sub(image, "columns", scene.width)
    _sub(image, "lines", scene.height)
    _sub(image, "verticalPixelSize", f"{abs(scene.transform.e):.6f}")
    _sub(image, "horizontalPixelSize", f"{scene.transform.a:.6f}")
    _sub(image, "orbitDirection", "Descending")
    stamp = _sub(image, "timeStamp")
    for tag, when in (("begin", begin), ("center", scene.acquired), ("end", end)):
        _sub(stamp, tag, _iso(when))
    _sub(image, "path", scene.path)
    _sub(image, "row", scene.row)
    sun = _sub(image, "sunPosition")
    _sub(sun, "elevation", f"{scene.sun_elevation:.4f}")
    _sub(sun, "sunAzimuth", f"{scene.sun_azimuth:.4f}")
    if scene.with_gains:
        coefficients = _sub(image, "absoluteCalibrationCoefficient")
        for number, gain in enumerate(scene.gains, start=1):
            _sub(coefficients, "band", f"{gain:.6f}", name=str(number))

    w, h = scene.width, scene.height
    raster_corners = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
    raster_corners.append((w / 2, h / 2))
    _corner_block(_sub(image, "boundingBox"), scene, raster_corners)
    if corners_px is not None:
        cx = sum(p[0] for p in corners_px) / 4
        cy = sum(p[1] for p in corners_px) / 4
        _corner_block(_sub(image, "imageData"), scene, [*corners_px, (cx, cy)])
    _sub(image, "datumName", "WGS84")
    _sub(image, "projectionName", "UTM")
    _sub(image, f"band{band}", f"/sge/TIFF/CBERS4A/{scene.scene_id}_BAND{band}.tif")
    ET.indent(root, space="  ")
    out.write_bytes(ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n")
    return out


def _corner_block(
    parent: ET.Element, scene: SampleScene, corners: list[tuple[float, float]]
) -> None:
    lonlat = _to_lonlat(scene.crs, scene.transform, corners)
    for name, (col, line), (lon, lat) in zip(
        ("UL", "UR", "LR", "LL", "CT"), corners, lonlat, strict=True
    ):
        x, y = scene.transform @ (col, line)
        corner = _sub(parent, name)
        _sub(corner, "line", f"{line:.6f}")
        _sub(corner, "column", f"{col:.6f}")
        _sub(corner, "latitude", f"{lat:.6f}")
        _sub(corner, "longitude", f"{lon:.6f}")
        _sub(corner, "northing", round(y))
        _sub(corner, "easting", round(x))


# --- STAC item ----------------------------------------------------------------------------------


def inpe_relative_dir(acquired: datetime, path: int, row: int) -> str:
    """Folder of a scene's files in INPE's data tree, relative to its data root.

    e.g. CB4A-WPM-L4-DN/2021_07/CBERS_4A_WPM_RAW_2021_07_12.13_25_00_ETC2/212_132_0/4_BC_UTM_WGS84
    """
    t = acquired.astimezone(timezone.utc)
    start = (t - timedelta(minutes=5)).replace(second=0, microsecond=0)
    start = start.replace(minute=start.minute - start.minute % 5)
    raw = f"CBERS_4A_WPM_RAW_{start:%Y_%m_%d.%H_%M_%S}_ETC2"
    return f"CB4A-WPM-L4-DN/{t:%Y_%m}/{raw}/{path:03d}_{row:03d}_0/4_BC_UTM_WGS84"


def inpe_data_path(scene: SampleScene) -> str:
    """`inpe_relative_dir` of a scene: where BDC's band hrefs would put its files."""
    return inpe_relative_dir(scene.acquired, scene.path, scene.row)


def _rfc3339(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sample_item(
    scene: SampleScene,
    base_url: str,
    collection: str = DEFAULT_COLLECTION,
    *,
    path_prefix: str | None = None,
) -> dict[str, Any]:
    """STAC item dict for `scene` in INPE BDC's layout (STAC 1.0.0, `path`/`row` strings),
    hrefs absolute under `base_url`.

    Asset hrefs are <base_url>/<path_prefix>/<file>, path_prefix defaulting to
    "data/" + inpe_data_path(scene). Links self/parent/collection/root point at a STAC API
    rooted at base_url (as SampleStacApi serves it).
    """
    base = base_url.rstrip("/")
    prefix = (path_prefix if path_prefix is not None else f"data/{inpe_data_path(scene)}").strip(
        "/"
    )
    data = f"{base}/{prefix}"
    begin = scene.acquired - timedelta(seconds=7)
    end = scene.acquired + timedelta(seconds=7)
    created = scene.acquired + timedelta(days=1)
    common_names = ("blue", "green", "red", "nir")
    assets: dict[str, Any] = {}
    for number, key in enumerate(BAND_KEYS, start=1):
        assets[key] = {
            "href": f"{data}/{scene.bands[key].name}",
            "type": GEOTIFF_MEDIA_TYPE,
            "title": f"Band {number} ({common_names[number - 1]})",
            "roles": ["data"],
            "eo:bands": [{"name": key, "common_name": common_names[number - 1]}],
        }
    for key in BAND_KEYS:
        assets[f"{key}_xml"] = {
            "href": f"{data}/{scene.xml[key].name}",
            "type": "application/xml",
            "title": f"{key} XML metadata",
            "roles": ["metadata"],
        }
    assets["thumbnail"] = {
        "href": f"{data}/{scene.thumbnail.name}",
        "type": "image/png",
        "title": "Thumbnail",
        "roles": ["thumbnail"],
    }
    item_url = f"{base}/collections/{collection}/items/{scene.scene_id}"
    return {
        "type": "Feature",
        "stac_version": "1.0.0",  # as BDC answers
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.0.0/schema.json"],
        "id": scene.scene_id,
        "collection": collection,
        "geometry": scene.footprint,
        "bbox": list(scene.bbox),
        "properties": {
            "datetime": _rfc3339(scene.acquired),
            "start_datetime": _rfc3339(begin),
            "end_datetime": _rfc3339(end),
            "created": _rfc3339(created),
            "updated": _rfc3339(created),
            "platform": "CBERS-4A",
            "instruments": ["WPM"],
            "constellation": "CBERS",
            "eo:cloud_cover": 0,
            # BDC writes path and row as strings; the CBERS sensor publishes them as integers
            # (and cbers:path / cbers:row from the scene id).
            "path": str(scene.path),
            "row": str(scene.row),
        },
        "assets": assets,
        "links": [
            {"rel": "self", "href": item_url, "type": "application/geo+json"},
            {
                "rel": "parent",
                "href": f"{base}/collections/{collection}",
                "type": "application/json",
            },
            {
                "rel": "collection",
                "href": f"{base}/collections/{collection}",
                "type": "application/json",
            },
            {"rel": "root", "href": f"{base}/", "type": "application/json"},
        ],
    }
