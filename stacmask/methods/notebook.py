"""The reference notebook method (notebook-method.md), evaluated in three passes over strips.

Pass 1 normalizes each strip with the whole-scene band min/max (known from reading the bands),
computes the indices and feeds their non-zero, non-NaN values to exact strip statistics; pass 2
selects the values at the quantile ranks; pass 3 thresholds and classifies. The arithmetic is
the notebook's, in float64 and in the same order, so results match an in-memory evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numexpr as ne
import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from stacmask.constants import CLEAR, CLOUD, NODATA, SHADOW, WATER
from stacmask.scene import BandSource
from stacmask.statistics import StripStatistics, Summary

F64 = NDArray[np.float64]
Mask = NDArray[np.bool_]

#: Quantiles each index's thresholds use (notebook-method.md, rules 4-6).
QUANTILES: dict[str, tuple[float, ...]] = {
    "ndvi": (0.25, 0.5, 0.75),
    "wi": (0.25,),
    "hot": (0.75,),
    "ci": (0.25,),
    "nscd": (0.75,),
    "n2": (0.25,),
    "n4": (),
}


@dataclass(frozen=True)
class Indices:
    """Normalized bands, footprint and spectral indices of one strip."""

    n1: F64
    n2: F64
    n3: F64
    n4: F64
    footprint: Mask
    ndvi: F64
    wi: F64
    hot: F64
    ci: F64
    nscd: F64

    def named(self, name: str) -> F64:
        """The index or normalized band called `name`."""
        value: F64 = getattr(self, name)
        return value


@dataclass(frozen=True)
class RuleMasks:
    """The notebook's cloud, shadow and water rules for one strip."""

    footprint: Mask
    cloud: Mask
    shadow: Mask
    water: Mask

    def classes(self) -> NDArray[np.uint8]:
        """Class codes: shadow over cloud over water over clear; no data outside the footprint."""
        out = np.full(self.footprint.shape, NODATA, dtype=np.uint8)
        out[self.footprint] = CLEAR
        out[self.water] = WATER
        out[self.cloud] = CLOUD
        out[self.shadow] = SHADOW
        return out


def normalize(
    raw: NDArray[Any], gains: tuple[float, ...], lo: tuple[float, ...], hi: tuple[float, ...]
) -> F64:
    """Rule 1: c = DN * gain; n = (c - min c) / (max c - min c), with whole-scene min and max."""
    out = raw.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in range(4):
            c_min, c_max = lo[b] * gains[b], hi[b] * gains[b]
            out[b] *= gains[b]
            out[b] -= c_min
            out[b] /= c_max - c_min
    return out


def indices(n: F64) -> Indices:
    """Rules 2 and 4: footprint and the NDVI, WI, HOT, CI and NSCD indices.

    Fused with numexpr, element by element the same float64 arithmetic as the notebook's numpy.
    Outside the footprint the indices the notebook multiplies by F are 0 here where numpy gives
    0 or NaN (NaN * 0); both are excluded from the statistics and every rule is ANDed with F,
    so the masks are the same.
    """
    env = {"n1": n[0], "n2": n[1], "n3": n[2], "n4": n[3]}
    f = ne.evaluate("(n1 != 0) & (n2 != 0) & (n3 != 0) & (n4 != 0)", local_dict=env)
    env["f"] = f
    m = "(0.25 * n1 + 0.375 * n2 + 0.375 * n3)"
    return Indices(
        n1=n[0],
        n2=n[1],
        n3=n[2],
        n4=n[3],
        footprint=f,
        ndvi=ne.evaluate("where(f, (n4 - n3) / (n4 + n3), 0)", local_dict=env),
        wi=ne.evaluate(
            f"abs(n1 - {m}) / {m} + abs(n2 - {m}) / {m} + abs(n3 - {m}) / {m}", local_dict=env
        ),
        hot=ne.evaluate("n1 - 0.45 * n3 - 0.08", local_dict=env),
        ci=ne.evaluate("where(f, 3 * n4 / (n1 + n2 + n3), 0)", local_dict=env),
        nscd=ne.evaluate("where(f, n1 - 0.45 * n3 - 0.16 * n4, n1 - 0.45 * n3)", local_dict=env),
    )


def statistic_values(x: F64) -> F64:
    """Rule 3: the values statistics are taken over (neither exactly 0 nor NaN)."""
    kept: F64 = x[ne.evaluate("(x != 0) & (x == x)", local_dict={"x": x})]
    return kept


def rules(ix: Indices, s: dict[str, Summary]) -> RuleMasks:
    """Rules 4-7 with the whole-scene statistics `s`."""
    f = ix.footprint
    nd, wi, hot, ci, nscd = s["ndvi"], s["wi"], s["hot"], s["ci"], s["nscd"]
    n2, n4 = s["n2"], s["n4"]
    ndvi_t = (nd.minimum + nd.std < ix.ndvi) & (ix.ndvi < nd.quantiles[0.5] - nd.std) & f
    wi_t = (ix.wi < wi.quantiles[0.25]) & f
    hot_t = (ix.hot > hot.quantiles[0.75]) & f
    ci_t = ix.ci < ci.quantiles[0.25]
    nscd_t = ix.nscd > nscd.quantiles[0.75]
    cloud = ndvi_t & wi_t & hot_t & ci_t & nscd_t
    dark = (ix.n2 < n2.quantiles[0.25] + n2.std) & (ix.n4 < n4.minimum + n4.std) & f
    clean = (ix.ndvi < nd.minimum + 1.5 * nd.std) & (ix.n4 < nd.quantiles[0.75] + nd.std)
    turbid = (ix.ndvi < nd.minimum + 2 * nd.std) & (ix.n4 < nd.quantiles[0.25] + nd.std)
    water = (clean | turbid) & f
    return RuleMasks(footprint=f, cloud=cloud, shadow=dark & ~water, water=water)


class NotebookMethod:
    """Scene-percentile cloud, shadow and water rules of the reference CBERS-4A notebook."""

    name = "notebook"

    def statistics(self, source: BandSource) -> dict[str, Summary]:
        """Passes 1 and 2: exact whole-scene statistics of every index."""
        acc = {name: StripStatistics(quantiles=q) for name, q in QUANTILES.items()}
        for selecting in (False, True):
            if selecting and not any(a.needs_selection() for a in acc.values()):
                break
            for window in source.strips():
                ix = self._indices(source, window)
                for name, a in acc.items():
                    values = statistic_values(ix.named(name))
                    if selecting:
                        a.select(values)
                    else:
                        a.add(values)
        return {name: a.summary() for name, a in acc.items()}

    def rule_masks(self, source: BandSource) -> Iterator[tuple[Window, RuleMasks]]:
        """Pass 3: the rule masks of every strip."""
        stats = self.statistics(source)
        for window in source.strips():
            yield window, rules(self._indices(source, window), stats)

    def classify(self, source: BandSource) -> Iterator[tuple[Window, NDArray[np.uint8]]]:
        """Class codes of every strip."""
        for window, masks in self.rule_masks(source):
            yield window, masks.classes()

    @staticmethod
    def _indices(source: BandSource, window: Window) -> Indices:
        st = source.stats
        n = normalize(source.read_raw(window), source.info.gains, st.minimum, st.maximum)
        return indices(n)
