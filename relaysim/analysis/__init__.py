"""Pure analysis of memory samples: exact rates, probe-cost compensation, trends, site deltas, verdicts.

No I/O here: feed values in, get values back. The runner (relaysim.scenario.runner) reads probes,
builds :class:`Sample` values and :class:`Evidence`, and calls these functions.

API summary (stable; the runner codes to these names)
-----------------------------------------------------
Samples and rates (``_samples``):
  ``Sample(t, figures: dict[str, number|None], app_ts=None)`` frozen; ``t`` = harness monotonic s;
  ``.get(name)`` -> number|None (None = unavailable); ``.to_dict()`` / ``Sample.from_dict(d)``.
  Figure names: ``TOTAL_ALLOC="totalAlloc"``, ``MALLOCS="mallocs"``, ``HEAP_INUSE="heapInuse"``,
  ``SYS="sys"`` (``__moxie_mem_stats()``), ``DOM_HANDLES="dom_handles"`` (``__moxie_dom_handles()``),
  ``THREAD_EVENTS="thread_events"`` (live entries of the app's threadEvents map; 0 after a thread
  closes in a sound app), ``JS_HEAP_USED="js_heap_used"``, ``NODES="nodes"``,
  ``LISTENERS="listeners"`` (CDP), ``UASM_BYTES="uasm_bytes"`` (measureUserAgentSpecificMemory),
  ``WASM_MEMORY_BYTES="wasm_memory_bytes"``, ``RELAY_SUBSCRIPTIONS="relay_subscriptions"``; ``FIGURES``.
  ``rate(start, end, figure="totalAlloc") -> float|None`` exact (end.v-start.v)/(end.t-start.t);
  raises ``CounterReset`` if the counter went down. ``figure_delta(a, b, figure)``.
  ``dom_handles(samples) -> DomHandles(max, final, max_t, samples) | None``.
Idle protocol (``_idle``):
  ``measure_probe_cost(readings) -> ProbeCost(bytes_per_probe, calls_measured, figure, min_bytes,
  max_bytes)`` from back-to-back readings of totalAlloc;
  ``compensated_rate(raw_rate, probes_in_window, window_s, probe_cost) -> float``;
  ``idle_windows(boundaries: N+1 samples, probes=None|[k per window], probe_cost=None) ->
  list[WindowRate] | None``; ``probes[i]`` = probe calls after window i's start reading up to and
  including its end reading (default 1);
  ``measure_idle(boundaries, probes=None, probe_cost=None, figure="totalAlloc", settle_s=None,
  subscriptions_open=None) -> IdleMeasurement | None`` (weakest = highest compensated rate;
  ``.raw_rate``, ``.compensated_rate``, ``.rate``, ``.windows``, ``.weakest``, ``.window_s``,
  ``.sites``); ``idle_sites(site_deltas, window_s) -> tuple[IdleSite(site, name, count, bytes, rate)]``.
Trends (``_trend``):
  ``theil_sen(ts, vs, confidence=0.95) -> TheilSen(slope, intercept, low, high, confidence, n)|None``;
  ``mann_kendall(vs, alpha=0.05) -> MannKendall(trend, p, z, tau, s, test, n, alpha)|None``
  (Hamed–Rao for n >= 10, original test for 3..9); ``trend(samples, figure) -> Trend|None``.
Allocation sites (``_sites``):
  ``parse_alloc_counters(raw_hook_result) -> tuple[AllocSite(site, name, count, bytes)]`` (ValueError);
  ``site_deltas(before, after) -> list[SiteDelta(site, name, count, bytes, total_count, total_bytes)]``;
  ``top_sites(deltas, n=10, by="bytes"|"count")``.
Assertions (``_verdict``: the framework; ``_assertions``: the shipped ones, each declared once):
  ``Assertion(name, summary, unit, thresholds: tuple[Threshold(key, default, doc)], measure,
  comparison="<", requires=None|"idle"|"thread"|"cycles", requires_text, reads, explain)``;
  ``register(assertion)``, ``ASSERTIONS`` (name -> Assertion), ``get_assertion(name)``,
  ``assertion_names()``, ``ASSERTION_NAMES`` (the shipped eight: idle_rate, heap_delta,
  heap_inuse_after_5min, dom_handles_max, subscriptions_closed_when_idle, thread_events_released,
  cycle_growth, cache_entries_bounded). ``measure(evidence, thresholds) -> Measured(value, detail) |
  NotMeasured(why)``; ``Assertion.judge(evidence, thresholds)``.
  ``Thresholds(**overrides)``: every registered key with the seed's defaults (``th.idle_rate_bps`` or
  ``th["idle_rate_bps"]``); ``.with_overrides(mapping)`` (``ThresholdError(key, msg)``),
  ``Thresholds.known_keys()``, ``.to_dict()``.
  ``Evidence(samples, initial, final, start_t, idle, idle_unavailable, idle_site_deltas,
  subscriptions_open_when_idle, subscriptions_detail, thread_closes, cycles, cycles_unavailable,
  cache_readings, cache_unavailable, alloc_log)``; ``ThreadClose(before_open, after_close, label)``.
  ``evaluate(evidence, thresholds=None, names=None) -> list[AssertionResult]``;
  ``AssertionResult(name, threshold, measured|None, unit, verdict, detail, comparison)``;
  ``Verdict.PASS|FAIL|UNAVAILABLE`` (str enum); ``overall_verdict(results)``.
Cycles and caches (``_cycles``):
  ``CycleReading(t, value, sites)``; ``cycle_growth(readings, warmup=1, ignore_sites=(),
  figure="heapInuse") -> CycleGrowth(figure, warmup, cycles, per_cycle_bytes, weakest, weakest_cycle,
  sites: tuple[CycleSite(site, name, per_cycle_bytes, min_bytes)], ignored, ignore_sites) | str``
  (the string says why it could not be measured); ``parse_cache_sizes(raw) ->
  tuple[CacheGroupSize(group, entries, limit, site)]`` (ValueError); ``cache_peaks(readings) ->
  tuple[CachePeak(group, site, limit, max_entries, max_t, final_entries)]``; ``cache_ratio(peak, default)``.
  Assertions ``cycle_growth`` (< ``cycle_growth_bytes``, default 4096 B/cycle) and
  ``cache_entries_bounded`` (entries / limit <= ``cache_limit_factor``, default 2; groups without a
  declared limit use ``cache_default_limit``, default 10000).
Comparing two runs (``_compare``): ``compare(base: Subject, new: Subject, tolerances=None) ->
  Comparison(base, new, rows: tuple[FigureChange], notes)`` (``Incomparable(reasons)`` when the
  scenario or dataset differ: ``identity_differences(base, new)``); ``Subject(identity: Identity(scenario,
  dataset_name, dataset_spec_sha256, dataset_sha256, app_mode, app_url, relaysim), assertions, idle,
  cycles, caches, thresholds)``; ``Change.REGRESSED|IMPROVED|SAME|NOT_COMPARED``; ``Tolerance(abs, rel)``
  (declared on each ``Assertion.tolerance``), ``tolerance_for(name, overrides)``,
  ``parse_tolerance("idle_rate=512,10%")``.
Soak trend verdicts (``_soak``; pure, judged by ``judge_*`` into AssertionResult, not registered here):
  ``analyze_soak(samples, events, window_s=600, confidence=0.95, warmup_s=300, settle_s=30,
  drop_fraction=0.5, probe_bytes=0) -> SoakAnalysis(hours, samples, start_t, end_t, restarts:
  tuple[Restart(t, before_t, heap_before, heap_after, evidence)], gaps: tuple[Gap(start_t, end_t,
  cause)], segments: tuple[Segment(index, begins, start_t, end_t, samples, heap: Trend, dom: Trend,
  plateau: Plateau)], alloc_rate: AllocRate(..., windows: tuple[RateWindow], lowest, ucb, why), ...)``;
  ``judge_alloc_rate / judge_heap_trend / judge_dom_trend / judge_heap_plateau /
  judge_restarts_per_hour(analysis, threshold)``, ``judge_soak(analysis, SoakThresholds)``;
  ``SOAK_ASSERTION_NAMES``; helpers ``idle_periods``, ``idle_alloc_rate``, ``rolling_rates``,
  ``segments``, ``find_restarts``, ``find_gaps``; optional figure ``APP_RESTARTS = "app_restarts"``.
"""

