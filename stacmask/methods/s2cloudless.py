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

from stacmask.constants import (
    NODATA,
    PROBABILITY_ASSET,
    PROBABILITY_NODATA,
    PROP_PROBABILITY_THRESHOLD,
    S2CLOUDLESS_BANDS,
)
from stacmask.errors import DecodeError, MethodUnavailable
from stacmask.methods import LayerSpec, MaskStrip, MethodDefaults
from stacmask.reading.band_source import BandSource

if TYPE_CHECKING:
    from s2cloudless.cloud_detector import S2PixelCloudDetector

    from stacmask.methods.fmask import FmaskEncoding

METHOD_NAME: Final = "s2cloudless"
#: Pixels per LightGBM call: bounds the float64 copy LightGBM makes of its input (~20 MB).
CHUNK_PIXELS: Final = 1 << 18
#: Name of the optional Fmask band of a scene (`--fmask-asset`) that the method fuses.
FMASK_BAND: Final = "fmask"
#: The optional layer: the cloud probability before averaging and dilation.
PROBABILITY_LAYER: Final = LayerSpec(
    name=PROBABILITY_ASSET,
    title="s2cloudless cloud probability",
    description="uint8 percent 0-100 (before averaging and dilation); 255 no data",
    roles=("data", "cloud"),
    unit="percent",
)


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


class S2CloudlessMethod(MethodDefaults):
    """s2cloudless on the ten L1C bands, fused with the scene's Fmask band when it has one.

    The probability is computed strip by strip; the disk averaging and dilation then run over
    the whole working grid (a 60 m tile is 1830 x 1830 float32, 13 MB). Each strip comes with
    its probability as the optional layer `cloud_probability` (uint8 percent, 255 no data).
    """

    name = METHOD_NAME
    reads_bands_once = False
    bands: tuple[str, ...] = S2CLOUDLESS_BANDS
    layers: tuple[LayerSpec, ...] = (PROBABILITY_LAYER,)

    def __init__(
        self,
        config: S2CloudlessConfig | None = None,
        *,
        fmask_encoding: str = "categorical",
        fmask_adjacent_as_cloud: bool = False,
    ) -> None:
        from stacmask.methods.fmask import FMASK_ENCODINGS

        if fmask_encoding not in FMASK_ENCODINGS:
            raise DecodeError(
                f"unknown Fmask encoding {fmask_encoding!r}; use one of {FMASK_ENCODINGS}"
            )
        self.config = config or S2CloudlessConfig()
        self.fmask_encoding: FmaskEncoding = fmask_encoding  # type: ignore[assignment]
        self.fmask_adjacent_as_cloud = fmask_adjacent_as_cloud

    def describe(self) -> str:
        """The method and its threshold, averaging and dilation."""
        c = self.config
        return (
            f"s2cloudless method (threshold {c.threshold}, average over {c.average_over} px, "
            f"dilation {c.dilation_size} px)"
        )

    def item_properties(self) -> dict[str, Any]:
        """The probability threshold."""
        return {PROP_PROBABILITY_THRESHOLD: self.config.threshold}

    def _fmask(self, source: BandSource, strips: list[Window]) -> NDArray[np.uint8] | None:
        """The scene's Fmask band decoded to class codes on the whole grid, or None without one.

        Pixels outside the Fmask raster, or equal to its nodata, are NODATA.
        """
        if FMASK_BAND not in source.band_names:
            return None
        from stacmask.methods.fmask import decode_fmask

        info = source.info
        classes = np.empty((info.height, info.width), np.uint8)
        for window in strips:
            rows = slice(int(window.row_off), int(window.row_off + window.height))
            values, valid = source.read_values(FMASK_BAND, window)
            decoded = decode_fmask(
                np.where(valid, values, 0),
                self.fmask_encoding,
                adjacent_as_cloud=self.fmask_adjacent_as_cloud,
            )
            decoded[~valid] = NODATA
            classes[rows] = decoded
        return classes

    def classify(self, source: BandSource) -> Iterator[MaskStrip]:
        """Yield each strip's class codes and cloud probability, top to bottom."""
        from stacmask.methods.fmask import fuse

        info = source.info
        probability = np.full((info.height, info.width), np.nan, dtype=np.float32)
        valid = np.zeros((info.height, info.width), dtype=np.bool_)
        strips = list(source.strips())
        for window in strips:
            rows = slice(int(window.row_off), int(window.row_off + window.height))
            bands = source.read_bands(self.bands, window)
            ok: NDArray[np.bool_] = np.logical_not(np.isnan(bands).any(axis=0))
            valid[rows] = ok
            probability[rows] = cloud_probability(bands, ok)
        fmask = self._fmask(source, strips)
        classes = fuse(valid, fmask=fmask, cloud=cloud_mask(probability, self.config))
        for window in strips:
            rows = slice(int(window.row_off), int(window.row_off + window.height))
            layer = probability_percent(probability[rows])
            yield MaskStrip(window, classes[rows], {PROBABILITY_LAYER.name: layer})
