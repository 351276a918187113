"""Test oracle: a plain in-memory float64 numpy evaluation of notebook-method.md, line by line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass
class OracleResult:
    footprint: NDArray[np.bool_]
    cloud: NDArray[np.bool_]
    shadow: NDArray[np.bool_]
    water: NDArray[np.bool_]
    band_mismatch: bool

    def classes(self) -> NDArray[np.uint8]:
        out = np.full(self.footprint.shape, 255, dtype=np.uint8)
        out[self.footprint] = 0
        out[self.water] = 1
        out[self.cloud] = 4
        out[self.shadow] = 2
        return out


def _stats(x: NDArray[np.float64]) -> dict[str, float]:
    v = x[(x != 0) & ~np.isnan(x)]
    if v.size == 0:
        return dict.fromkeys(("min", "median", "std", "q25", "q75"), np.nan)
    return {
        "min": float(np.min(v)),
        "median": float(np.median(v)),
        "std": float(np.std(v)),
        "q25": float(np.percentile(v, 25)),
        "q75": float(np.percentile(v, 75)),
    }


def notebook_oracle(dn: NDArray[np.generic], gains: tuple[float, ...]) -> OracleResult:
    """Evaluate the notebook rules on a (4, H, W) DN array held in memory."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = []
        for b in range(4):
            c = dn[b].astype(np.float64) * gains[b]
            n.append((c - c.min()) / (c.max() - c.min()))
        n1, n2, n3, n4 = n
        f = (n1 != 0) & (n2 != 0) & (n3 != 0) & (n4 != 0)
        nz = [x != 0 for x in (n1, n2, n3)]
        mismatch = int(((nz[0] ^ nz[1]) | (nz[1] ^ nz[2]) | (nz[0] ^ nz[2])).sum()) > 100
        ndvi = (n4 - n3) / (n4 + n3) * f
        m = 0.25 * n1 + 0.375 * n2 + 0.375 * n3
        wi = np.abs(n1 - m) / m + np.abs(n2 - m) / m + np.abs(n3 - m) / m
        hot = n1 - 0.45 * n3 - 0.08
        ci = 3 * n4 / (n1 + n2 + n3) * f
        nscd = n1 - 0.45 * n3 - (0.16 * n4 * f)
        s_ndvi, s_wi, s_hot, s_ci, s_nscd = map(_stats, (ndvi, wi, hot, ci, nscd))
        ndvi_t = (
            (s_ndvi["min"] + s_ndvi["std"] < ndvi) & (ndvi < s_ndvi["median"] - s_ndvi["std"]) & f
        )
        wi_t = (wi < s_wi["q25"]) & f
        hot_t = (hot > s_hot["q75"]) & f
        ci_t = ci < s_ci["q25"]
        nscd_t = nscd > s_nscd["q75"]
        cloud = ndvi_t & wi_t & hot_t & ci_t & nscd_t
        s2, s4 = _stats(n2), _stats(n4)
        dark = (n2 < s2["q25"] + s2["std"]) & (n4 < s4["min"] + s4["std"]) & f
        s = s_ndvi
        clean = (ndvi < s["min"] + 1.5 * s["std"]) & (n4 < s["q75"] + s["std"])
        turbid = (ndvi < s["min"] + 2 * s["std"]) & (n4 < s["q25"] + s["std"])
        water = (clean | turbid) & f
        shadow = dark & ~water
    return OracleResult(f, cloud, shadow, water, mismatch)
