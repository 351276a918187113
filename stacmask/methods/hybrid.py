"""The default method: ukis-csmask's CNN for where cloud and shadow are, physics for each pixel.

What each part brings (measured on every real labelled scene of ../shared, docs/methods.md):
- the CNN (ukis-csmask's 4-band U-Net, test-time flips averaged) sees cloud in its spatial
  context: it finds the thin and hazy cloud that absolute spectral tests miss (On Cloud N jaag
  cloud F1 0.88 against physical's 0.72) and calls few dark fields shadow;
- the scene's own clear-sky line (Zhang et al. 2002) re-centres HOT on each sensor, atmosphere
  and surface: it is fitted on the cells the CNN is sure are clear land, so surface reflectance
  (HOT of clear land near -0.06) and TOA (near -0.01) are judged alike;
- per-pixel physics: a CNN shadow pixel must be dark against its clear surroundings (physical's
  NIR test, Fmask's idea): labelled scene shadow F1 0.84 -> 0.90, Layton 0.81 -> 0.84; thick
  bright cloud the CNN misses (it was trained on real images; synthetic ones fool it) is cloud
  where it is bright, flat and above the clear line; water by Fmask's test; with sun angles a
  shadow must lie where a cloud's shadow can fall (physical's geometry).
- where pixels are 20 m or coarser, the CNN's uncertain cloud edge is unmixed against the clear
  ground and the cloud cores around it (at 30 m its outline lies about a pixel outside the soft
  edge: labelled scene cloud F1 0.902 -> 0.924; at 10 m it is left as it is).

Passes over the BandSource: block means onto the CNN's ~30 m working grid (coarser on very large
scenes, within CsmaskConfig.max_cells), the model, then one pass that classifies each pixel.
The CNN's cloud probability is kept: `layer(CLOUD_PROBABILITY, window)` gives it per pixel in
percent, so that users can pick their own threshold (cloud in the mask is >= 50 %, or thick).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numba
import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window
from scipy import ndimage

from stacmask.constants import CLEAR, CLOUD, NODATA, PROBABILITY_ASSET, SHADOW, WATER
from stacmask.methods import LayerSpec, MaskStrip, MethodDefaults
from stacmask.methods.csmask import (
    CsmaskConfig,
    CsmaskGrid,
    block_means,
    load_model,
    predict_flipped,
    working_plan,
)
from stacmask.methods.geometry import PixelGeometry, pixel_geometry
from stacmask.methods.physical import (
    PhysicalConfig,
    clear_background,
    masked_window_mean,
    shadow_zone,
    sun_direction,
)
from stacmask.reading.band_source import BandSource

METHOD_NAME: Final = "hybrid"
#: The optional per-pixel layer: the CNN's cloud probability in percent (255 no data).
CLOUD_PROBABILITY: Final = PROBABILITY_ASSET
#: The optional layer: the CNN's cloud probability, per pixel.
PROBABILITY_LAYER: Final = LayerSpec(
    name=CLOUD_PROBABILITY,
    title="Cloud probability (ukis-csmask CNN)",
    description="uint8 percent 0-100, the CNN's cloud probability interpolated between its "
    "cells; cloud is >= 50 (at 20 m pixels or coarser less the soft cloud edges that "
    "unmixing leaves clear) plus thick cloud the CNN misses; 255 no data",
    roles=("data", "cloud"),
    unit="percent",
)

F32 = NDArray[np.float32]
Mask = NDArray[np.bool_]


@dataclass(frozen=True)
class HybridConfig:
    """The rules' thresholds (and the CNN's and physical's configs), with their sources."""

    #: Cloud where the CNN's cloud probability reaches this (0.5: more likely cloud than not,
    #: its argmax whenever cloud leads). The probability layer lets users choose another.
    cloud_probability: float = 0.5
    #: Cells whose CNN cloud and shadow probabilities are both below this fit the clear line
    #: (the CNN is sure they are clear); measured: 8-46 % of a cloudy scene's cells, enough.
    clear_probability: float = 0.1
    #: ... and whose NDVI is above this: land (water and snow lie off the land's clear line,
    #: Zhang et al. 2002 fit it on clear land).
    clear_ndvi_min: float = 0.1
    #: Fewer clear cells than this share of the valid ones (an overcast scene) and the fixed
    #: line of Fmask (blue = 0.5 red + 0.08, Zhu & Woodcock 2012 eq. 3) is used instead.
    clear_share_min: float = 0.01
    #: A fitted slope outside this range is not a clear line (Zhang et al. 2002 report about
    #: 0.4-0.6 on TM; the shared scenes fit 0.46-0.69), so the fixed line is used.
    slope_range: tuple[float, float] = (0.25, 1.5)
    #: Share of the clear NIR below which a CNN shadow pixel is dark enough to be shadow, and
    #: the NIR it must be below (physical's shadow_nir_ratio and shadow_nir_max, which name
    #: their sources). Measured with 0.6: labelled scene shadow F1 0.841 -> 0.896, Layton
    #: 0.808 -> 0.838 and 0.788 -> 0.789 (0.7: 0.887, 0.834, 0.795; 0.8: 0.871, 0.828, 0.795).
    shadow_nir_ratio: float | None = None
    #: Outline refinement by linear unmixing (a mixed pixel is cloud when more than half of
    #: it is): a CNN cloud pixel whose probability is below `edge_probability_max` is clear
    #: where its mean visible reflectance is less than `edge_fraction` of the way from the
    #: clear ground to the cloud cores within `edge_radius` metres, and the cores are at least
    #: `edge_contrast_min` brighter than that ground (unmixing is ill-posed for thin cloud on
    #: bright ground, left to the CNN). Only where pixels are at least `edge_pixel_min` metres:
    #: at ~30 m the CNN's outline lies about a pixel outside the soft edge (labelled scene
    #: cloud F1 0.902 -> 0.924, 38-Cloud 0.951 -> 0.955, cover +2.8 -> +1.4 and +2.5 -> +1.7);
    #: at 10 m its outline (from 30 m cells) matches On Cloud N's generous labels, which the
    #: same rule would undercut (jaag 0.884 -> 0.849). docs/methods.md has the measurements.
    edge_pixel_min: float = 20.0
    edge_fraction: float = 0.5
    edge_probability_max: float = 0.9
    edge_radius: float = 150.0
    edge_contrast_min: float = 0.1
    physical: PhysicalConfig = field(default_factory=PhysicalConfig)
    #: The CNN with four test-time flips, within 3.3 million model cells: every shared scene
    #: gets its ~30 m grid and the flips; a full WPM scene (14198 x 14584 pixels) gets one run
    #: on 64 m cells, the price of staying within ten times the read time (docs/methods.md:
    #: 7.2-7.8x on a quiet machine; the mosaic of real chips 0.919 cloud F1, 0.908 on 80 m).
    csmask: CsmaskConfig = field(default_factory=lambda: CsmaskConfig(flips=4, max_cells=3_300_000))

    @property
    def shadow_ratio(self) -> float:
        """The shadow NIR ratio in use."""
        if self.shadow_nir_ratio is not None:
            return self.shadow_nir_ratio
        return self.physical.shadow_nir_ratio


