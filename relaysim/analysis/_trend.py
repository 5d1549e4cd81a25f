"""Trend statistics for a timeline: Theil–Sen slope with its confidence interval, and Mann–Kendall.

Why these two: a leak shows as a steady slope, but a sampled heap figure has steps (a page loads a
batch) and outliers (a probe lands mid-render). Theil–Sen (the median of pairwise slopes, Sen 1968)
ignores up to ~29 % outliers and gives a confidence interval, so the report can say "grows 310 B/s
(280..345)". Mann–Kendall says whether there is a monotone trend at all; consecutive samples are
autocorrelated, which makes the plain test see trends in noise, so for n >= 10 relaysim uses the
Hamed–Rao variance correction (pymannkendall.hamed_rao_modification_test) and falls back to the
original test for 3 <= n < 10 or when the correction is undefined (a perfectly linear series has
no residual autocorrelation to estimate). Below 3 points there is no trend to speak of: ``None``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from relaysim.analysis._samples import Sample, values

__all__ = ["MannKendall", "TheilSen", "Trend", "mann_kendall", "theil_sen", "trend"]

MK_MIN_POINTS = 3
HAMED_RAO_MIN_POINTS = 10


@dataclass(frozen=True, slots=True)
class TheilSen:
    """Slope (units per second) with its ``confidence`` interval ``[low, high]``; ``n`` points."""

    slope: float
    intercept: float
    low: float
    high: float
    confidence: float
    n: int


def theil_sen(ts: Sequence[float], vs: Sequence[float], confidence: float = 0.95) -> TheilSen | None:
    """Theil–Sen fit of ``vs`` against ``ts``; ``None`` with fewer than 2 points or one distinct t."""
    if len(ts) != len(vs):
        raise ValueError(f"{len(ts)} times but {len(vs)} values")
    if len(ts) < 2 or len(set(ts)) < 2:
        return None
    from scipy.stats import theilslopes

    res = theilslopes(vs, ts, alpha=confidence)
    return TheilSen(
        slope=float(res.slope),
        intercept=float(res.intercept),
        low=float(res.low_slope),
        high=float(res.high_slope),
        confidence=confidence,
        n=len(ts),
    )


@dataclass(frozen=True, slots=True)
class MannKendall:
    """Mann–Kendall result: ``trend`` is "increasing", "decreasing" or "no trend" at ``alpha``."""

    trend: str
    p: float | None
    z: float | None
    tau: float
    s: float
    test: str
    n: int
    alpha: float


def _finite(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def mann_kendall(vs: Sequence[float], alpha: float = 0.05) -> MannKendall | None:
    """Mann–Kendall trend test of ``vs`` (in time order); ``None`` below 3 points."""
    n = len(vs)
    if n < MK_MIN_POINTS:
        return None
    import numpy as np
    import pymannkendall as mk

    x = np.asarray(vs, dtype=float)
    res = None
    test = "original"
    if n >= HAMED_RAO_MIN_POINTS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = mk.hamed_rao_modification_test(x, alpha=alpha)
        test = "hamed_rao"
        if _finite(res.p) is None or _finite(res.z) is None:
            res = None
            test = "original"
    if res is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = mk.original_test(x, alpha=alpha)
    return MannKendall(
        trend=str(res.trend),
        p=_finite(res.p),
        z=_finite(res.z),
        tau=float(res.Tau),
        s=float(res.s),
        test=test,
        n=n,
        alpha=alpha,
    )


@dataclass(frozen=True, slots=True)
class Trend:
    """Theil–Sen and Mann–Kendall of one figure over a timeline."""

    figure: str
    theil_sen: TheilSen | None
    mann_kendall: MannKendall | None


def trend(samples: Sequence[Sample], figure: str, confidence: float = 0.95) -> Trend | None:
    """Both statistics of ``figure`` over ``samples``; ``None`` when fewer than 2 samples have it."""
    ts, vs = values(samples, figure)
    if len(ts) < 2:
        return None
    return Trend(
        figure=figure,
        theil_sen=theil_sen(ts, vs, confidence),
        mann_kendall=mann_kendall(vs, alpha=round(1.0 - confidence, 12)),
    )
