"""Compiled per-pixel kernels of the notebook method (numba), one fused loop per pass.

Each kernel evaluates the notebook's normalization and indices pixel by pixel with the same
float64 operations, in the same order, as the numpy expressions of notebook-method.md, so the
values are identical; it only avoids numpy's temporaries and uses both cores. Quantities, in
order: 0 NDVI, 1 WI, 2 HOT, 3 CI, 4 NSCD, 5 n2, 6 n4.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from stacmask.constants import CLEAR, CLOUD, NODATA, SHADOW, WATER
from stacmask.methods.statistics import (
    BIN_LOWEST_EXPONENT,
    BIN_MANTISSA_BITS,
    HALF_BINS,
)

QUANTITIES = ("ndvi", "wi", "hot", "ci", "nscd", "n2", "n4")
#: Quantities whose mean, std, min or max the rules use (NDVI, n2, n4).
MOMENTS = (0, 5, 6)
_JIT: dict[str, Any] = {"nogil": True, "cache": True, "error_model": "numpy"}


@numba.njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _normalized(raw: Any, b: int, r: int, c: int, g: Any, cmin: Any, span: Any, lut: Any) -> Any:
    """Rule 1 for one value: (value * gain - c_min) / (c_max - c_min); integer bands look it
    up in `lut` (see `normalization_table`), which holds the same float64 results."""
    v = raw[b, r, c]
    if lut.shape[1] > 0:
        return lut[b, int(v)]
    return (v * g[b] - cmin[b]) / span[b]


@numba.njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _row(
    raw: Any, r: int, g: Any, cmin: Any, span: Any, lut: Any, out: Any, footprint: Any
) -> None:
    """Indices of row `r` into `out` (7, cols) and its footprint into `footprint` (cols); one
    plain loop over the row, which the compiler vectorizes."""
    for c in range(raw.shape[2]):
        n1 = _normalized(raw, 0, r, c, g, cmin, span, lut)
        n2 = _normalized(raw, 1, r, c, g, cmin, span, lut)
        n3 = _normalized(raw, 2, r, c, g, cmin, span, lut)
        n4 = _normalized(raw, 3, r, c, g, cmin, span, lut)
        f = (n1 != 0) & (n2 != 0) & (n3 != 0) & (n4 != 0)
        m = 0.25 * n1 + 0.375 * n2 + 0.375 * n3
        out[0, c] = (n4 - n3) / (n4 + n3) if f else 0.0
        out[1, c] = abs(n1 - m) / m + abs(n2 - m) / m + abs(n3 - m) / m
        out[2, c] = n1 - 0.45 * n3 - 0.08
        out[3, c] = 3 * n4 / (n1 + n2 + n3) if f else 0.0
        out[4, c] = n1 - 0.45 * n3 - 0.16 * n4 if f else n1 - 0.45 * n3
        out[5, c] = n2
        out[6, c] = n4
        footprint[c] = f


@numba.njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _bin(bits: int) -> int:
    """The bin of statistics.histogram_bins, from a value's float32 bit pattern."""
    magnitude = ((bits & 0x7FFFFFFF) >> (23 - BIN_MANTISSA_BITS)) - (
        BIN_LOWEST_EXPONENT << BIN_MANTISSA_BITS
    )
    magnitude = min(max(magnitude, 0), HALF_BINS - 1)
    return HALF_BINS - 1 - magnitude if bits < 0 else HALF_BINS + magnitude


@numba.njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _row_bins(values: Any, bins: Any) -> None:
    """The histogram bin of each of a row's values (7, cols), or -1 where it is 0 or NaN (the
    statistics leave those out)."""
    for q in range(values.shape[0]):
        for c in range(values.shape[1]):
            x = values[q, c]
            # + 0.0 turns -0.0 into 0.0: equal values share a bin
            bits = np.float32(x + 0.0).view(np.int32)
            bins[q, c] = _bin(bits) if (x != 0) & (x == x) else -1


