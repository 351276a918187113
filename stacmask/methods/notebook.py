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

from stacmask.methods import notebook_kernels as kernels
from stacmask.scene import BandSource
from stacmask.statistics import HISTOGRAM_BINS, StripStatistics, Summary

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


class NotebookMethod:
    """Scene-percentile cloud, shadow and water rules of the reference CBERS-4A notebook."""

    name = "notebook"
    reads_bands_once = False

    def statistics(self, source: BandSource) -> dict[str, Summary]:
        """Passes 1 and 2: exact whole-scene statistics of every quantity."""
        acc = [StripStatistics(quantiles=QUANTILES[name]) for name in kernels.QUANTITIES]
        chunks = 4 * numba.get_num_threads()
        histogram = np.zeros((chunks, len(acc), HISTOGRAM_BINS), np.int64)
        for _, inputs in self._strips(source):
            chunk_moments = kernels.moments(*inputs, histogram)
            count, total, squares = chunk_moments[:, :3].sum(axis=0)
            low, high = chunk_moments[:, 3].min(axis=0), chunk_moments[:, 4].max(axis=0)
            for q, a in enumerate(acc):
                n = int(count[q])
                if n:
                    mean = float(total[q]) / n
                    m2 = max(0.0, float(squares[q]) - float(total[q]) * mean)
                    a.merge(n, mean, m2, float(low[q]), float(high[q]), None)
        for q, a in enumerate(acc):
            if a.quantiles:
                a.histogram += histogram[:, q].sum(axis=0)
        wanted = np.zeros((len(acc), HISTOGRAM_BINS), np.bool_)
        for q, a in enumerate(acc):
            wanted[q, a.wanted_bins] = True
        if wanted.any():
            strip_pixels = max(int(w.width * w.height) for w in source.strips())
            room = np.array(
                [min(int(a.histogram[wanted[q]].sum()), strip_pixels) for q, a in enumerate(acc)]
            )
            for window, inputs in self._strips(source):
                rows_per_chunk = -(-int(window.height) // chunks) + 1
                room_here = np.minimum(room, rows_per_chunk * int(window.width))
                values, start, found = kernels.select(*inputs, wanted, room_here, chunks)
                for q, a in enumerate(acc):
                    a.add_selected(
                        np.concatenate(
                            [
                                values[start[q] + k * room_here[q] :][: found[k, q]]
                                for k in range(chunks)
                            ]
                        )
                    )
        return {name: a.summary() for name, a in zip(kernels.QUANTITIES, acc, strict=True)}

    def classify(self, source: BandSource) -> Iterator[tuple[Window, NDArray[np.uint8]]]:
        """Pass 3: class codes of every strip."""
        limits = thresholds(self.statistics(source))
        for window, inputs in self._strips(source):
            yield window, kernels.classify(*inputs, limits)

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
