"""The default method: absolute spectral tests on TOA reflectance, cloud objects, projected shadows.

Unlike the notebook's scene percentiles, every threshold here is an absolute reflectance test, so
cover tracks the sky from clear to overcast. Blue, green, red and NIR only (CBERS-4A WPM has no
SWIR, thermal or cirrus band), after Fmask (Zhu & Woodcock 2012; Qiu et al. 2019), the MFC
method for 4-band GF-1 WFV (Li et al. 2017) and HOT (Zhang et al. 2002).

Passes over the BandSource (memory follows the strip; spatial work on a small grid):
1. per pixel: potential cloud (HOT, whiteness, brightness, NDVI), accumulated with the mean
   reflectance into a working grid of at most WORK_SIZE pixels a side (block averages);
2. on the working grid: cloud objects (holes filled, small ones dropped, buffered); potential
   shadow (NIR much darker than its clear surroundings, not water); shadow objects matched to
   the cloud objects projected along the sun direction over a range of cloud heights, or, with
   no sun angles, the dark objects within reach of a cloud;
3. per pixel again: the working-grid objects refined by the pixel's own tests, water, classes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window
from scipy import ndimage

from stacmask.constants import CLEAR, CLOUD, NODATA, SHADOW, WATER
from stacmask.scene import BandSource

F32 = NDArray[np.float32]
Mask = NDArray[np.bool_]

#: Longest side of the working grid for the spatial steps, in cells.
WORK_SIZE = 2048
#: Pixels of a cloud object that score each candidate cloud height.
SHADOW_SAMPLE = 4000


@dataclass(frozen=True)
class PhysicalConfig:
    """Every threshold of the method, with its source."""

    #: HOT = blue - 0.5 red - 0.08 must exceed this (Zhang et al. 2002; Fmask eq. 3 uses 0 next to
    #: SWIR and thermal tests we lack). Measured: clear HOT stays below 0.007 (95th percentile) on
    #: the labelled Sentinel-2 scene and below 0.003 (99th) on the real Landsat-8 clip, whose
    #: high-confidence clouds have a median HOT of 0.018; 0.01 separates both.
    hot_min: float = 0.01
    #: Whiteness sum |band - mean| / mean over blue, green, red below this (Fmask eq. 2: 0.7).
    whiteness_max: float = 0.7
    #: Mean visible reflectance above this: clouds are bright (MFC, Li et al. 2017, T1 ~ 0.15).
    #: Measured: 0.12 keeps 95 % of the Landsat-8 clip's flagged clouds inside its BQA medium or
    #: high cloud confidence and is below the labelled scene's cloud 5th percentile (0.16).
    brightness_min: float = 0.12
    #: NDVI below this: vegetation is not cloud (Fmask basic test uses 0.8 with SWIR tests; with
    #: four bands the clouds of the labelled scene stay under 0.45).
    ndvi_max: float = 0.5
    #: Bright, flat, very bright pixels are cloud even if HOT fails (thick cloud saturating blue
    #: and red alike; Fmask's "clear-sky brightness" idea, MFC's T1 for thick cloud).
    thick_brightness_min: float = 0.3
    #: Share of a working cell's pixels that must be potential cloud for the cell to be cloud.
    cell_cloud_fraction: float = 0.5
    #: Clear holes inside a cloud object up to this area (m^2) become cloud (Fmask fills the
    #: holes of its cloud objects; a larger clear gap between clouds is left clear).
    max_hole_area: float = 10 * 900.0
    #: Cloud objects smaller than this (m^2) are dropped (Fmask drops objects < 3 pixels of 30 m).
    min_cloud_area: float = 3 * 900.0
    #: Cloud objects are buffered by this distance (m). Fmask 4 dilates clouds by 3 pixels of 30 m
    #: for a conservative mask; stacmask reports cover, and on the labelled scene any buffer
    #: over-reports it (+3.7 points for 30 m), so none by default.
    cloud_buffer: float = 0.0
    #: Water: (NDVI < 0.01 and NIR < 0.11) or (NDVI < 0.1 and NIR < 0.05) (Fmask eq. 5).
    water_ndvi: tuple[float, float] = (0.01, 0.1)
    water_nir: tuple[float, float] = (0.11, 0.05)
    #: Potential shadow: NIR below this share of the clear surroundings' NIR (Fmask's NIR flood
    #: fill looks for NIR depressions deeper than 0.02; a ratio is robust across scenes; the
    #: labelled shadows sit at 0.14 against 0.43 clear NIR).
    shadow_nir_ratio: float = 0.65
    #: ... and NIR below this absolute reflectance.
    shadow_nir_max: float = 0.3
    #: Radius (m) of the surroundings the shadow test compares a pixel with.
    shadow_background_radius: float = 1500.0
    #: Cloud heights searched for the shadow projection (m): Fmask 4 searches 200 m to 12 km.
    cloud_height_min: float = 200.0
    cloud_height_max: float = 12000.0
    cloud_height_step: float = 100.0
    #: A projected cloud object becomes shadow where its match with potential shadow is at
    #: least this (Fmask uses a similarity of 0.3).
    shadow_similarity_min: float = 0.3
    #: Without sun angles: dark objects within this distance (m) of a cloud are shadow.
    shadow_reach: float = 2000.0
    #: Shadow objects are buffered by this distance (m) (Fmask dilates shadows by 3 pixels).
    shadow_buffer: float = 30.0


#: Bits of `pixel_tests`' result.
VALID, POTENTIAL_CLOUD, WATER_TEST = 1, 2, 4


@numba.njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _pixel_tests(r: Any, t: Any) -> Any:
    """Valid, potential-cloud and water bits of every pixel of a (4, h, w) reflectance array;
    `t` holds PhysicalConfig's thresholds in `pixel_tests`' order. One fused loop, both cores."""
    rows, cols = r.shape[1], r.shape[2]
    out = np.zeros((rows, cols), np.uint8)
    for i in numba.prange(rows):
        for j in range(cols):
            b, g, red, nir = r[0, i, j], r[1, i, j], r[2, i, j], r[3, i, j]
            if b != b or g != g or red != red or nir != nir:
                continue
            flags = VALID
            mean = (b + g + red) / 3.0
            white = (abs(b - mean) + abs(g - mean) + abs(red - mean)) / mean
            hot = b - 0.5 * red - 0.08
            ndvi = (nir - red) / (nir + red)
            spectral = hot > t[0] and white < t[1] and mean > t[2]
            thick = mean > t[4] and white < t[1]
            if (spectral or thick) and ndvi < t[3]:
                flags |= POTENTIAL_CLOUD
            if (ndvi < t[5] and nir < t[6]) or (ndvi < t[7] and nir < t[8]):
                flags |= WATER_TEST
            out[i, j] = flags
    return out


@numba.njit(parallel=True, nogil=True, cache=True)
def _block_sums(r: Any, flags: Any, row0: int, k: int, sums: Any, cloud: Any, counts: Any) -> None:
    """Add a strip's valid pixels, potential-cloud pixels and reflectance to the k x k blocks
    of the working grid (each working row is summed by one thread: no races)."""
    rows, cols = flags.shape
    first, last = row0 // k, (row0 + rows - 1) // k
    for lr in numba.prange(first, last + 1):
        for i in range(max(lr * k, row0) - row0, min((lr + 1) * k, row0 + rows) - row0):
            for j in range(cols):
                f = flags[i, j]
                if f & VALID:
                    lc = j // k
                    counts[lr, lc] += 1.0
                    if f & POTENTIAL_CLOUD:
                        cloud[lr, lc] += 1.0
                    for b in range(4):
                        sums[b, lr, lc] += r[b, i, j]


@numba.njit(parallel=True, nogil=True, cache=True)
def _compose(
    flags: Any, nir: Any, row0: int, k: int, core: Any, zone: Any, shadow: Any, nir_max: float
) -> Any:
    """Class codes of a strip from its pixel tests and the working grid's objects."""
    rows, cols = flags.shape
    out = np.empty((rows, cols), np.uint8)
    for i in numba.prange(rows):
        lr = (row0 + i) // k
        for j in range(cols):
            f = flags[i, j]
            if not f & VALID:
                out[i, j] = NODATA
                continue
            lc = j // k
            is_cloud = zone[lr, lc] and (k == 1 or core[lr, lc] or (f & POTENTIAL_CLOUD) > 0)
            if is_cloud:
                out[i, j] = CLOUD
            elif shadow[lr, lc] and (k == 1 or nir[i, j] < nir_max):
                out[i, j] = SHADOW
            elif f & WATER_TEST:
                out[i, j] = WATER
            else:
                out[i, j] = CLEAR
    return out


