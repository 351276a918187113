"""Exact scene-wide statistics over strips: moments in one pass, quantiles by histogram + selection.

numpy's `percentile` needs the whole array in memory and sorts it. Here each statistic is built
from strips, as python-fmask does: pass 1 accumulates count, min, max, mean and M2 (Chan et al.
parallel variance) and a fixed-range histogram of a monotone map of the values; pass 2 collects
the distinct values (with counts) that fall in the few bins holding the requested ranks; the
quantiles are then exact, with numpy's default linear interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numexpr as ne
import numpy as np
from numpy.typing import NDArray

#: Histogram bins: magnitudes from 2^-24 to 2^8 at 2^11 bins per octave, for each sign (values
#: beyond go to the end bins). Finer means fewer values to keep in pass 2.
BIN_LOWEST_EXPONENT = 103  # float32 biased exponent of 2^-24
BIN_MANTISSA_BITS = 11
HALF_BINS = 32 << BIN_MANTISSA_BITS
HISTOGRAM_BINS = 2 * HALF_BINS


def histogram_bins(values: NDArray[np.float64]) -> NDArray[np.intp]:
    """Histogram bin of each value: a monotone map read off its float32 bit pattern (sign,
    exponent and the top mantissa bits), with no division (notebook_kernels._bin per value)."""
    # + 0.0 turns -0.0 into 0.0: equal values must share a bin
    bits = (np.asarray(values, np.float64) + 0.0).astype(np.float32).view(np.int32).astype(np.int64)
    magnitude = ((bits & 0x7FFFFFFF) >> (23 - BIN_MANTISSA_BITS)) - (
        BIN_LOWEST_EXPONENT << BIN_MANTISSA_BITS
    )
    np.clip(magnitude, 0, HALF_BINS - 1, out=magnitude)
    bins: NDArray[np.intp] = np.where(
        bits < 0, HALF_BINS - 1 - magnitude, HALF_BINS + magnitude
    ).astype(np.intp)
    return bins


@dataclass(frozen=True)
class Summary:
    """Statistics of the values an accumulator saw (NaN when it saw none)."""

    count: int
    minimum: float
    maximum: float
    mean: float
    std: float
    quantiles: dict[float, float]


@dataclass
class StripStatistics:
    """Count, min, max, mean, population std and exact quantiles of values fed strip by strip.

    Feed every strip's values to `add` (pass 1), then, if `needs_selection()`, every strip's
    values again to `select` (pass 2); then read `summary()`.
    """

    quantiles: tuple[float, ...] = ()
    count: int = 0
    minimum: float = np.inf
    maximum: float = -np.inf
    mean: float = 0.0
    m2: float = 0.0
    histogram: NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(HISTOGRAM_BINS, dtype=np.int64)
    )
    _wanted_bins: NDArray[np.intp] | None = None
    _selected_values: list[NDArray[np.float64]] = field(default_factory=list)
    _selected_counts: list[NDArray[np.int64]] = field(default_factory=list)

    def add(self, values: NDArray[np.float64]) -> None:
        """Pass 1: fold a strip's values into the moments and the histogram."""
        n = int(values.size)
        if n == 0:
            return
        mean = float(values.mean())
        m2 = float(ne.evaluate("sum((v - mean) ** 2)", local_dict={"v": values, "mean": mean}))
        histogram = (
            np.bincount(histogram_bins(values), minlength=HISTOGRAM_BINS)
            if self.quantiles
            else None
        )
        self.merge(n, mean, m2, float(values.min()), float(values.max()), histogram)

    def merge(
        self,
        n: int,
        mean: float,
        m2: float,
        minimum: float,
        maximum: float,
        histogram: NDArray[np.int64] | None,
    ) -> None:
        """Pass 1: fold in the moments and histogram of `n` values (Chan et al.'s update)."""
        if n == 0:
            return
        total = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        self.minimum = min(self.minimum, minimum)
        self.maximum = max(self.maximum, maximum)
        if self.quantiles and histogram is not None:
            self.histogram += histogram

    def _ranks(self) -> list[int]:
        ranks: set[int] = set()
        for q in self.quantiles:
            position = (self.count - 1) * q
            ranks.update(
                {int(np.floor(position)), min(int(np.floor(position)) + 1, self.count - 1)}
            )
        return sorted(ranks)

    def needs_selection(self) -> bool:
        """True when quantiles were asked for and values were seen."""
        if not self.quantiles or self.count == 0:
            return False
        if self._wanted_bins is None:
            cumulative = np.cumsum(self.histogram)
            bins = np.searchsorted(cumulative, np.array(self._ranks()), side="right")
            self._wanted_bins = np.unique(bins)
        return True

    @property
    def wanted_bins(self) -> NDArray[np.intp]:
        """Histogram bins holding the ranks the quantiles need (after pass 1)."""
        if not self.needs_selection():
            return np.zeros(0, np.intp)
        assert self._wanted_bins is not None
        return self._wanted_bins

    def select(self, values: NDArray[np.float64]) -> None:
        """Pass 2: keep the distinct values (and their counts) that fall in the wanted bins."""
        if not self.needs_selection() or values.size == 0:
            return
        self.add_selected(values[np.isin(histogram_bins(values), self.wanted_bins)])

    def add_selected(self, kept: NDArray[np.float64]) -> None:
        """Pass 2: keep values already known to fall in the wanted bins."""
        if kept.size:
            distinct, counts = np.unique(kept, return_counts=True)
            self._selected_values.append(distinct)
            self._selected_counts.append(counts.astype(np.int64))

    def _value_at_ranks(self) -> dict[int, float]:
        assert self._wanted_bins is not None
        values = np.concatenate(self._selected_values)
        distinct, inverse = np.unique(values, return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate(self._selected_counts))
        # Ranks are looked up only inside the wanted bins; a bin's first rank is the count of
        # all values in lower bins.
        result: dict[int, float] = {}
        bins_of_distinct = histogram_bins(distinct)
        for b in self._wanted_bins:
            in_bin = bins_of_distinct == b
            start = int(self.histogram[: int(b)].sum())
            cumulative = start + np.cumsum(counts[in_bin]).astype(np.int64)
            for rank in self._ranks():
                if start <= rank < start + int(self.histogram[int(b)]):
                    index = int(np.searchsorted(cumulative, rank, side="right"))
                    result[rank] = float(distinct[in_bin][index])
        return result

    def summary(self) -> Summary:
        """Final statistics; quantiles use numpy's default linear interpolation."""
        if self.count == 0:
            nan = float("nan")
            return Summary(0, nan, nan, nan, nan, {q: nan for q in self.quantiles})
        quantiles: dict[float, float] = {}
        if self.needs_selection():
            at = self._value_at_ranks()
            for q in self.quantiles:
                position = (self.count - 1) * q
                lo = int(np.floor(position))
                hi = min(lo + 1, self.count - 1)
                quantiles[q] = _lerp(at[lo], at[hi], position - lo)
        return Summary(
            count=self.count,
            minimum=self.minimum,
            maximum=self.maximum,
            mean=self.mean,
            std=float(np.sqrt(self.m2 / self.count)),
            quantiles=quantiles,
        )


def _lerp(a: float, b: float, t: float) -> float:
    """numpy's linear interpolation between neighbouring order statistics."""
    diff = b - a
    if t >= 0.5:
        return b - diff * (1 - t)
    return a + diff * t
