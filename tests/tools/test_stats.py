"""The intervals of the result tables: Student's t quantiles and intervals, Wilson's interval."""

import math

import pytest

from splitleak.tools.experiments import stats

# t(0.975, df) as printed in tables of Student's t
T975 = {1: 12.7062047362, 2: 4.30265272975, 3: 3.18244630528, 4: 2.7764451052,
        10: 2.22813885196, 30: 2.04227245630}


@pytest.mark.parametrize("df, value", sorted(T975.items()))
def test_t_quantiles_match_the_tables(df, value):
    assert stats.t_quantile(0.975, df) == pytest.approx(value, abs=1e-9)


def test_t_quantiles_match_scipy_where_it_is_installed():
    t = pytest.importorskip("scipy.stats").t
    for df in (1, 2, 5, 17, 99, 1000):
        for p in (0.5, 0.9, 0.975, 0.995):
            assert stats.t_quantile(p, df) == pytest.approx(t.ppf(p, df), abs=1e-9)


def test_t_interval_over_seeds():
    iv = stats.t_interval([1.0, 2.0, 3.0])  # mean 2, s = 1, n = 3
    half = T975[2] / math.sqrt(3)
    assert (iv.mean, iv.n) == (2.0, 3)
    assert (iv.low, iv.high) == pytest.approx((2 - half, 2 + half))
    assert stats.t_interval([0.5]) == stats.Interval(0.5, None, None, 1)  # one seed: no interval
    assert stats.t_interval([]) == stats.Interval(None, None, None, 0)
    assert stats.t_interval([0.3, 0.3]) == stats.Interval(0.3, 0.3, 0.3, 2)


def test_wilson_score_interval():
    assert stats.wilson(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert stats.wilson(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    low, high = stats.wilson(950, 1000)
    assert (low, high) == pytest.approx((0.93469, 0.96187), abs=1e-5)
    assert stats.wilson(1, 1000)[0] > 0  # the normal interval would go below zero here
    with pytest.raises(ValueError):
        stats.wilson(3, 2)
