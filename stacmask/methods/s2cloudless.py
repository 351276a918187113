"""Sentinel-2 L1C cloud probability and cloud mask with s2cloudless (Sentinel Hub's LightGBM model).

The model ships inside the `s2cloudless` package (optional extra ``stacmask[sentinel2]``) and
runs offline on the CPU. Inputs are TOA reflectances of the ten bands S2CLOUDLESS_BANDS (B01,
B02, B04, B05, B08, B8A, B09, B10, B11, B12) on one common grid, band first: (10, h, w).
The probability is per pixel, so a caller may pass any strip; the mask step (disk averaging,
threshold, disk dilation, as S2PixelCloudDetector.get_mask_from_prob) needs the whole raster
or a strip with a margin of average_over + dilation_size pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from stacmask.constants import PROBABILITY_NODATA, S2CLOUDLESS_BANDS
from stacmask.errors import DecodeError, MethodUnavailable

if TYPE_CHECKING:
    from s2cloudless.cloud_detector import S2PixelCloudDetector

METHOD_NAME: Final = "s2cloudless"
#: Pixels per LightGBM call: bounds the float64 copy LightGBM makes of its input (~20 MB).
CHUNK_PIXELS: Final = 1 << 18


@dataclass(frozen=True)
class S2CloudlessConfig:
    """Thresholds and post-processing of s2cloudless; sizes are pixels of the working grid."""

    #: Cloud when the (averaged) probability exceeds this; 0.4 is s2cloudless's default.
    threshold: float = 0.4
    #: Radius of the disk the probability is averaged over before the threshold; None: none.
    #: 4 and 2 are the values of the s2cloudless examples and Sentinel Hub's precomputed masks.
    average_over: int | None = 4
    #: Radius of the disk the binary mask is dilated with; None: no dilation.
    dilation_size: int | None = 2
    #: Working grid in metres: every band is resampled to it and the mask is written on it.
    #: 60 m is the coarsest native grid (B01, B09, B10). LightGBM cost 7-15 s per million
    #: pixels on this 2-core machine: ~25-50 s per 60 m tile, ~4-8 min per 20 m tile.
    resolution: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise DecodeError(f"s2cloudless threshold must be within 0..1, got {self.threshold}")
        for name in ("average_over", "dilation_size"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise DecodeError(f"s2cloudless {name} must be >= 0 or None, got {value}")
        if self.resolution <= 0:
            raise DecodeError(f"s2cloudless resolution must be > 0 m, got {self.resolution}")


@lru_cache(maxsize=4)
def _detector(average_over: int | None, dilation_size: int | None) -> S2PixelCloudDetector:
    try:
        from s2cloudless.cloud_detector import S2PixelCloudDetector
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MethodUnavailable(
            "the s2cloudless method needs the s2cloudless package: "
            "pip install 'stacmask[sentinel2]'"
        ) from exc
    return S2PixelCloudDetector(
        all_bands=False, average_over=average_over, dilation_size=dilation_size
    )


def _check_bands(reflectance: NDArray[np.floating]) -> None:
    if reflectance.ndim != 3 or reflectance.shape[0] != len(S2CLOUDLESS_BANDS):
        raise DecodeError(
            f"s2cloudless needs reflectance of shape ({len(S2CLOUDLESS_BANDS)}, h, w) in band "
            f"order {', '.join(S2CLOUDLESS_BANDS)}; got shape {reflectance.shape}"
        )
    if not np.issubdtype(reflectance.dtype, np.floating):
        raise DecodeError(
            f"s2cloudless needs TOA reflectance as floats (DN / 10000), got {reflectance.dtype}"
        )


def cloud_probability(
    reflectance: NDArray[np.floating], valid: NDArray[np.bool_] | None = None
) -> NDArray[np.float32]:
    """Cloud probability 0-1 per pixel, shape (h, w); NaN outside `valid`.

    `reflectance` is (10, h, w) TOA reflectance in S2CLOUDLESS_BANDS order. Without `valid`,
    pixels where any band is NaN are invalid.
    """
    _check_bands(reflectance)
    _, height, width = reflectance.shape
    if valid is None:
        valid = ~np.isnan(reflectance).any(axis=0)
    elif valid.shape != (height, width):
        raise DecodeError(f"valid mask shape {valid.shape} differs from bands {(height, width)}")
    detector = _detector(None, None)
    pixels = reflectance.reshape(len(S2CLOUDLESS_BANDS), -1)
    flat_valid = valid.ravel()
    out = np.full(height * width, np.nan, dtype=np.float32)
    index = np.flatnonzero(flat_valid)
    for start in range(0, index.size, CHUNK_PIXELS):
        chunk = index[start : start + CHUNK_PIXELS]
        features = pixels[:, chunk].T.astype(np.float32)[np.newaxis, np.newaxis]
        out[chunk] = detector.get_cloud_probability_maps(features)[0, 0]
    return out.reshape(height, width)


def cloud_mask(
    probability: NDArray[np.floating], config: S2CloudlessConfig | None = None
) -> NDArray[np.bool_]:
    """s2cloudless's binary mask: disk average, `threshold`, disk dilation.

    NaN (no data) counts as probability 0, as s2cloudless's own CloudMaskRequest does.
    """
    config = config or S2CloudlessConfig()
    if probability.ndim != 2:
        raise DecodeError(f"probability must be 2-D, got shape {probability.shape}")
    filled = np.nan_to_num(probability.astype(np.float32), nan=0.0)
    average, dilation = config.average_over or None, config.dilation_size or None
    if average is None and dilation is not None:
        # s2cloudless 1.7.3 makes an int8 mask on this path, which OpenCV 5 cannot dilate
        # ("Unsupported data type" in getMorphologyFilter): dilate a uint8 mask the same way.
        import cv2
        from s2cloudless.utils import cv2_disk

        binary = (filled > config.threshold).astype(np.uint8)
        return np.asarray(cv2.dilate(binary, cv2_disk(dilation)), dtype=np.bool_)
    detector = _detector(average, dilation)
    mask = detector.get_mask_from_prob(filled[np.newaxis], threshold=config.threshold)
    return np.asarray(mask[0], dtype=np.bool_)


def probability_percent(probability: NDArray[np.floating]) -> NDArray[np.uint8]:
    """Probability as uint8 percent 0-100 (rounded), PROBABILITY_NODATA where NaN."""
    out = np.full(probability.shape, PROBABILITY_NODATA, dtype=np.uint8)
    ok = ~np.isnan(probability)
    out[ok] = np.clip(np.rint(probability[ok] * 100.0), 0, 100).astype(np.uint8)
    return out


@dataclass(frozen=True)
class S2CloudlessResult:
    """Class raster (uint8 codes) and the cloud probability (0-1, NaN = no data) it came from."""

    classes: NDArray[np.uint8]
    probability: NDArray[np.float32]


def classify(
    reflectance: NDArray[np.floating],
    valid: NDArray[np.bool_] | None = None,
    config: S2CloudlessConfig | None = None,
    *,
    fmask: NDArray[np.uint8] | None = None,
    shadow: NDArray[np.bool_] | None = None,
) -> S2CloudlessResult:
    """s2cloudless on a whole raster, fused with an optional Fmask result and shadow mask.

    cloud = s2cloudless mask (averaged probability > threshold, dilated) OR Fmask cloud;
    shadow = Fmask shadow OR `shadow`; snow and water from Fmask (fmask.fuse). `fmask` holds
    decoded class codes (fmask.decode_fmask) on the same grid.
    """
    from stacmask.methods.fmask import fuse

    config = config or S2CloudlessConfig()
    probability = cloud_probability(reflectance, valid)
    ok = ~np.isnan(probability) if valid is None else valid
    classes = fuse(ok, fmask=fmask, cloud=cloud_mask(probability, config), shadow=shadow)
    return S2CloudlessResult(classes=classes, probability=probability)


class S2CloudlessMethod:
    """MaskMethod over a Sentinel2Source: s2cloudless, fused with the scene's Fmask if given.

    The probability is computed strip by strip; the disk averaging and dilation then run over
    the whole working grid (a 60 m tile is 1830 x 1830 float32, 13 MB). After `classify`,
    `probability` holds the 0-1 probability (NaN = no data) for the optional second asset.
    """

    name = METHOD_NAME
    reads_bands_once = False

    def __init__(self, config: S2CloudlessConfig | None = None) -> None:
        self.config = config or S2CloudlessConfig()
        self.probability: NDArray[np.float32] | None = None
        self.fused_fmask = False

    def classify(self, source: Any) -> Iterator[tuple[Window, NDArray[np.uint8]]]:
        """Yield (strip, class codes) top to bottom."""
        from stacmask.methods.fmask import fuse
        from stacmask.reading.warped import Sentinel2Source

        if not isinstance(source, Sentinel2Source):
            raise DecodeError(
                "the s2cloudless method needs a Sentinel-2 L1C scene (profile sentinel2-l1c)"
            )
        info = source.info
        probability = np.full((info.height, info.width), np.nan, dtype=np.float32)
        valid = np.zeros((info.height, info.width), dtype=np.bool_)
        strips = list(source.strips())
        for window in strips:
            rows = slice(int(window.row_off), int(window.row_off + window.height))
            bands = source.read_model_bands(window)
            ok: NDArray[np.bool_] = np.logical_not(np.isnan(bands).any(axis=0))
            valid[rows] = ok
            probability[rows] = cloud_probability(bands, ok)
        fmask = source.read_fmask()
        self.fused_fmask = fmask is not None
        classes = fuse(valid, fmask=fmask, cloud=cloud_mask(probability, self.config))
        self.probability = probability
        for window in strips:
            rows = slice(int(window.row_off), int(window.row_off + window.height))
            yield window, classes[rows]