@dataclass(frozen=True)
class ClearLine:
    """The scene's clear-sky line, blue = slope x red + intercept (Zhang et al. 2002)."""

    slope: float
    intercept: float
    #: False where the scene had too few clear cells and the fixed Fmask line is used.
    fitted: bool


#: Fmask's fixed clear line (HOT = blue - 0.5 red - 0.08, Zhu & Woodcock 2012 eq. 3).
FIXED_LINE: Final = ClearLine(0.5, 0.08, fitted=False)


def fit_clear_line(blue: F32, red: F32, clear: Mask, valid: Mask, c: HybridConfig) -> ClearLine:
    """Least-squares blue-on-red line of the `clear` cells, refitted three times without the
    cells more than 2.5 standard deviations off it; FIXED_LINE if too few or implausible."""
    x = red[clear].astype(np.float64)
    y = blue[clear].astype(np.float64)
    if x.size < max(3, c.clear_share_min * int(valid.sum())):
        return FIXED_LINE
    keep = np.ones(x.size, bool)
    slope, intercept = FIXED_LINE.slope, FIXED_LINE.intercept
    for _ in range(4):
        if keep.sum() < 3:
            return FIXED_LINE
        slope, intercept = np.polyfit(x[keep], y[keep], 1)
        residual = y - (slope * x + intercept)
        keep = np.abs(residual) <= 2.5 * max(float(residual[keep].std()), 1e-6)
    if not c.slope_range[0] <= slope <= c.slope_range[1]:
        return FIXED_LINE
    return ClearLine(float(slope), float(intercept), fitted=True)


@dataclass
class HybridGrid:
    """What the pixels are decided with, on the CNN's working grid."""

    cnn: CsmaskGrid
    line: ClearLine
    #: Cells of thick cloud (bright, flat, above the clear line), grown by a cell.
    thick: Mask
    #: Clear surroundings' NIR (physical's clear_background).
    background: F32
    #: Cells where a shadow may lie (everywhere without sun angles).
    shadow_allowed: Mask
    #: Mean visible reflectance under which an uncertain CNN cloud pixel of the cell is clear
    #: (the unmixing threshold; -inf where the outline is not refined).
    edge_threshold: F32


