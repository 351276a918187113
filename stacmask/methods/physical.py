"""The default method: absolute spectral tests on TOA reflectance, cloud objects, projected shadows.

Unlike the notebook's scene percentiles, every threshold here is an absolute reflectance test, so
cover tracks the sky from clear to overcast. Blue, green, red and NIR only (CBERS-4A WPM has no
SWIR, thermal or cirrus band), after Fmask (Zhu & Woodcock 2012; Qiu et al. 2019), the MFC
method for 4-band GF-1 WFV (Li et al. 2017) and HOT (Zhang et al. 2002).

Passes over the BandSource (memory follows the strip; spatial work on a small grid):
1. per pixel: potential cloud (HOT, whiteness, brightness, NDVI), accumulated with the mean
   reflectance into a working grid of at most WORK_SIZE pixels a side (block averages); the
   pixel's test bits go to a one-byte scratch raster, so the bands are read only once;
2. on the working grid: cloud objects (holes filled, small ones dropped, buffered); potential
   shadow (NIR much darker than its clear surroundings, not water); shadow objects: with sun
   angles the dark objects in the zone where a cloud's shadow can fall (away from the sun, at
   the distances of cloud heights 200 m - 12 km) and the cloud objects projected to their best
   match; with no sun angles the dark objects within reach of a cloud;
3. per pixel again, from the test bits: inside cloud objects every pixel is cloud, at their
   edges (one cell either side) each pixel's own tests decide; shadow cells keep their dark
   pixels; water; classes.
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
from stacmask.methods import MethodDefaults
from stacmask.methods.geometry import PixelGeometry, pixel_geometry
from stacmask.reading.band_source import BandSource
from stacmask.reading.scratch import ScratchRaster

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
    #: labelled shadows sit at 0.14 against 0.43 clear NIR). 0.6 with a reference cleared of
    #: dark cells (shadow_background_rounds = 2): labelled scene shadow F1 0.872, cover error
    #: +1.0 point (0.65 gives +2.0; with one round 0.65 gave +0.6 but -8 points on synthetic
    #: scenes with 35-60 % cloud).
    shadow_nir_ratio: float = 0.6
    #: ... and NIR below this absolute reflectance.
    shadow_nir_max: float = 0.3
    #: Radius (m) of the surroundings the shadow test compares a pixel with.
    shadow_background_radius: float = 1500.0
    #: Rounds of that comparison; each later one leaves the dark cells of the one before out
    #: of the surroundings. Measured on synthetic WPM scenes with 35-60 % cloud, where shadows
    #: cover a fifth of the clear ground: shadow F1 0.67 with 1 round, 0.69-0.75 with 2.
    shadow_background_rounds: int = 2
    #: The clear reference NIR is never taken below this (and is this where no clear cell lies
    #: within the radius). Where clouds cover most of the scene, the few cells left outside them
    #: are mostly shadow, so their mean is shadow's NIR and nothing is dark against it (synthetic
    #: scene with 90 % cloud: reference 0.08, no shadow found). Measured: 0.15 is the 5th
    #: percentile of the reference on the real Landsat-8 clip (its darkest; 0.38 on the labelled
    #: scene), so real clear references stay above it; 90 % cloud synthetic shadow F1 0.31 / 0.86
    #: / 0.94 with 0.12 / 0.15 / 0.18; at 0.25 the Landsat-8 clip gets shadow false alarms
    #: (0.65 % instead of 0.07 %).
    shadow_background_nir_min: float = 0.15
    #: Water-test cells darker than this in NIR are never shadow: clear water by Fmask eq. 5's
    #: second branch (NIR < 0.05). Brighter ones pass only its first branch (NDVI < 0.01, NIR <
    #: 0.11), which shaded bare soil passes too (shade lowers NIR and NDVI; on synthetic scenes a
    #: third of the true shadow); they may be shadow. Measured: synthetic shadow F1 0.70-0.78 ->
    #: 0.87-0.97 at 10-70 % cloud; labelled scene 76 more shadow pixels (kappa -0.001).
    #: 1.0 leaves every water-test cell out, as before.
    shadow_water_nir_max: float = 0.05
    #: Cloud heights searched for the shadow projection (m): Fmask 4 searches 200 m to 12 km.
    cloud_height_min: float = 200.0
    cloud_height_max: float = 12000.0
    cloud_height_step: float = 100.0
    #: A projected cloud object becomes shadow where its match with potential shadow is at
    #: least this (Fmask uses a similarity of 0.3).
    shadow_similarity_min: float = 0.3
    #: Shadow objects are kept within this distance (m) of a cloud; without any direction (no sun
    #: angles and no clear direction in the scene) every dark object this near a cloud is shadow.
    shadow_reach: float = 2000.0
    #: Shadow objects are buffered by this distance (m) (Fmask dilates shadows by 3 pixels).
    shadow_buffer: float = 30.0


#: Bits of `pixel_tests`' result.
VALID, POTENTIAL_CLOUD, WATER_TEST, SHADOW_DARK = 1, 2, 4, 8


@numba.njit(inline="always", nogil=True, cache=True, error_model="numpy")
def _tests(b: float, g: float, red: float, nir: float, t: Any) -> int:
    """VALID, POTENTIAL_CLOUD, WATER_TEST and SHADOW_DARK bits of one pixel's reflectance;
    `t` holds PhysicalConfig's thresholds in `pixel_tests`' order."""
    if b != b or g != g or red != red or nir != nir:
        return 0
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
    if nir < t[9]:
        flags |= SHADOW_DARK
    return flags


@numba.njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _pixel_tests(r: Any, t: Any) -> Any:
    """`_tests` of every pixel of a (4, h, w) reflectance array (one fused loop, both cores)."""
    rows, cols = r.shape[1], r.shape[2]
    out = np.zeros((rows, cols), np.uint8)
    for i in numba.prange(rows):
        for j in range(cols):
            out[i, j] = _tests(r[0, i, j], r[1, i, j], r[2, i, j], r[3, i, j], t)
    return out


@numba.njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _scan(
    raw: Any,
    scale: Any,
    offset: Any,
    nodata: float,
    t: Any,
    row0: int,
    k: int,
    flags: Any,
    sums: Any,
    cloud: Any,
    counts: Any,
) -> None:
    """Pass 1 over a strip of stored values, in one loop: reflectance (value x scale + offset,
    float32, NaN at `nodata`), the pixel's test bits into `flags`, and the k x k block sums of
    valid pixels, potential-cloud pixels and reflectance on the working grid (each working row
    is summed by one thread: no races)."""
    rows, cols = raw.shape[1], raw.shape[2]
    first, last = row0 // k, (row0 + rows - 1) // k
    width = sums.shape[2]
    nan: Any = np.float32(np.nan)
    for lr in numba.prange(first, last + 1):
        r = np.empty((4, cols), np.float32)  # one row's reflectance
        for i in range(max(lr * k, row0) - row0, min((lr + 1) * k, row0 + rows) - row0):
            for j in range(cols):
                v0, v1, v2, v3 = raw[0, i, j], raw[1, i, j], raw[2, i, j], raw[3, i, j]
                # v - v != 0 for NaN and infinities: no data, like `nodata`
                r0 = nan if v0 == nodata or v0 - v0 != 0 else v0 * scale[0] + offset[0]
                r1 = nan if v1 == nodata or v1 - v1 != 0 else v1 * scale[1] + offset[1]
                r2 = nan if v2 == nodata or v2 - v2 != 0 else v2 * scale[2] + offset[2]
                r3 = nan if v3 == nodata or v3 - v3 != 0 else v3 * scale[3] + offset[3]
                r[0, j], r[1, j], r[2, j], r[3, j] = r0, r1, r2, r3
                flags[i, j] = _tests(r0, r1, r2, r3, t)
            for lc in range(width):
                n = c = s0 = s1 = s2 = s3 = 0.0
                for j in range(lc * k, min((lc + 1) * k, cols)):
                    f = flags[i, j]
                    if f & VALID:
                        n += 1.0
                        if f & POTENTIAL_CLOUD:
                            c += 1.0
                        s0 += r[0, j]
                        s1 += r[1, j]
                        s2 += r[2, j]
                        s3 += r[3, j]
                counts[lr, lc] += n
                cloud[lr, lc] += c
                sums[0, lr, lc] += s0
                sums[1, lr, lc] += s1
                sums[2, lr, lc] += s2
                sums[3, lr, lc] += s3


@numba.njit(parallel=True, nogil=True, cache=True)
def _compose(flags: Any, row0: int, k: int, core: Any, zone: Any, shadow: Any) -> Any:
    """Class codes of a strip from its pixel tests and the working grid's objects."""
    rows, cols = flags.shape
    out = np.empty((rows, cols), np.uint8)
    for i in numba.prange(rows):
        lr = (row0 + i) // k
        for lc in range(zone.shape[1]):
            in_zone, in_core, in_shadow = zone[lr, lc], k == 1 or core[lr, lc], shadow[lr, lc]
            for j in range(lc * k, min((lc + 1) * k, cols)):
                f = flags[i, j]
                if not f & VALID:
                    out[i, j] = NODATA
                elif in_zone and (in_core or f & POTENTIAL_CLOUD):
                    out[i, j] = CLOUD
                elif in_shadow and (k == 1 or f & SHADOW_DARK):
                    out[i, j] = SHADOW
                elif f & WATER_TEST:
                    out[i, j] = WATER
                else:
                    out[i, j] = CLEAR
    return out


