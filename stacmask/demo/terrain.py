"""The procedural content of a synthetic WPM scene: land, water, haze, clouds and their shadows.

`SceneModel` holds seeded coarse random fields (value noise and its fractal sums) and renders
any strip of the scene directly in DN with its truth class codes, so a scene of any size is
written strip by strip (stacmask.demo.samples). Reflectances are plausible top-of-atmosphere
values for each surface; cloud edges are soft, shadows are the cloud field displaced away
from the sun.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from stacmask.constants import CLEAR, CLOUD, NODATA, SHADOW, WATER

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


class ValueNoise:
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


class Fbm:
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
        self.octaves = [ValueNoise(rng, height, width, c, margin) for c in cells]
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
class Footprint:
    """A rotated rectangle inside the raster (pixel units)."""

    cx: float
    cy: float
    half_u: float
    half_v: float
    cos: float
    sin: float

    @classmethod
    def inside(cls, width: int, height: int, angle: float) -> Footprint:
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


class SceneModel:
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
        self.footprint = Footprint.inside(width, height, _FOOTPRINT_ANGLE)
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
        self.cloud = Fbm(rng, height, width, cloud_cell, 5, margin=margin, persistence=0.55)
        self.cloud_texture = Fbm(rng, height, width, max(cloud_cell / 6, 4), 2, margin=margin)
        self.landuse = Fbm(rng, height, width, float(np.clip(span / 2, 32, 900)), 3)
        self.lakes = Fbm(rng, height, width, float(np.clip(span / 3, 24, 600)), 4)
        self.haze = ValueNoise(rng, height, width, float(np.clip(span / 2, 32, 2000)), 0)
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
