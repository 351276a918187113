"""Strip statistics must equal numpy's whole-array results exactly (quantiles) or to 1e-12."""

from __future__ import annotations

import numpy as np
import pytest

from stacmask.methods.statistics import StripStatistics

QUANTILES = (0.25, 0.5, 0.75)


def _strip_stats(values: np.ndarray, parts: int) -> StripStatistics:
    stats = StripStatistics(quantiles=QUANTILES)
    strips = np.array_split(values, parts)
    for strip in strips:
        stats.add(strip)
    if stats.needs_selection():
        for strip in strips:
            stats.select(strip)
    return stats


@pytest.mark.parametrize("seed", range(6))
def test_quantiles_exact_and_moments_close(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 300_000))
    values = rng.normal(size=n) * [1e-3, 1.0, 1e3][seed % 3]
    if seed % 2:
        values = np.round(values, 2)  # heavy ties, as DN-derived indices have
        values[: n // 3] = -0.08  # one value dominating, as HOT outside the footprint
    summary = _strip_stats(values, int(rng.integers(1, 17))).summary()
    for q in QUANTILES:
        assert summary.quantiles[q] == np.percentile(values, q * 100)
    assert summary.minimum == values.min()
    assert summary.maximum == values.max()
    assert summary.count == n
    assert summary.std == pytest.approx(np.std(values), rel=1e-12, abs=1e-15)


def test_single_value_and_empty() -> None:
    one = _strip_stats(np.array([0.5]), 1).summary()
    assert one.quantiles == {0.25: 0.5, 0.5: 0.5, 0.75: 0.5}
    assert one.std == 0.0
    empty = _strip_stats(np.array([]), 3).summary()
    assert empty.count == 0
    assert np.isnan(empty.minimum)
    assert all(np.isnan(v) for v in empty.quantiles.values())


def test_extreme_values_keep_order() -> None:
    values = np.array([-1e300, -5.0, 0.0, 1e-300, 3.0, 1e300, 7.5, 7.5])
    summary = _strip_stats(values, 3).summary()
    for q in QUANTILES:
        assert summary.quantiles[q] == np.percentile(values, q * 100)


def test_signed_zeros_and_values_beyond_the_binned_range() -> None:
    """-0.0 equals 0.0 and shares its bin; magnitudes past 2^8 and under 2^-24 share end bins."""
    values = np.array([-0.0, 0.0, -0.0, 1e-9, -1e-9, 300.0, 5e3, -700.0, 0.1, 0.1, -0.0, 2.0])
    for parts in (1, 4):
        summary = _strip_stats(values, parts).summary()
        for q in QUANTILES:
            assert summary.quantiles[q] == np.percentile(values, q * 100)