def _thresholds(c: PhysicalConfig) -> NDArray[np.float64]:
    """The thresholds `_tests` takes, in its order."""
    return np.array(
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
            c.shadow_nir_max,
        ],
        dtype=np.float64,
    )


def pixel_tests(r: F32, c: PhysicalConfig) -> NDArray[np.uint8]:
    """Per pixel: VALID (all bands finite), POTENTIAL_CLOUD (HOT, whiteness, brightness, NDVI),
    WATER_TEST (Fmask's NDVI and NIR test) and SHADOW_DARK (NIR below shadow_nir_max) bits, on
    TOA reflectance."""
    flags: NDArray[np.uint8] = _pixel_tests(
        np.ascontiguousarray(r, dtype=np.float32), _thresholds(c)
    )
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


def working_grid(
    source: BandSource, c: PhysicalConfig, tests: ScratchRaster | None = None
) -> WorkingGrid:
    """Pass 1: per-pixel cloud tests and block means onto a grid of at most WORK_SIZE a side;
    the test bits of every pixel go to `tests` when given."""
    info = source.info
    k = max(1, math.ceil(max(info.width, info.height) / WORK_SIZE))
    h, w = math.ceil(info.height / k), math.ceil(info.width / k)
    sums = np.zeros((4, h, w), np.float64)
    cloud = np.zeros((h, w), np.float64)
    counts = np.zeros((h, w), np.float64)
    scale, offset, nodata = source.reflectance_scaling()
    t = _thresholds(c)
    for window in source.strips():
        raw = source.read_raw(window)
        if raw.dtype not in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
            raw = raw.astype(np.float64)
        flags = np.empty(raw.shape[1:], np.uint8)
        row = int(window.row_off)
        _scan(raw, scale, offset, nodata, t, row, k, flags, sums, cloud, counts)
        if tests is not None:
            tests.write(0, row, flags)
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


