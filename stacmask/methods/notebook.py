"""The reference notebook method (notebook-method.md), evaluated in three passes over strips.

Pass 1 normalizes each strip with the whole-scene band min/max (known from reading the bands),
computes the indices and gathers exact strip statistics of their non-zero, non-NaN values
(moments and a histogram); pass 2 selects the values at the quantile ranks; pass 3 thresholds
and classifies. The per-pixel work runs in compiled kernels (notebook_kernels.py) that use the
notebook's float64 arithmetic in the same order, so results match an in-memory evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from stacmask.methods import MethodDefaults
from stacmask.methods import notebook_kernels as kernels
from stacmask.methods.statistics import HISTOGRAM_BINS, StripStatistics, Summary, histogram_bins
from stacmask.reading.band_source import BandSource

#: Every SAMPLE_STEP-th row predicts where the quantiles fall (notebook.statistics).
SAMPLE_STEP = 16
#: Share of the ranks kept on each side of a predicted quantile (beyond the sampling noise).
RANK_MARGIN = 0.002
#: Most values pass 1 keeps for the quantiles (8 bytes each); above, pass 2 selects them.
KEEP_MAX = 16_000_000

#: Quantiles each quantity's thresholds use (notebook-method.md, rules 4-6).
QUANTILES: dict[str, tuple[float, ...]] = {
    "ndvi": (0.25, 0.5, 0.75),
    "wi": (0.25,),
    "hot": (0.75,),
    "ci": (0.25,),
    "nscd": (0.75,),
    "n2": (0.25,),
    "n4": (),
}


def thresholds(s: dict[str, Summary]) -> NDArray[np.float64]:
    """Rules 4-6's thresholds from the whole-scene statistics, in the kernel's order."""
    nd, n2, n4 = s["ndvi"], s["n2"], s["n4"]
    return np.array(
        [
            nd.minimum + nd.std,  # NDVI_t: above
            nd.quantiles[0.5] - nd.std,  # NDVI_t: below
            s["wi"].quantiles[0.25],  # WI_t: below
            s["hot"].quantiles[0.75],  # HOT_t: above
            s["ci"].quantiles[0.25],  # CI_t: below
            s["nscd"].quantiles[0.75],  # NSCD_t: above
            n2.quantiles[0.25] + n2.std,  # dark: n2 below
            n4.minimum + n4.std,  # dark: n4 below
            nd.minimum + 1.5 * nd.std,  # clean water: NDVI below
            nd.quantiles[0.75] + nd.std,  # clean water: n4 below
            nd.minimum + 2 * nd.std,  # turbid water: NDVI below
            nd.quantiles[0.25] + nd.std,  # turbid water: n4 below
        ],
        dtype=np.float64,
    )


class NotebookMethod(MethodDefaults):
    """Scene-percentile cloud, shadow and water rules of the reference CBERS-4A notebook."""

    name = "notebook"
    reads_bands_once = False

    def statistics(self, source: BandSource) -> dict[str, Summary]:
        """Passes 1 and 2: exact whole-scene statistics of every quantity.

        A sample of the rows first predicts the histogram bins the quantiles fall in; pass 1
        keeps the values of those bins (with a margin), so pass 2, which selects the values
        of the bins holding the quantile ranks, only runs for a quantity whose prediction missed.
        """
        acc = [StripStatistics(quantiles=QUANTILES[name]) for name in kernels.QUANTITIES]
        chunks = 4 * numba.get_num_threads()
        histogram = np.zeros((chunks, len(acc), HISTOGRAM_BINS), np.int64)
        keep, kept_start = self._predicted_bins(source, histogram)
        histogram[:] = 0
        kept = np.empty((chunks, int(kept_start[-1])))
        kept_count = np.zeros((chunks, len(acc)), np.int64)
        for _, inputs in self._strips(source):
            chunk_moments = kernels.moments(*inputs, histogram, keep, kept, kept_start, kept_count)
            count, total, squares = chunk_moments[:, :3].sum(axis=0)
            low, high = chunk_moments[:, 3].min(axis=0), chunk_moments[:, 4].max(axis=0)
            for q, a in enumerate(acc):
                n = int(count[q])
                if n:
                    mean = float(total[q]) / n
                    m2 = max(0.0, float(squares[q]) - float(total[q]) * mean)
                    a.merge(n, mean, m2, float(low[q]), float(high[q]), None)
        missed = np.zeros((len(acc), HISTOGRAM_BINS), np.bool_)
        for q, a in enumerate(acc):
            if not a.quantiles:
                continue
            a.histogram += histogram[:, q].sum(axis=0)
            room = kept_start[q + 1] - kept_start[q]
            if keep[q, a.wanted_bins].all() and (kept_count[:, q] <= room).all():
                values = np.concatenate(
                    [kept[k, kept_start[q] :][: kept_count[k, q]] for k in range(chunks)]
                )
                a.add_selected(values[np.isin(histogram_bins(values), a.wanted_bins)])
            else:
                missed[q, a.wanted_bins] = True
        if missed.any():
            self._select(source, acc, missed, chunks)
        return {name: a.summary() for name, a in zip(kernels.QUANTITIES, acc, strict=True)}

    def _predicted_bins(
        self, source: BandSource, histogram: NDArray[np.int64]
    ) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
        """From every SAMPLE_STEP-th row: the bins each quantile is expected in, widened by
        RANK_MARGIN of the ranks (plus sampling noise) on each side, and the start of each
        quantity's room in the keep buffer (twice the expected count; none above KEEP_MAX)."""
        chunks, quantities, bins = histogram.shape
        keep = np.zeros((quantities, bins), np.bool_)
        nothing = np.zeros((chunks, 0)), np.zeros(quantities + 1, np.int64)
        counts = np.zeros((chunks, quantities), np.int64)
        for _, (raw, *rule1) in self._strips(source):
            kernels.moments(raw[:, ::SAMPLE_STEP], *rule1, histogram, keep, *nothing, counts)
        expected = np.zeros(quantities, np.int64)
        for q, name in enumerate(kernels.QUANTITIES):
            sample = histogram[:, q].sum(axis=0)
            n = int(sample.sum())
            if not QUANTILES[name] or n == 0:
                continue
            cumulative = np.cumsum(sample)
            margin = RANK_MARGIN + 4 / np.sqrt(n)
            for p in QUANTILES[name]:
                ranks = np.array([max(0.0, p - margin), min(1.0, p + margin)]) * (n - 1)
                first, last = np.searchsorted(cumulative, ranks, side="right")
                keep[q, first : last + 1] = True
            expected[q] = int(sample[keep[q]].sum()) * SAMPLE_STEP
        if expected.sum() > KEEP_MAX:
            return np.zeros_like(keep), nothing[1]
        room = 2 * expected // chunks + 256 * (expected > 0)
        return keep, np.concatenate([[0], np.cumsum(room)]).astype(np.int64)

    def _select(
        self,
        source: BandSource,
        acc: list[StripStatistics],
        wanted: NDArray[np.bool_],
        chunks: int,
    ) -> None:
        """Pass 2: the values of the `wanted[quantity, bin]` bins, for the quantities whose
        values pass 1 could not keep."""
        strip_pixels = max(int(w.width * w.height) for w in source.strips())
        room = np.array(
            [min(int(a.histogram[wanted[q]].sum()), strip_pixels) for q, a in enumerate(acc)]
        )
        for window, inputs in self._strips(source):
            rows_per_chunk = -(-int(window.height) // chunks) + 1
            room_here = np.minimum(room, rows_per_chunk * int(window.width))
            values, start, found = kernels.select(*inputs, wanted, room_here, chunks)
            for q, a in enumerate(acc):
                if wanted[q].any():
                    a.add_selected(
                        np.concatenate(
                            [
                                values[start[q] + k * room_here[q] :][: found[k, q]]
                                for k in range(chunks)
                            ]
                        )
                    )

    def classify(self, source: BandSource) -> Iterator[tuple[Window, NDArray[np.uint8]]]:
        """Pass 3: class codes of every strip."""
        limits = thresholds(self.statistics(source))
        for window, inputs in self._strips(source):
            yield window, kernels.classify(*inputs, limits, 4 * numba.get_num_threads())

    @staticmethod
    def _strips(source: BandSource) -> Iterator[tuple[Window, tuple[Any, ...]]]:
        """Each strip's kernel inputs: its values, then the gains, c_min, c_max - c_min and
        normalization table of rule 1 (made once, from the first strip's dtype)."""
        normalization: tuple[NDArray[np.float64], ...] | None = None
        for window in source.strips():
            raw = kernels.as_kernel_input(source.read_raw(window))
            if normalization is None:
                st, gains = source.stats, np.array(source.info.gains, dtype=np.float64)
                minimum, maximum = np.array(st.minimum), np.array(st.maximum)
                c_min = minimum * gains
                span = maximum * gains - c_min
                table = kernels.normalization_table(raw.dtype, minimum, maximum, gains)
                normalization = (gains, c_min, span, table)
            yield window, (raw, *normalization)