@numba.njit(parallel=True, **_JIT)  # type: ignore[untyped-decorator]
def moments(
    raw: Any,
    g: Any,
    cmin: Any,
    span: Any,
    lut: Any,
    histogram: Any,
    keep: Any,
    kept: Any,
    kept_start: Any,
    kept_count: Any,
) -> Any:
    """Pass 1: per row chunk, count of each quantity's values that are neither 0 nor NaN and,
    for the quantities whose std or min the rules use (NDVI, n2, n4: MOMENTS), their sum, sum of
    squares, min and max (rows of the returned (chunks, 5, 7) array; NaN for the others); the
    values' bins are counted into `histogram[chunk, quantity]` (one accumulator per chunk).

    Values in bins marked in `keep[quantity, bin]` are also stored in `kept[chunk]`, from
    `kept_start[quantity]` up to `kept_start[quantity + 1]`, and counted in `kept_count[chunk,
    quantity]`, which goes on counting past that room (an overflow the caller sees); both
    accumulate across strips."""
    rows, cols = raw.shape[1], raw.shape[2]
    chunks = histogram.shape[0]
    result = np.zeros((chunks, 5, 7))
    for k in numba.prange(chunks):
        v = np.empty((7, cols))
        footprint = np.empty(cols, np.bool_)
        bins = np.empty((7, cols), np.int32)
        hist = histogram[k]
        store, stored = kept[k], kept_count[k]
        n, s1, s2 = np.zeros(7), np.zeros(7), np.zeros(7)
        lo, hi = np.full(7, np.inf), np.full(7, -np.inf)
        for r in range(k * rows // chunks, (k + 1) * rows // chunks):
            _row(raw, r, g, cmin, span, lut, v, footprint)
            _row_bins(v, bins)
            for c in range(cols):
                for q in range(7):
                    b = bins[q, c]
                    if b >= 0:
                        hist[q, b] += 1
                        n[q] += 1
                        if keep[q, b]:
                            at = kept_start[q] + stored[q]
                            if at < kept_start[q + 1]:
                                store[at] = v[q, c]
                            stored[q] += 1
                for q in MOMENTS:
                    if bins[q, c] >= 0:
                        x = v[q, c]
                        s1[q] += x
                        s2[q] += x * x
                        lo[q] = min(lo[q], x)
                        hi[q] = max(hi[q], x)
        for q in range(7):
            if q not in MOMENTS:
                s1[q] = s2[q] = lo[q] = hi[q] = np.nan
        result[k, 0] = n
        result[k, 1] = s1
        result[k, 2] = s2
        result[k, 3] = lo
        result[k, 4] = hi
    return result


@numba.njit(parallel=True, **_JIT)  # type: ignore[untyped-decorator]
def select(
    raw: Any, g: Any, cmin: Any, span: Any, lut: Any, wanted: Any, room: Any, chunks: int
) -> Any:
    """Pass 2: the values of each quantity that fall in its wanted bins (`wanted[q, bin]`).

    Chunk k writes quantity q's values from `start[q] + k * room[q]` on, where `room[q]` bounds
    what one chunk can find (the scene-wide count in the wanted bins, known from pass 1);
    returns the buffer, those starts and how many each chunk found.
    """
    rows, cols = raw.shape[1], raw.shape[2]
    start = np.zeros(8, np.int64)
    for q in range(7):
        start[q + 1] = start[q] + chunks * room[q]
    values = np.empty(start[7])
    found = np.zeros((chunks, 7), np.int64)
    for k in numba.prange(chunks):
        v = np.empty((7, cols))
        footprint = np.empty(cols, np.bool_)
        bins = np.empty((7, cols), np.int32)
        at = np.zeros(7, np.int64)
        for q in range(7):
            at[q] = start[q] + k * room[q]
        first = at.copy()
        for r in range(k * rows // chunks, (k + 1) * rows // chunks):
            _row(raw, r, g, cmin, span, lut, v, footprint)
            _row_bins(v, bins)
            for c in range(cols):
                for q in range(7):
                    b = bins[q, c]
                    if b >= 0 and wanted[q, b]:
                        values[at[q]] = v[q, c]
                        at[q] += 1
        found[k] = at - first
    return values, start, found


@numba.njit(inline="always", **_JIT)  # type: ignore[untyped-decorator]
def _classify_row(v: Any, footprint: Any, t: Any, out: Any) -> None:
    """Class codes of one row from its indices `v` (7, cols) and footprint."""
    for c in range(out.size):
        if not footprint[c]:
            out[c] = NODATA
            continue
        ndvi, wi, hot, ci, nscd, n2, n4 = (
            v[0, c],
            v[1, c],
            v[2, c],
            v[3, c],
            v[4, c],
            v[5, c],
            v[6, c],
        )
        cloud = t[0] < ndvi < t[1] and wi < t[2] and hot > t[3] and ci < t[4] and nscd > t[5]
        dark = n2 < t[6] and n4 < t[7]
        water = (ndvi < t[8] and n4 < t[9]) or (ndvi < t[10] and n4 < t[11])
        if dark and not water:
            out[c] = SHADOW
        elif cloud:
            out[c] = CLOUD
        elif water:
            out[c] = WATER
        else:
            out[c] = CLEAR


@numba.njit(parallel=True, **_JIT)  # type: ignore[untyped-decorator]
def classify(raw: Any, g: Any, cmin: Any, span: Any, lut: Any, t: Any, chunks: int) -> Any:
    """Pass 3: class codes from the thresholds `t` (see `thresholds` in notebook.py), in
    `chunks` row ranges run in parallel."""
    rows, cols = raw.shape[1], raw.shape[2]
    out = np.empty((rows, cols), np.uint8)
    chunks = max(1, min(rows, chunks))
    for k in numba.prange(chunks):
        v = np.empty((7, cols))
        footprint = np.empty(cols, np.bool_)
        for r in range(k * rows // chunks, (k + 1) * rows // chunks):
            _row(raw, r, g, cmin, span, lut, v, footprint)
            _classify_row(v, footprint, t, out[r])
    return out


def as_kernel_input(raw: NDArray[Any]) -> NDArray[Any]:
    """Strip values in a dtype the kernels take without copying where possible."""
    return (
        raw
        if raw.dtype in (np.uint16, np.int16, np.uint8, np.float32, np.float64)
        else (raw.astype(np.float64))
    )


def normalization_table(
    raw_dtype: np.dtype[Any],
    minimum: NDArray[np.float64],
    maximum: NDArray[np.float64],
    gains: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Rule 1's result for every integer value from 0 to the bands' maximum, with the kernels'
    float64 operations in the same order (so a lookup equals the arithmetic); an empty table,
    meaning "compute", for float bands, negative values or values of 2^16 and more."""
    if raw_dtype.kind not in "iu" or minimum.min() < 0 or maximum.max() >= 1 << 16:
        return np.zeros((4, 0))
    values = np.arange(int(maximum.max()) + 1, dtype=np.float64)[None, :]
    c_min = minimum * gains
    span = maximum * gains - c_min
    with np.errstate(divide="ignore", invalid="ignore"):
        table: NDArray[np.float64] = (values * gains[:, None] - c_min[:, None]) / span[:, None]
    return table