from relaysim.analysis import (
    _assertions,  # noqa: F401  (registers the shipped assertions)
    _assertions_browser,  # noqa: F401  (and the browser-level ones, after them)
)
from relaysim.analysis._compare import (
    Change,
    Comparison,
    FigureChange,
    Identity,
    Incomparable,
    Subject,
    compare,
    identity_differences,
    parse_tolerance,
    tolerance_for,
)
from relaysim.analysis._cycles import (
    CacheGroupSize,
    CachePeak,
    CycleGrowth,
    CycleReading,
    CycleSite,
    cache_peaks,
    cache_ratio,
    cycle_growth,
    parse_cache_sizes,
)
from relaysim.analysis._idle import (
    IdleMeasurement,
    IdleSite,
    ProbeCost,
    WindowRate,
    compensated_rate,
    idle_sites,
    idle_windows,
    measure_idle,
    measure_probe_cost,
)
from relaysim.analysis._isolates import (
    APP_MEMORY,
    ISOLATE_FIGURES,
    BrowserCycles,
    DetachedTree,
    GrowthHolder,
    IsolateReading,
    ListenerGroup,
    SnapshotSummary,
    WorkerReading,
    browser_cycles,
    retaining_path,
)
from relaysim.analysis._samples import (
    DOM_HANDLES,
    FIGURES,
    HEAP_INUSE,
    JS_HEAP_USED,
    LISTENERS,
    MALLOCS,
    NODES,
    RELAY_SUBSCRIPTIONS,
    SYS,
    THREAD_EVENTS,
    TOTAL_ALLOC,
    UASM_BYTES,
    WASM_MEMORY_BYTES,
    CounterReset,
    DomHandles,
    Sample,
    SamplingCost,
    Unavailable,
    dom_handles,
    figure_delta,
    rate,
    values,
)
from relaysim.analysis._sites import AllocSite, SiteDelta, parse_alloc_counters, site_deltas, top_sites
from relaysim.analysis._soak import (
    APP_RESTARTS,
    SOAK_ASSERTION_NAMES,
    AllocRate,
    Gap,
    IdlePeriod,
    Plateau,
    RateWindow,
    Restart,
    Segment,
    SoakAnalysis,
    SoakThresholds,
    analyze_soak,
    find_gaps,
    find_restarts,
    idle_alloc_rate,
    idle_periods,
    judge_alloc_rate,
    judge_dom_trend,
    judge_heap_plateau,
    judge_heap_trend,
    judge_restarts_per_hour,
    judge_soak,
    rolling_rates,
    segments,
)
from relaysim.analysis._trend import MannKendall, TheilSen, Trend, mann_kendall, theil_sen, trend
from relaysim.analysis._verdict import (
    ASSERTIONS,
    Assertion,
    AssertionResult,
    Evidence,
    Measured,
    NotMeasured,
    ThreadClose,
    Threshold,
    ThresholdError,
    Thresholds,
    Tolerance,
    Verdict,
    assertion_names,
    evaluate,
    get_assertion,
    overall_verdict,
    register,
)

