"""Fmask results to stacmask classes, and their union with a cloud probability.

Numpy in, numpy out. Supported encodings of a per-scene Fmask result (FMASK_ENCODINGS):

``categorical`` -- Fmask 4.x and CFMask, the convention stacmask itself uses:
    0 clear land, 1 water, 2 cloud shadow, 3 snow, 4 cloud, 255 fill. Other values are an error.
``python-fmask`` -- python-fmask (fmask.fmask.OUTCODE_*):
    0 null, 1 clear, 2 cloud, 3 cloud shadow, 4 snow, 5 water. Other values are an error.
``hls`` -- the bit-packed ``Fmask`` layer of HLS v2.0 (L30 and S30), uint8, 255 fill:
    bit 0 cirrus (reserved, not used), 1 cloud, 2 adjacent to cloud/shadow, 3 cloud shadow,
    4 snow/ice, 5 water, 6-7 aerosol level (ignored).
``force`` -- the bit-packed QAI layer of FORCE (its Fmask-derived cloud state), int16:
    bit 0 no data, 1-2 cloud state (0 clear, 1 less confident cloud = 300 m buffer,
    2 confident opaque cloud, 3 cirrus), 3 cloud shadow, 4 snow, 5 water, 6-15 ignored.

For ``hls`` and ``force`` the "adjacent" / "less confident" buffer counts as cloud only with
``adjacent_as_cloud=True``. Decoded rasters are composed in CLASS_PRIORITY order (shadow,
cloud, snow, water, clear), so e.g. an HLS pixel flagged both cloud and shadow is shadow.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from stacmask.constants import CLEAR, CLOUD, NODATA, SHADOW, SNOW, WATER
from stacmask.errors import DecodeError
from stacmask.methods.classes import compose_classes

FmaskEncoding = Literal["categorical", "python-fmask", "hls", "force"]
FMASK_ENCODINGS: Final[tuple[str, ...]] = get_args(FmaskEncoding)

#: python-fmask output codes (fmask.fmask OUTCODE_NULL..OUTCODE_WATER) to stacmask codes.
PYTHON_FMASK_CODES: Final = {0: NODATA, 1: CLEAR, 2: CLOUD, 3: SHADOW, 4: SNOW, 5: WATER}
HLS_FILL: Final = 255
HLS_CLOUD, HLS_ADJACENT, HLS_SHADOW, HLS_SNOW, HLS_WATER = 1, 2, 3, 4, 5
FORCE_NODATA, FORCE_CLOUD_STATE, FORCE_SHADOW, FORCE_SNOW, FORCE_WATER = 0, 1, 3, 4, 5
FORCE_LESS_CONFIDENT, FORCE_CONFIDENT, FORCE_CIRRUS = 1, 2, 3


def _check_integer_2d(array: NDArray[np.generic], what: str) -> None:
    if not np.issubdtype(array.dtype, np.integer):
        raise DecodeError(f"{what} must hold integers, got {array.dtype}")
    if array.ndim != 2:
        raise DecodeError(f"{what} must be one 2-D band, got shape {array.shape}")


def _lookup(fmask: NDArray[np.integer], table: dict[int, int], encoding: str) -> NDArray[np.uint8]:
    values = np.unique(fmask)
    unknown = sorted(set(values.tolist()) - set(table))
    if unknown:
        raise DecodeError(
            f"{encoding} Fmask holds values {unknown[:10]} outside its table {sorted(table)}"
        )
    lut = np.full(256, NODATA, dtype=np.uint8)
    for value, code in table.items():
        lut[value] = code
    return lut[fmask.astype(np.intp)]


def _bit(array: NDArray[np.int64], bit: int) -> NDArray[np.bool_]:
    return ((array >> bit) & 1).astype(np.bool_)


def decode_fmask(
    fmask: NDArray[np.integer],
    encoding: FmaskEncoding = "categorical",
    *,
    adjacent_as_cloud: bool = False,
) -> NDArray[np.uint8]:
    """An Fmask result in `encoding` (module docstring) to stacmask class codes."""
    _check_integer_2d(fmask, f"{encoding} Fmask")
    if encoding == "categorical":
        identity = {code: code for code in (CLEAR, WATER, SHADOW, SNOW, CLOUD, NODATA)}
        return _lookup(fmask, identity, encoding)
    if encoding == "python-fmask":
        return _lookup(fmask, PYTHON_FMASK_CODES, encoding)
    bits = fmask.astype(np.int64)
    if encoding == "hls":
        if bits.size and (bits.min() < 0 or bits.max() > 255):
            raise DecodeError(f"hls Fmask is uint8, got values {bits.min()}..{bits.max()}")
        cloud = _bit(bits, HLS_CLOUD)
        if adjacent_as_cloud:
            cloud |= _bit(bits, HLS_ADJACENT)
        return compose_classes(
            bits != HLS_FILL,
            cloud=cloud,
            shadow=_bit(bits, HLS_SHADOW),
            snow=_bit(bits, HLS_SNOW),
            water=_bit(bits, HLS_WATER),
        )
    if encoding == "force":
        state = (bits >> FORCE_CLOUD_STATE) & 0b11
        cloud = (state == FORCE_CONFIDENT) | (state == FORCE_CIRRUS)
        if adjacent_as_cloud:
            cloud |= state == FORCE_LESS_CONFIDENT
        return compose_classes(
            ~_bit(bits, FORCE_NODATA),
            cloud=cloud,
            shadow=_bit(bits, FORCE_SHADOW),
            snow=_bit(bits, FORCE_SNOW),
            water=_bit(bits, FORCE_WATER),
        )
    raise DecodeError(f"unknown Fmask encoding {encoding!r}; use one of {FMASK_ENCODINGS}")


def fuse(
    valid: NDArray[np.bool_] | None = None,
    *,
    fmask: NDArray[np.uint8] | None = None,
    probability: NDArray[np.floating] | None = None,
    threshold: float = 0.4,
    cloud: NDArray[np.bool_] | None = None,
    shadow: NDArray[np.bool_] | None = None,
) -> NDArray[np.uint8]:
    """Union of detectors as one class raster.

    cloud  = (probability > threshold) OR `cloud` OR Fmask cloud
    shadow = Fmask shadow OR `shadow` (e.g. a geometric shadow projection)
    snow, water from Fmask; NODATA outside `valid` and where Fmask is fill.

    `fmask` holds decoded class codes (decode_fmask); `probability` is 0-1 (NaN never cloud);
    `cloud` is a detector's own binary mask, e.g. s2cloudless's after averaging and dilation.
    """
    layers = [a for a in (valid, fmask, probability, cloud, shadow) if a is not None]
    if fmask is None and probability is None and cloud is None:
        raise DecodeError("fuse needs at least one of fmask, probability or cloud")
    shape = layers[0].shape
    for layer in layers:
        if layer.shape != shape:
            raise DecodeError(f"fuse inputs differ in shape: {[a.shape for a in layers]}")
    if not 0.0 <= threshold <= 1.0:
        raise DecodeError(f"probability threshold must be within 0..1, got {threshold}")
    ok = np.ones(shape, dtype=np.bool_) if valid is None else valid.copy()
    clouds = np.zeros(shape, dtype=np.bool_) if cloud is None else cloud.copy()
    shadows = np.zeros(shape, dtype=np.bool_) if shadow is None else shadow.copy()
    if probability is not None:
        with np.errstate(invalid="ignore"):
            clouds |= probability > threshold
    snow = water = None
    if fmask is not None:
        ok &= fmask != NODATA
        clouds |= fmask == CLOUD
        shadows |= fmask == SHADOW
        snow = fmask == SNOW
        water = fmask == WATER
    return compose_classes(ok, cloud=clouds, shadow=shadows, snow=snow, water=water)