def _cell_tests(
    r: F32, line: ClearLine, p: PhysicalConfig
) -> tuple[Mask, Mask, NDArray[np.floating]]:
    """Thick-cloud, water and NDVI of the working cells' mean reflectance."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (r[0] + r[1] + r[2]) / 3.0
        white = (np.abs(r[0] - mean) + np.abs(r[1] - mean) + np.abs(r[2] - mean)) / mean
        ndvi = (r[3] - r[2]) / (r[3] + r[2])
        hot = r[0] - line.slope * r[2] - line.intercept
        thick = (mean > p.thick_brightness_min) & (white < p.whiteness_max)
        thick &= (ndvi < p.ndvi_max) & (hot > p.hot_min)
        water = ((ndvi < p.water_ndvi[0]) & (r[3] < p.water_nir[0])) | (
            (ndvi < p.water_ndvi[1]) & (r[3] < p.water_nir[1])
        )
    return thick, water, ndvi


def _drop_small(mask: Mask, cell_area: float, min_area: float) -> Mask:
    """`mask` without its objects smaller than `min_area` (m^2)."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
    keep = np.zeros(n + 1, bool)
    keep[1:] = sizes * cell_area >= min_area
    kept: Mask = keep[labels]
    return kept


def _shadow_allowed(
    cloud: Mask,
    valid: Mask,
    cell: float,
    pixel: PixelGeometry,
    sun: tuple[float, float] | None,
    c: PhysicalConfig,
) -> Mask:
    """Cells where a cloud's shadow can fall: away from the sun at the distances of cloud
    heights 200 m - 12 km within shadow_reach (also from beyond the scene's edge), grown by a
    cell; every cell when the sun angles are unknown."""
    if sun is None or sun[0] <= 0:
        return np.ones_like(cloud)
    direction = sun_direction(sun[1], pixel)
    tan_zenith = 1.0 / math.tan(math.radians(sun[0]))
    reach = c.shadow_reach / cell
    last = min(c.cloud_height_max * tan_zenith / cell, reach)
    first = min(c.cloud_height_min * tan_zenith / cell, last)
    pad = math.ceil(last) + 1
    outside = np.pad(~valid, pad, constant_values=True)
    beyond = shadow_zone(outside, direction, first, last)[pad:-pad, pad:-pad]
    zone = shadow_zone(cloud, direction, first, last) | beyond | cloud
    grown: Mask = ndimage.binary_dilation(zone, np.ones((3, 3), bool))
    return grown


def edge_thresholds(
    r: F32,
    p_cloud: F32,
    p_shadow: F32,
    valid: Mask,
    cell: float,
    pixel_size: float,
    c: HybridConfig,
) -> F32:
    """Per cell, the mean visible reflectance `edge_fraction` of the way from the clear ground
    to the cloud cores around it (HybridConfig's unmixing); -inf where it does not apply."""
    none = np.full(p_cloud.shape, -np.inf, np.float32)
    if pixel_size < c.edge_pixel_min:
        return none
    with np.errstate(invalid="ignore"):
        visible = np.nan_to_num((r[0] + r[1] + r[2]) / 3.0).astype(np.float64)
    size = max(3, 2 * round(c.edge_radius / cell) + 1)
    clear = valid & (p_cloud < c.clear_probability) & (p_shadow < c.cloud_probability)
    ground, ground_weight = masked_window_mean(visible, clear, size)
    core, core_weight = masked_window_mean(
        visible, valid & (p_cloud > c.edge_probability_max), size
    )
    usable = (ground_weight > 1e-9) & (core_weight > 1e-9) & (core - ground > c.edge_contrast_min)
    threshold = ground + c.edge_fraction * (core - ground)
    return np.where(usable, threshold, none).astype(np.float32)