ASSERTION_NAMES: tuple[str, ...] = assertion_names()
"""The shipped assertions' names, in report order (:func:`assertion_names` includes later registrations)."""

__all__ = [
    "ASSERTIONS",
    "ASSERTION_NAMES",
    "DOM_HANDLES",
    "FIGURES",
    "HEAP_INUSE",
    "JS_HEAP_USED",
    "LISTENERS",
    "MALLOCS",
    "NODES",
    "RELAY_SUBSCRIPTIONS",
    "SYS",
    "THREAD_EVENTS",
    "TOTAL_ALLOC",
    "UASM_BYTES",
    "WASM_MEMORY_BYTES",
    "AllocSite",
    "Assertion",
    "AssertionResult",
    "CacheGroupSize",
    "CachePeak",
    "CounterReset",
    "CycleGrowth",
    "CycleReading",
    "CycleSite",
    "DomHandles",
    "Evidence",
    "IdleMeasurement",
    "IdleSite",
    "MannKendall",
    "Measured",
    "NotMeasured",
    "ProbeCost",
    "Sample",
    "SamplingCost",
    "SiteDelta",
    "TheilSen",
    "ThreadClose",
    "Threshold",
    "ThresholdError",
    "Thresholds",
    "Tolerance",
    "Trend",
    "Unavailable",
    "Verdict",
    "WindowRate",
    "assertion_names",
    "cache_peaks",
    "cache_ratio",
    "compensated_rate",
    "cycle_growth",
    "dom_handles",
    "evaluate",
    "figure_delta",
    "get_assertion",
    "idle_sites",
    "idle_windows",
    "mann_kendall",
    "measure_idle",
    "measure_probe_cost",
    "overall_verdict",
    "parse_alloc_counters",
    "parse_cache_sizes",
    "rate",
    "register",
    "site_deltas",
    "theil_sen",
    "top_sites",
    "trend",
    "values",
]

__all__ += [  # browser-level readings of every isolate (_isolates)
    "APP_MEMORY",
    "ISOLATE_FIGURES",
    "BrowserCycles",
    "DetachedTree",
    "GrowthHolder",
    "IsolateReading",
    "ListenerGroup",
    "SnapshotSummary",
    "WorkerReading",
    "browser_cycles",
    "retaining_path",
]

__all__ += [  # the soak trend verdicts (_soak)
    "APP_RESTARTS",
    "SOAK_ASSERTION_NAMES",
    "AllocRate",
    "Gap",
    "IdlePeriod",
    "Plateau",
    "RateWindow",
    "Restart",
    "Segment",
    "SoakAnalysis",
    "SoakThresholds",
    "analyze_soak",
    "find_gaps",
    "find_restarts",
    "idle_alloc_rate",
    "idle_periods",
    "judge_alloc_rate",
    "judge_dom_trend",
    "judge_heap_plateau",
    "judge_heap_trend",
    "judge_restarts_per_hour",
    "judge_soak",
    "rolling_rates",
    "segments",
]

__all__ += [  # comparing two runs (_compare)
    "Change",
    "Comparison",
    "FigureChange",
    "Identity",
    "Incomparable",
    "Subject",
    "compare",
    "identity_differences",
    "parse_tolerance",
    "tolerance_for",
]
