"""Theil–Sen and Mann–Kendall on series with a known answer (seeded noise, so deterministic)."""

from __future__ import annotations

import numpy as np
import pytest

from relaysim.analysis import Sample, mann_kendall, theil_sen, trend


def test_theil_sen_recovers_a_known_slope_despite_outliers() -> None:
    ts = [float(t) for t in range(60)]
    vs = [3.5 * t + 7.0 for t in ts]
    for i in (5, 17, 40):  # a probe landing mid-render: wild readings
        vs[i] += 1e6
    fit = theil_sen(ts, vs)
    assert fit is not None
    assert fit.slope == 3.5
    assert fit.low <= 3.5 <= fit.high
    assert (fit.confidence, fit.n) == (0.95, 60)


def test_theil_sen_exact_line() -> None:
    fit = theil_sen([0.0, 1.0, 2.0, 3.0], [7.0, 10.5, 14.0, 17.5])
    assert fit is not None
    assert (fit.slope, fit.intercept, fit.low, fit.high) == (3.5, 7.0, 3.5, 3.5)


def test_theil_sen_interval_brackets_the_slope_under_noise() -> None:
    rng = np.random.default_rng(1)
    ts = np.arange(200.0)
    vs = 250.0 * ts + rng.normal(0, 2_000, ts.size)
    fit = theil_sen(list(ts), list(vs))
    assert fit is not None
    assert fit.low < 250.0 < fit.high
    assert fit.low < fit.slope < fit.high
    assert abs(fit.slope - 250.0) < 20


def test_theil_sen_needs_two_distinct_times() -> None:
    assert theil_sen([1.0], [2.0]) is None
    assert theil_sen([1.0, 1.0], [2.0, 3.0]) is None
    with pytest.raises(ValueError, match=r"^2 times but 1 values$"):
        theil_sen([1.0, 2.0], [1.0])


def test_mann_kendall_detects_a_trend_in_noise() -> None:
    rng = np.random.default_rng(7)
    vs = list(np.arange(100) * 4.0 + rng.normal(0, 40, 100))
    mk = mann_kendall(vs)
    assert mk is not None
    assert mk.trend == "increasing"
    assert mk.test == "hamed_rao"
    assert mk.p is not None and mk.p < 0.05
    assert mk.n == 100


def test_mann_kendall_sees_no_trend_in_flat_noise() -> None:
    rng = np.random.default_rng(11)
    mk = mann_kendall(list(rng.normal(1_000_000, 500, 120)))
    assert mk is not None
    assert mk.trend == "no trend"
    assert mk.p is not None and mk.p > 0.05


def test_mann_kendall_sees_a_decrease() -> None:
    rng = np.random.default_rng(3)
    mk = mann_kendall(list(-np.arange(50) * 10.0 + rng.normal(0, 20, 50)))
    assert mk is not None and mk.trend == "decreasing"


def test_mann_kendall_small_n_guard() -> None:
    assert mann_kendall([1.0, 2.0]) is None
    mk = mann_kendall([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mk is not None and mk.test == "original" and mk.n == 5


def test_mann_kendall_perfect_line_falls_back_to_the_original_test() -> None:
    # Hamed–Rao's autocorrelation estimate is undefined for residual-free data (0/0).
    mk = mann_kendall([float(i) for i in range(30)])
    assert mk is not None
    assert (mk.trend, mk.test) == ("increasing", "original")
    assert mk.p is not None and mk.p < 1e-6


def test_mann_kendall_constant_series() -> None:
    mk = mann_kendall([5.0] * 20)
    assert mk is not None and mk.trend == "no trend"


def test_trend_over_samples_skips_unavailable_readings() -> None:
    samples = [Sample(t=float(t), figures={"heapInuse": 100 * t if t % 4 else None}) for t in range(40)]
    tr = trend(samples, "heapInuse")
    assert tr is not None
    assert tr.figure == "heapInuse"
    assert tr.theil_sen is not None and tr.theil_sen.slope == 100.0 and tr.theil_sen.n == 30
    assert tr.mann_kendall is not None and tr.mann_kendall.trend == "increasing"
    assert trend([Sample(t=0.0, figures={"heapInuse": 1})], "heapInuse") is None