def pixel_decided_cells(cloud: Mask, zone: Mask, factor: int) -> tuple[Mask, Mask]:
    """Cells whose pixels are all cloud, and cells where each pixel's own tests decide.

    On a coarse working grid (`factor` > 1) the edge cells of the cloud objects and the cells
    next to them are left to their pixels, so the outline follows the cloud, not the grid; the
    inner cells stay wholly cloud (filled holes, thick cores where a pixel fails a test).
    """
    if factor == 1:
        return cloud, zone
    ring = np.ones((3, 3), bool)
    inner: Mask = ndimage.binary_erosion(cloud, ring, border_value=1)
    edges: Mask = ndimage.binary_dilation(zone, ring)
    return inner, edges


def potential_shadow(grid: WorkingGrid, cloud: Mask, cell: float, c: PhysicalConfig) -> Mask:
    """Cells whose NIR is far below that of their clear surroundings, and not clear water.

    The surroundings' mean NIR leaves out cloud, water and, on a second round, the dark cells
    of the first: where shadows cover much of the ground they would darken their own reference.
    It is never below shadow_background_nir_min (nor missing where no clear cell is near), so
    that under a nearly overcast sky the shadows do not become their own reference. Water-test
    cells brighter than shadow_water_nir_max in NIR may be shadow (shaded soil passes the test).
    """
    nir = np.nan_to_num(grid.reflectance[3])
    water = (pixel_tests(grid.reflectance, c) & WATER_TEST) > 0
    background = clear_background(nir, grid.valid & ~cloud & ~water, cell, c)
    dark = (nir < c.shadow_nir_ratio * background) & (nir < c.shadow_nir_max)
    clear_water = water & (nir < c.shadow_water_nir_max)
    shadow: Mask = dark & ~clear_water & grid.valid & ~cloud
    return shadow