def hybrid_grid(source: BandSource, c: HybridConfig) -> HybridGrid:
    """Block means onto the CNN's grid (a temporary memory map), the model, the clear line,
    the thick cells, the clear NIR and where shadows may fall."""
    info = source.info
    pixel = pixel_geometry(info)
    k, flips = working_plan(info.width, info.height, pixel.size, c.csmask)
    h, w = math.ceil(info.height / k), math.ceil(info.width / k)
    model = load_model(c.csmask.product_level, c.csmask.threads)
    with tempfile.TemporaryDirectory(prefix="stacmask-hybrid-") as scratch:
        means: F32 = np.lib.format.open_memmap(
            Path(scratch) / "working.npy", mode="w+", dtype=np.float32, shape=(4, h, w)
        )
        valid = block_means(source, k, means)
        cnn = predict_flipped(means, valid, model, c.csmask, factor=k, flips=flips)
        r = np.array(means)
        del means
    p_cloud, p_shadow = cnn.cloud.astype(np.float32), cnn.shadow.astype(np.float32)
    sure = valid & (p_cloud < c.clear_probability) & (p_shadow < c.clear_probability)
    _, water, ndvi = _cell_tests(r, FIXED_LINE, c.physical)
    line = fit_clear_line(r[0], r[2], sure & (ndvi > c.clear_ndvi_min), valid, c)
    thick, water, _ = _cell_tests(r, line, c.physical)
    cell = pixel.size * k
    thick = _drop_small(thick & valid, cell * cell, c.physical.min_cloud_area)
    thick = ndimage.binary_dilation(thick, np.ones((3, 3), bool)) & valid
    cloud = (p_cloud >= c.cloud_probability) | thick
    nir = np.nan_to_num(r[3])
    clear = valid & ~cloud & ~water & (p_shadow < c.cloud_probability)
    background = clear_background(nir, clear, cell, c.physical)
    sun = None
    if info.sun_elevation is not None and info.sun_azimuth is not None:
        sun = (info.sun_elevation, info.sun_azimuth)
    allowed = _shadow_allowed(cloud & valid, valid, cell, pixel, sun, c.physical)
    edges = edge_thresholds(r, p_cloud, p_shadow, valid, cell, pixel.size, c)
    return HybridGrid(cnn, line, thick, background, allowed, edges)


