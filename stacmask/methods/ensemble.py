"""The physical method and ukis-csmask's CNN combined by simple votes (needs stacmask[csmask]).

Each method's strength, as measured on the labelled Sentinel-2 scene, the real Landsat-8 clip
and the synthetic WPM sweep (docs/methods.md):
- physical: absolute spectral tests (cover tracks the sky on synthetic scenes, its clouds lie in
  the Landsat-8 BQA cloud), but it over-reaches by a pixel at cloud edges and calls dark ground
  near clouds shadow (on the labelled scene 95 % of the shadow it alone finds is not shadow);
- csmask: spatial context (it rarely calls a dark field shadow), but it calls hazy cloud fields
  cloud wholesale (71 % of the Landsat-8 clip against 6-15 % in its BQA) and misses synthetic
  clouds (it was trained on real images).

Rules, per pixel (csmask's values are those of the pixel's ~30 m working cell):
1. cloud where both say cloud (physical cloud and csmask cloud probability >= 0.5), or where
   physical says cloud and the pixel is thick cloud (mean visible reflectance >= physical's
   thick_brightness_min, 0.3: MFC's T1, Li et al. 2017), or where csmask says cloud and the
   pixel passes physical's own per-pixel cloud tests (HOT, whiteness, brightness, NDVI);
2. cloud shadow: physical's shadow (its geometry), on the objects csmask gives any support
   (a shadow probability >= 0.1 somewhere in the object, objects on csmask's grid);
3. water and no data from physical; a pixel physical called cloud or shadow that rules 1-2
   drop is clear (water if it passes the Fmask water test).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window
from scipy import ndimage

from stacmask.constants import CLEAR, CLOUD, CSMASK_CLOUD, NODATA, SHADOW, WATER
from stacmask.methods import MethodDefaults
from stacmask.methods.csmask import CsmaskConfig, CsmaskGrid, cells_of, csmask_grid
from stacmask.methods.physical import (
    POTENTIAL_CLOUD,
    WATER_TEST,
    PhysicalConfig,
    PhysicalMethod,
    pixel_tests,
)
from stacmask.reading.band_source import BandSource

METHOD_NAME: Final = "ensemble"


@dataclass(frozen=True)
class EnsembleConfig:
    """The votes' thresholds (and the two methods' own configs), with their sources."""

    #: csmask says cloud from this cloud probability: above 0.5 cloud is csmask's most likely
    #: class whatever the other two (its argmax). Labelled scene: cloud F1 0.905 -> 0.914.
    cloud_probability: float = 0.5
    #: Physical cloud needs no csmask vote where mean visible reflectance reaches this; None:
    #: physical's thick_brightness_min (0.3, MFC's T1 for thick cloud, Li et al. 2017). On the
    #: synthetic sweep csmask misses most clouds: with this rule they are kept (cloud F1 >= 0.97).
    thick_brightness_min: float | None = None
    #: A physical shadow object is kept where csmask's shadow probability reaches this in any of
    #: its cells. Low on purpose: a veto only of objects csmask rules out (labelled scene: shadow
    #: F1 0.872 -> 0.880; 0.5 gives 0.885 there but loses 0.06-0.10 on synthetic scenes).
    shadow_support: float = 0.1
    physical: PhysicalConfig = field(default_factory=PhysicalConfig)
    csmask: CsmaskConfig = field(default_factory=CsmaskConfig)

    @property
    def thick(self) -> float:
        """The thick-cloud brightness in use."""
        if self.thick_brightness_min is not None:
            return self.thick_brightness_min
        return self.physical.thick_brightness_min


def supported_shadow(
    shadow_cells: NDArray[np.bool_], shadow_probability: NDArray[np.floating], support: float
) -> NDArray[np.bool_]:
    """Cells of the shadow objects (connected cells of `shadow_cells`) in which csmask's shadow
    probability reaches `support` somewhere."""
    labels, n = ndimage.label(shadow_cells)
    if n == 0:
        return np.zeros_like(shadow_cells)
    peak = ndimage.maximum(shadow_probability.astype(np.float32), labels, index=np.arange(1, n + 1))
    keep = np.zeros(n + 1, np.bool_)
    keep[1:] = np.asarray(peak) >= support
    kept: NDArray[np.bool_] = keep[labels]
    return kept


def combine(
    physical: NDArray[np.uint8],
    flags: NDArray[np.uint8],
    brightness: NDArray[np.float32],
    cloud_probability: NDArray[np.floating],
    csmask_classes: NDArray[np.uint8],
    shadow_kept: NDArray[np.bool_],
    config: EnsembleConfig,
) -> NDArray[np.uint8]:
    """Class codes of a strip from physical's codes and per-pixel tests and csmask's cells."""
    was_cloud = physical == CLOUD
    cloud = (was_cloud & (cloud_probability >= config.cloud_probability)) | (
        was_cloud & (brightness >= config.thick)
    )
    cloud |= (csmask_classes == CSMASK_CLOUD) & ((flags & POTENTIAL_CLOUD) > 0)
    cloud &= physical != NODATA
    dropped = (was_cloud & ~cloud) | ((physical == SHADOW) & ~shadow_kept)
    out = physical.copy()
    out[dropped] = np.where((flags[dropped] & WATER_TEST) > 0, WATER, CLEAR).astype(np.uint8)
    out[cloud] = CLOUD
    return out


class EnsembleMethod(MethodDefaults):
    """Physical and csmask voting on cloud; physical's shadow geometry checked by csmask."""

    name = METHOD_NAME
    reads_bands_once = False

    def __init__(self, config: EnsembleConfig | None = None) -> None:
        self.config = config or EnsembleConfig()
        self.grid: CsmaskGrid | None = None

    def classify(self, source: BandSource) -> Iterator[tuple[Window, NDArray[np.uint8]]]:
        """Class codes of every strip: csmask's pass, physical's two passes (its codes kept in
        a temporary memory-mapped file), then one pass that votes."""
        c = self.config
        info = source.info
        grid = csmask_grid(source, c.csmask)
        self.grid = grid
        k = grid.factor
        shadow_cells = np.zeros(grid.classes.shape, np.bool_)
        with tempfile.TemporaryDirectory(prefix="stacmask-ensemble-") as scratch:
            codes: NDArray[np.uint8] = np.lib.format.open_memmap(
                Path(scratch) / "physical.npy",
                mode="w+",
                dtype=np.uint8,
                shape=(info.height, info.width),
            )
            for window, strip in PhysicalMethod(c.physical).classify(source):
                top = int(window.row_off)
                codes[top : top + strip.shape[0]] = strip
                rows, cols = np.nonzero(strip == SHADOW)
                shadow_cells[(rows + top) // k, cols // k] = True
            kept = supported_shadow(shadow_cells, grid.shadow, c.shadow_support)
            for window in source.strips():
                top, height = int(window.row_off), int(window.height)
                r = source.read_reflectance(window)
                with np.errstate(invalid="ignore"):
                    brightness = ((r[0] + r[1] + r[2]) / np.float32(3.0)).astype(np.float32)
                yield (
                    window,
                    combine(
                        np.asarray(codes[top : top + height]),
                        pixel_tests(r, c.physical),
                        brightness,
                        cells_of(grid.cloud, window, k),
                        cells_of(grid.classes, window, k),
                        cells_of(kept, window, k),
                        c,
                    ),
                )
            del codes