def masked_window_mean(
    values: NDArray[Any], where: Mask, size: int
) -> tuple[NDArray[Any], NDArray[Any]]:
    """The mean of `values` over the `where` cells of the size x size window around each cell
    (NaN where the window holds none), and the share of the window they fill; in the values'
    dtype."""
    weight = ndimage.uniform_filter(where.astype(values.dtype), size)
    total = ndimage.uniform_filter(np.where(where, values, 0).astype(values.dtype), size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / weight, weight


def clear_background(nir: F32, clear: Mask, cell: float, c: PhysicalConfig) -> F32:
    """Mean NIR of the `clear` cells within shadow_background_radius of each cell, leaving out
    on each later round the cells that the round before found dark; never below
    shadow_background_nir_min (and that where no clear cell is near)."""
    size = max(3, int(2 * c.shadow_background_radius / cell) | 1)
    dark = np.zeros_like(clear)
    background = np.full(nir.shape, c.shadow_background_nir_min, np.float32)
    for _ in range(c.shadow_background_rounds):
        mean, _ = masked_window_mean(nir, clear & ~dark, size)
        background = np.fmax(mean, np.float32(c.shadow_background_nir_min))
        dark = (nir < c.shadow_nir_ratio * background) & (nir < c.shadow_nir_max)
    return background


@dataclass(frozen=True)
class ShadowDirection:
    """The way shadows fall from their clouds on the grid: a unit step in rows and columns."""

    step_row: float
    step_col: float


def sun_direction(sun_azimuth: float, pixel: PixelGeometry | None = None) -> ShadowDirection:
    """Shadows fall away from the sun: azimuth is clockwise from north, rows grow southwards.
    A step is one square cell of `pixel`'s area along the ground: on pixels longer one way
    (geographic CRS) it is fewer of them that way."""
    away = math.radians(sun_azimuth + 180.0)
    row_scale = col_scale = 1.0
    if pixel is not None:
        row_scale, col_scale = pixel.size / pixel.down, pixel.size / pixel.across
    return ShadowDirection(-math.cos(away) * row_scale, math.sin(away) * col_scale)


def _shift(mask: Mask, rows: int, cols: int) -> Mask:
    """`mask` moved by (rows, cols) cells, False where nothing moves in."""
    out = np.zeros_like(mask)
    height, width = mask.shape
    if abs(rows) >= height or abs(cols) >= width:
        return out
    src_r, dst_r = (
        slice(max(0, -rows), height - max(0, rows)),
        slice(max(0, rows), height - max(0, -rows)),
    )
    src_c, dst_c = (
        slice(max(0, -cols), width - max(0, cols)),
        slice(max(0, cols), width - max(0, -cols)),
    )
    out[dst_r, dst_c] = mask[src_r, src_c]
    return out


def shadow_zone(cloud: Mask, direction: ShadowDirection, first: float, last: float) -> Mask:
    """Where the shadows of `cloud` can fall: the cloud swept along `direction` from `first` to
    `last` cells (unions of doubling shifts: a few passes over the grid whatever the length)."""
    zone = _shift(cloud, round(first * direction.step_row), round(first * direction.step_col))
    length, done = max(0.0, last - first), 1.0
    while done <= length:
        step = min(done, length - done + 1.0)
        zone |= _shift(zone, round(step * direction.step_row), round(step * direction.step_col))
        done += step
    return zone


@numba.njit(nogil=True, cache=True)
def _best_shift(
    rows: Any,
    cols: Any,
    distances: Any,
    step_row: float,
    step_col: float,
    cloud: Any,
    candidates: Any,
) -> tuple[int, float]:
    """The distance (index into `distances`) at which the cells (rows, cols) moved along the
    step best match `candidates` off `cloud`, and that match: the share of the moved cells that
    land on candidates, among those inside the grid and off cloud; a distance where under half
    of the moved cells stay inside the grid scores 0."""
    height, width = cloud.shape
    best, best_similarity = 0, -1.0
    for d in range(distances.size):
        inside = tried = hits = 0
        for p in range(rows.size):
            r = int(np.rint(rows[p] + distances[d] * step_row))
            q = int(np.rint(cols[p] + distances[d] * step_col))
            if 0 <= r < height and 0 <= q < width:
                inside += 1
                if not cloud[r, q]:
                    tried += 1
                    if candidates[r, q]:
                        hits += 1
        similarity = hits / tried if 2 * inside >= rows.size and tried > 0 else 0.0
        if similarity > best_similarity:
            best, best_similarity = d, similarity
    return best, best_similarity


def _project(
    labels: NDArray[np.int32],
    cloud: Mask,
    candidates: Mask,
    direction: ShadowDirection,
    distances: NDArray[np.float64],
    c: PhysicalConfig,
) -> Mask:
    """Each cloud object shifted along `direction` by the distance (from `distances`, in cells)
    where it best matches potential shadow (similarity >= shadow_similarity_min, as Fmask)."""
    shadow = np.zeros_like(cloud)
    rows, cols = cloud.shape
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        obj_rows, obj_cols = np.nonzero(labels[box] == index)
        obj_rows += box[0].start
        obj_cols += box[1].start
        # Score every distance on at most SAMPLE pixels of the object, then project all of it.
        pick = np.linspace(0, len(obj_rows) - 1, min(len(obj_rows), SHADOW_SAMPLE)).astype(int)
        best, similarity = _best_shift(
            obj_rows[pick].astype(np.float64),
            obj_cols[pick].astype(np.float64),
            distances,
            direction.step_row,
            direction.step_col,
            cloud,
            candidates,
        )
        if similarity < c.shadow_similarity_min:
            continue
        shift = distances[best]
        r_all = np.round(obj_rows + shift * direction.step_row).astype(int)
        q_all = np.round(obj_cols + shift * direction.step_col).astype(int)
        ok = (r_all >= 0) & (r_all < rows) & (q_all >= 0) & (q_all < cols)
        shadow[r_all[ok], q_all[ok]] = True
    return shadow


def match_shadows(
    cloud: Mask,
    candidates: Mask,
    cell: float,
    sun_elevation: float | None,
    sun_azimuth: float | None,
    c: PhysicalConfig,
    valid: Mask | None = None,
    pixel: PixelGeometry | None = None,
) -> Mask:
    """Shadow cells: dark objects (potential shadow) where a cloud's shadow can fall.

    With sun angles, a shadow can only fall away from the sun, at the distances that cloud
    heights of 200 m to 12 km give (Fmask): dark objects reaching that zone within
    `shadow_reach`, plus each cloud object projected to its best match (Fmask's matching).
    Without sun angles every dark object within `shadow_reach` of a cloud is shadow.
    """
    labels, n = ndimage.label(cloud)
    if n == 0:
        return np.zeros_like(cloud)
    reach = c.shadow_reach / cell
    valid = np.ones_like(cloud) if valid is None else valid
    direction: ShadowDirection | None = None
    distances = np.zeros(1)
    if sun_elevation is not None and sun_azimuth is not None and sun_elevation > 0:
        direction = sun_direction(sun_azimuth, pixel)
        tan_zenith = 1.0 / math.tan(math.radians(sun_elevation))
        heights = np.arange(c.cloud_height_min, c.cloud_height_max + 1, c.cloud_height_step)
        distances = heights * tan_zenith / cell
    within_reach = _grow(cloud, reach)
    near_cloud = within_reach.copy()
    if direction is not None:
        # Only where a shadow can fall: away from the sun from a cloud, at the searched
        # distances, or from beyond the scene's edge or no-data (clouds we cannot see).
        last = min(float(distances[-1]), reach)
        first = min(float(distances[0]), last)
        pad = math.ceil(last) + 1
        outside = np.pad(~valid, pad, constant_values=True)
        beyond = shadow_zone(outside, direction, first, last)[pad:-pad, pad:-pad]
        near_cloud &= shadow_zone(cloud, direction, first, last) | beyond
    # Dark objects that reach that zone (all of each: a shadow is cast by the cloud's whole
    # volume, so its outline is not the cloud's).
    dark_labels, m = ndimage.label(candidates)
    touched = np.unique(dark_labels[near_cloud & candidates])
    keep = np.zeros(m + 1, bool)
    keep[touched[touched > 0]] = True
    objects: Mask = keep[dark_labels] & within_reach
    if direction is None:
        return objects & ~cloud
    # Cloud objects projected to their best match with potential shadow (Fmask), buffered.
    shadow = _project(labels, cloud, candidates, direction, distances, c)
    shadow = _grow(shadow, c.shadow_buffer / cell)
    projected: Mask = shadow & (candidates | ndimage.binary_dilation(candidates))
    return (projected | objects) & ~cloud


class PhysicalMethod(MethodDefaults):
    """Absolute spectral cloud tests, cloud objects and geometric shadow matching (default)."""

    name = "physical"
    reads_bands_once = True

    def __init__(self, config: PhysicalConfig | None = None) -> None:
        self.config = config or PhysicalConfig()

    def classify(self, source: BandSource) -> Iterator[tuple[Window, NDArray[np.uint8]]]:
        """Class codes of every strip (the bands are read once, top to bottom)."""
        info = source.info
        with ScratchRaster(1, info.height, info.width, np.uint8) as tests:
            yield from self._classify(source, tests)

    def _classify(
        self, source: BandSource, tests: ScratchRaster
    ) -> Iterator[tuple[Window, NDArray[np.uint8]]]:
        c = self.config
        info = source.info
        strips = list(source.strips())
        grid = working_grid(source, c, tests)
        pixel = pixel_geometry(info)
        cell = pixel.size * grid.factor
        cloud, cloud_zone = cloud_objects(grid, cell, c)
        candidates = potential_shadow(grid, cloud_zone, cell, c)
        shadow = match_shadows(
            cloud, candidates, cell, info.sun_elevation, info.sun_azimuth, c, grid.valid, pixel
        )
        k = grid.factor
        inner, edges = pixel_decided_cells(cloud, cloud_zone, k)
        for window in strips:
            row = int(window.row_off)
            flags = tests.read(row, int(window.height))[0]
            yield window, _compose(flags, row, k, inner, edges, shadow)