@numba.njit(nogil=True, cache=True)
def _axis(n: int, start: int, k: int, cells: int) -> tuple[Any, Any, Any, Any]:
    """For `n` pixels from `start`: the nearest cell, the two cells bilinear interpolation
    weighs (pixel centres against cell centres, clamped at the grid's ends) and the weight of
    the second."""
    near = np.empty(n, np.int64)
    low = np.empty(n, np.int64)
    high = np.empty(n, np.int64)
    weight = np.empty(n, np.float32)
    for i in range(n):
        u = (start + i + 0.5) / k - 0.5
        near[i] = min((start + i) // k, cells - 1)
        lo = math.floor(u)
        f = u - lo
        if lo < 0:
            lo, f = 0, 0.0
        if lo >= cells - 1:
            lo, f = cells - 1, 0.0
        low[i], high[i], weight[i] = lo, min(lo + 1, cells - 1), f
    return near, low, high, weight


@numba.njit(nogil=True, cache=True, inline="always")
def _bilinear(g: Any, r0: int, r1: int, fr: float, c0: int, c1: int, fc: float) -> float:
    top = g[r0, c0] * (1.0 - fc) + g[r0, c1] * fc
    bottom = g[r1, c0] * (1.0 - fc) + g[r1, c1] * fc
    return float(top * (1.0 - fr) + bottom * fr)


@numba.njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _compose(
    r: Any,
    row0: int,
    col0: int,
    k: int,
    p_cloud: Any,
    p_shadow: Any,
    thick: Any,
    background: Any,
    allowed: Any,
    edge: Any,
    t: Any,
) -> Any:
    """Class codes of a (4, h, w) reflectance strip from the grid's cells (thresholds `t` in
    `_thresholds`' order)."""
    rows, cols = r.shape[1], r.shape[2]
    out = np.empty((rows, cols), np.uint8)
    rn, rl, rh, rw = _axis(rows, row0, k, p_cloud.shape[0])
    cn, cl, ch, cw = _axis(cols, col0, k, p_cloud.shape[1])
    for i in numba.prange(rows):
        for j in range(cols):
            b, g, red, nir = r[0, i, j], r[1, i, j], r[2, i, j], r[3, i, j]
            if b != b or g != g or red != red or nir != nir:
                out[i, j] = NODATA
                continue
            pc = _bilinear(p_cloud, rl[i], rh[i], rw[i], cl[j], ch[j], cw[j])
            ps = _bilinear(p_shadow, rl[i], rh[i], rw[i], cl[j], ch[j], cw[j])
            gi, gj = rn[i], cn[j]
            mean = (b + g + red) / 3.0
            white = (abs(b - mean) + abs(g - mean) + abs(red - mean)) / mean
            ndvi = (nir - red) / (nir + red)
            hot = b - t[0] * red - t[1]
            thick_pixel = mean > t[3] and white < t[4] and ndvi < t[5] and hot > t[2]
            water = (ndvi < t[8] and nir < t[9]) or (ndvi < t[10] and nir < t[11])
            cnn_cloud = pc >= t[6] and not (pc < t[14] and mean < edge[gi, gj])  # soft edge
            if cnn_cloud or (thick[gi, gj] and thick_pixel):
                out[i, j] = CLOUD
            elif (
                ps > pc
                and ps > 1.0 - pc - ps
                and allowed[gi, gj]
                and nir < t[7] * background[gi, gj]
                and nir < t[12]
                and not (water and nir < t[13])
            ):
                out[i, j] = SHADOW
            elif water:
                out[i, j] = WATER
            else:
                out[i, j] = CLEAR
    return out


def _thresholds(line: ClearLine, c: HybridConfig) -> NDArray[np.float64]:
    """The thresholds `_compose` takes, in its order."""
    p = c.physical
    return np.array(
        [
            line.slope,
            line.intercept,
            p.hot_min,
            p.thick_brightness_min,
            p.whiteness_max,
            p.ndvi_max,
            c.cloud_probability,
            c.shadow_ratio,
            p.water_ndvi[0],
            p.water_nir[0],
            p.water_ndvi[1],
            p.water_nir[1],
            p.shadow_nir_max,
            p.shadow_water_nir_max,
            c.edge_probability_max,
        ],
        dtype=np.float64,
    )


class HybridMethod(MethodDefaults):
    """The CNN's cloud and shadow, each pixel checked by physics (default; needs the CNN)."""

    name = METHOD_NAME
    reads_bands_once = False
    layers: tuple[LayerSpec, ...] = (PROBABILITY_LAYER,)
    #: Per-pixel layers besides the classes, each given by `layer(name, window)`.
    optional_layers: tuple[str, ...] = (CLOUD_PROBABILITY,)

    def __init__(self, config: HybridConfig | None = None) -> None:
        self.config = config or HybridConfig()
        self.grid: HybridGrid | None = None

    def classify(self, source: BandSource) -> Iterator[MaskStrip]:
        """Class codes of every strip (and the cloud probability layer): block means and the
        model, then a pass per pixel."""
        grid = hybrid_grid(source, self.config)
        self.grid = grid
        cnn = grid.cnn
        p_cloud = cnn.cloud.astype(np.float32)
        p_shadow = cnn.shadow.astype(np.float32)
        t = _thresholds(grid.line, self.config)
        for window in source.strips():
            r = np.ascontiguousarray(source.read_reflectance(window), dtype=np.float32)
            yield MaskStrip(
                window,
                _compose(
                    r,
                    int(window.row_off),
                    int(window.col_off),
                    cnn.factor,
                    p_cloud,
                    p_shadow,
                    grid.thick,
                    grid.background,
                    grid.shadow_allowed,
                    grid.edge_threshold,
                    t,
                ),
                {CLOUD_PROBABILITY: probability_percent(cnn, window)},
            )

    def layer(self, name: str, window: Window) -> NDArray[np.uint8]:
        """An optional layer of a window once `classify` has begun: CLOUD_PROBABILITY, the CNN's
        cloud probability per pixel (bilinear between its cells) in percent, 255 in cells with
        no data."""
        if name != CLOUD_PROBABILITY:
            raise ValueError(f"unknown layer {name!r}; layers: {', '.join(self.optional_layers)}")
        if self.grid is None:
            raise RuntimeError("classify() must run before its layers")
        return probability_percent(self.grid.cnn, window)


def probability_percent(cnn: CsmaskGrid, window: Window) -> NDArray[np.uint8]:
    """The CNN's cloud probability in percent over `window` (bilinear, 255 where no data)."""
    percent: NDArray[np.uint8] = _percent(
        int(window.row_off),
        int(window.col_off),
        int(window.height),
        int(window.width),
        cnn.factor,
        cnn.cloud.astype(np.float32),
        cnn.classes == NODATA,
    )
    return percent


@numba.njit(parallel=True, nogil=True, cache=True)
def _percent(row0: int, col0: int, rows: int, cols: int, k: int, p: Any, empty: Any) -> Any:
    out = np.empty((rows, cols), np.uint8)
    rn, rl, rh, rw = _axis(rows, row0, k, p.shape[0])
    cn, cl, ch, cw = _axis(cols, col0, k, p.shape[1])
    for i in numba.prange(rows):
        for j in range(cols):
            if empty[rn[i], cn[j]]:
                out[i, j] = NODATA
            else:
                v = _bilinear(p, rl[i], rh[i], rw[i], cl[j], ch[j], cw[j])
                out[i, j] = np.uint8(min(100.0, max(0.0, round(100.0 * v))))
    return out