def pixel_tests(r: F32, c: PhysicalConfig) -> NDArray[np.uint8]:
    """Per pixel: VALID (all bands finite), POTENTIAL_CLOUD (HOT, whiteness, brightness, NDVI)
    and WATER_TEST (Fmask's NDVI and NIR test) bits, on TOA reflectance."""
    t = np.array(
        [
            c.hot_min,
            c.whiteness_max,
            c.brightness_min,
            c.ndvi_max,
            c.thick_brightness_min,
            c.water_ndvi[0],
            c.water_nir[0],
            c.water_ndvi[1],
            c.water_nir[1],
        ],
        dtype=np.float64,
    )
    flags: NDArray[np.uint8] = _pixel_tests(np.ascontiguousarray(r, dtype=np.float32), t)
    return flags


def _grow(mask: Mask, cells: float) -> Mask:
    """`mask` grown by a distance of `cells` (Euclidean distance transform)."""
    if cells <= 0 or not mask.any():
        return mask
    grown: Mask = ndimage.distance_transform_edt(~mask) <= cells
    return grown


@dataclass
class WorkingGrid:
    """Block means of reflectance, the potential-cloud share and validity on the working grid."""

    factor: int
    reflectance: F32
    cloud_share: F32
    valid: Mask


def working_grid(source: BandSource, c: PhysicalConfig) -> WorkingGrid:
    """Pass 1: per-pixel cloud tests and block means onto a grid of at most WORK_SIZE a side."""
    info = source.info
    k = max(1, math.ceil(max(info.width, info.height) / WORK_SIZE))
    h, w = math.ceil(info.height / k), math.ceil(info.width / k)
    sums = np.zeros((4, h, w), np.float64)
    cloud = np.zeros((h, w), np.float64)
    counts = np.zeros((h, w), np.float64)
    for window in source.strips():
        r = source.read_reflectance(window)
        _block_sums(r, pixel_tests(r, c), int(window.row_off), k, sums, cloud, counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (sums / counts).astype(np.float32)
        share = (cloud / counts).astype(np.float32)
    return WorkingGrid(k, mean, share, counts >= 0.5 * k * k)


def cloud_objects(grid: WorkingGrid, cell: float, c: PhysicalConfig) -> tuple[Mask, Mask]:
    """Cloud cells (holes filled, small objects dropped) and the same buffered."""
    cloud = (grid.cloud_share >= c.cell_cloud_fraction) & grid.valid
    holes = ndimage.binary_fill_holes(cloud) & ~cloud
    hole_labels, m = ndimage.label(holes)
    if m:
        hole_sizes = ndimage.sum_labels(holes, hole_labels, index=np.arange(1, m + 1))
        small_hole = np.zeros(m + 1, bool)
        small_hole[1:] = hole_sizes * cell * cell <= c.max_hole_area
        cloud = cloud | small_hole[hole_labels]
    labels, n = ndimage.label(cloud)
    if n:
        sizes = ndimage.sum_labels(cloud, labels, index=np.arange(1, n + 1))
        small = np.zeros(n + 1, bool)
        small[1:] = sizes * cell * cell < c.min_cloud_area
        cloud &= ~small[labels]
    return cloud, _grow(cloud, c.cloud_buffer / cell) & grid.valid


def potential_shadow(grid: WorkingGrid, cloud: Mask, cell: float, c: PhysicalConfig) -> Mask:
    """Cells whose NIR is far below that of their clear surroundings, and not water."""
    nir = np.nan_to_num(grid.reflectance[3])
    clear = grid.valid & ~cloud
    size = max(3, int(2 * c.shadow_background_radius / cell) | 1)
    weight = ndimage.uniform_filter(clear.astype(np.float32), size)
    total = ndimage.uniform_filter(np.where(clear, nir, 0).astype(np.float32), size)
    with np.errstate(invalid="ignore", divide="ignore"):
        background = total / weight
    water = (pixel_tests(grid.reflectance, c) & WATER_TEST) > 0
    dark = (nir < c.shadow_nir_ratio * background) & (nir < c.shadow_nir_max)
    shadow: Mask = dark & ~water & grid.valid & ~cloud
    return shadow


def match_shadows(
    cloud: Mask,
    candidates: Mask,
    cell: float,
    sun_elevation: float | None,
    sun_azimuth: float | None,
    c: PhysicalConfig,
) -> Mask:
    """Shadow cells: cloud objects projected along the sun direction, or dark cells near clouds."""
    labels, n = ndimage.label(cloud)
    if n == 0:
        return np.zeros_like(cloud)
    # Dark objects within reach of a cloud: the whole answer without sun angles, and a
    # complement of the projection with them (shadows of clouds the projection misses).
    reach = _grow(cloud, c.shadow_reach / cell)
    dark_labels, m = ndimage.label(candidates)
    near = np.unique(dark_labels[reach & candidates])
    keep = np.zeros(m + 1, bool)
    keep[near[near > 0]] = True
    nearby: Mask = keep[dark_labels]
    if sun_elevation is None or sun_azimuth is None or sun_elevation <= 0:
        return nearby
    # Shadow falls away from the sun: azimuth is clockwise from north, rows grow southwards.
    away = math.radians(sun_azimuth + 180.0)
    tan_zenith = 1.0 / math.tan(math.radians(sun_elevation))
    step_col, step_row = math.sin(away), -math.cos(away)
    shadow = np.zeros_like(cloud)
    slices = ndimage.find_objects(labels)
    rows, cols = cloud.shape
    heights = np.arange(c.cloud_height_min, c.cloud_height_max + 1, c.cloud_height_step)
    for index, box in enumerate(slices, start=1):
        if box is None:
            continue
        obj_rows, obj_cols = np.nonzero(labels[box] == index)
        obj_rows += box[0].start
        obj_cols += box[1].start
        # Score every height on at most SAMPLE pixels of the object, then project all of it.
        pick = np.linspace(0, len(obj_rows) - 1, min(len(obj_rows), SHADOW_SAMPLE)).astype(int)
        d = heights[:, None] * tan_zenith / cell
        r = np.round(obj_rows[pick][None, :] + d * step_row).astype(int)
        q = np.round(obj_cols[pick][None, :] + d * step_col).astype(int)
        inside = (r >= 0) & (r < rows) & (q >= 0) & (q < cols)
        rc, qc = np.clip(r, 0, rows - 1), np.clip(q, 0, cols - 1)
        off_cloud = inside & ~cloud[rc, qc]
        hits = (off_cloud & candidates[rc, qc]).sum(axis=1)
        tried = off_cloud.sum(axis=1)
        usable = inside.mean(axis=1) >= 0.5
        with np.errstate(invalid="ignore", divide="ignore"):
            similarity = np.where(usable & (tried > 0), hits / tried, 0.0)
        best = int(np.argmax(similarity))
        if similarity[best] < c.shadow_similarity_min:
            continue
        shift = heights[best] * tan_zenith / cell
        r_all = np.round(obj_rows + shift * step_row).astype(int)
        q_all = np.round(obj_cols + shift * step_col).astype(int)
        ok = (r_all >= 0) & (r_all < rows) & (q_all >= 0) & (q_all < cols)
        shadow[r_all[ok], q_all[ok]] = True
    shadow = _grow(shadow, c.shadow_buffer / cell)
    grown: Mask = (shadow & (candidates | ndimage.binary_dilation(candidates))) | nearby
    return grown & ~cloud


class PhysicalMethod:
    """Absolute spectral cloud tests, cloud objects and geometric shadow matching (default)."""

    name = "physical"

    def __init__(self, config: PhysicalConfig | None = None) -> None:
        self.config = config or PhysicalConfig()

    def classify(self, source: BandSource) -> Iterator[tuple[Window, NDArray[np.uint8]]]:
        """Class codes of every strip."""
        c = self.config
        info = source.info
        grid = working_grid(source, c)
        cell = info.pixel_size * grid.factor
        cloud, cloud_zone = cloud_objects(grid, cell, c)
        candidates = potential_shadow(grid, cloud_zone, cell, c)
        shadow = match_shadows(cloud, candidates, cell, info.sun_elevation, info.sun_azimuth, c)
        k = grid.factor
        for window in source.strips():
            r = source.read_reflectance(window)
            flags = pixel_tests(r, c)
            out = _compose(
                flags, r[3], int(window.row_off), k, cloud, cloud_zone, shadow, c.shadow_nir_max
            )
            yield window, out
