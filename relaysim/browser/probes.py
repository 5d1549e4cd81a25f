"""Reading memory figures out of a page: the app's hooks, the browser's own counters.

Theory of operation. A sample must be cheap and must not disturb what it measures, so every app hook is
read in **one** ``execute_script`` round trip (:data:`PROBE_JS`): the script calls each hook that exists,
awaits the Promises, converts BigInts (WebDriver cannot carry them) and reports which hooks are missing or
threw. Browser-level figures come from CDP on the page target (``Performance.getMetrics`` after
``Performance.enable``; ``Memory.getDOMCounters``) and, when the page is cross-origin isolated, from
``performance.measureUserAgentSpecificMemory()``. A figure that cannot be read is listed in
``unavailable`` with the reason; it is never replaced by a guess.

``Memory.prepareForLeakDetection`` is deliberately never called: it terminates workers, and the app under
test lives in a Worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relaysim import analysis
from relaysim.analysis import ProbeCost, Unavailable
from relaysim.browser.drivers import BrowserSession, CdpUnavailable

__all__ = [
    "HOOK_FIGURES",
    "PROBE_JS",
    "STATE_HOOK",
    "AppSample",
    "BrowserFigures",
    "Unavailable",
    "call_close_all",
    "measure_probe_cost",
    "probe_cost_readings",
    "read_app",
    "read_browser_figures",
]

# hook name -> the figures it gives; used to say *which* figure a missing hook costs us.
HOOK_FIGURES: dict[str, tuple[str, ...]] = {
    "__moxie_mem_stats": ("totalAlloc", "mallocs", "heapInuse", "sys"),
    "__moxie_read_alloc_counters": ("alloc_sites",),
    "__moxie_dom_handles": ("dom_handles",),
    "__moxie_alloc_log": ("alloc_log",),
    "__moxie_close_all": ("close_all",),
    "__moxie_cache_sizes": ("cache_sizes",),
}
# Not a moxie hook: the reference client's own state (page, threadEvents); absent in other apps.
STATE_HOOK = "__relaysim_app_state"

# One round trip. arguments[0] = how many __moxie_alloc_log records the caller already has.
PROBE_JS = r"""
const logFrom = arguments[0] | 0;
const w = window;
const plain = (v) => JSON.parse(JSON.stringify(v, (k, x) => typeof x === 'bigint' ? Number(x) : x));
const r = {perf: performance.now(), origin: performance.timeOrigin, missing: [], errors: {}};
const call = async (name) => {
  const f = w[name];
  if (typeof f !== 'function') { r.missing.push(name); return undefined; }
  try {
    let v = await f();
    if (typeof v === 'string') { try { v = JSON.parse(v); } catch (e) { /* keep the string */ } }
    return plain(v);
  } catch (e) { r.errors[name] = String(e && e.message || e); return undefined; }
};
return (async () => {
  r.mem = await call('__moxie_mem_stats');
  r.sites = await call('__moxie_read_alloc_counters');
  r.handles = await call('__moxie_dom_handles');
  r.caches = await call('__moxie_cache_sizes');
  if (typeof w.__moxie_close_all !== 'function') r.missing.push('__moxie_close_all');
  if (typeof w.__relaysim_app_state === 'function') {
    try { r.state = plain(await w.__relaysim_app_state()); }
    catch (e) { r.errors.__relaysim_app_state = String(e); }
  }
  const log = w.__moxie_alloc_log;
  if (Array.isArray(log)) { r.logLength = log.length; r.log = plain(log.slice(logFrom)); }
  else r.missing.push('__moxie_alloc_log');
  r.coi = !!w.crossOriginIsolated;
  if (performance.memory) r.jsHeap = {used: performance.memory.usedJSHeapSize,
                                       total: performance.memory.totalJSHeapSize};
  r.perfEnd = performance.now();
  return r;
})();
"""

# Back-to-back probes inside the page: arguments[0] = count. Each iteration is the full hook set, and its
# mem_stats read is the measurement, so consecutive totalAlloc differences are the cost of one probe.
PROBE_COST_JS = r"""
const n = arguments[0] | 0;
const w = window;
const plain = (v) => JSON.parse(JSON.stringify(v, (k, x) => typeof x === 'bigint' ? Number(x) : x));
if (typeof w.__moxie_mem_stats !== 'function') return null;
return (async () => {
  const totals = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    let m = await w.__moxie_mem_stats();
    if (typeof m === 'string') m = JSON.parse(m);
    m = plain(m);
    if (typeof w.__moxie_read_alloc_counters === 'function') await w.__moxie_read_alloc_counters();
    if (typeof w.__moxie_dom_handles === 'function') await w.__moxie_dom_handles();
    if (typeof w.__moxie_cache_sizes === 'function') await w.__moxie_cache_sizes();
    if (typeof w.__relaysim_app_state === 'function') await w.__relaysim_app_state();
    totals.push(m.totalAlloc);
  }
  return {totals: totals, ms: performance.now() - t0};
})();
"""

CLOSE_ALL_JS = r"""
if (typeof window.__moxie_close_all !== 'function') return false;
return Promise.resolve(window.__moxie_close_all()).then(() => true);
"""

MEASURE_MEMORY_JS = r"""
if (!window.crossOriginIsolated) return {unavailable: 'the page is not cross-origin isolated (COOP/COEP)'};
if (!performance.measureUserAgentSpecificMemory) return {unavailable: 'not in this browser'};
return performance.measureUserAgentSpecificMemory().then((m) => ({
  bytes: m.bytes,
  breakdown: m.breakdown.filter((b) => b.bytes > 0).map((b) => ({
    bytes: b.bytes, types: b.types,
    scopes: b.attribution.map((a) => a.scope || '')}))
}));
"""


@dataclass(frozen=True)
class AppSample:
    """One reading of the app's hooks; ``t`` is the page's own clock in seconds (timeOrigin + now)."""

    t: float
    mem: dict[str, float] | None
    sites: list[dict[str, Any]] | None
    handles: int | None
    missing: tuple[str, ...]
    errors: dict[str, str]
    log: list[dict[str, Any]] = field(default_factory=list)
    log_length: int = 0
    cross_origin_isolated: bool = False
    js_heap: dict[str, float] | None = None
    page_ms: float = 0.0
    state: dict[str, Any] | None = None
    caches: list[dict[str, Any]] | None = None

    @property
    def thread_events(self) -> int | None:
        """Live threadEvents entries, when the app's state reports them."""
        if not self.state:
            return None
        value = self.state.get("threadEvents", self.state.get("thread_events"))
        caches = self.state.get("caches")
        if value is None and isinstance(caches, dict):
            value = caches.get("threadEvents")
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    @property
    def total_alloc(self) -> float | None:
        return None if self.mem is None else self.mem.get("totalAlloc")

    def unavailable(self) -> list[Unavailable]:
        out: list[Unavailable] = []
        for hook in self.missing:
            out.extend(
                Unavailable(fig, f"hook missing: {hook}", missing_hook=hook)
                for fig in HOOK_FIGURES.get(hook, (hook,))
            )
        for hook, error in self.errors.items():
            figures = HOOK_FIGURES.get(hook, (hook,))
            out.extend(Unavailable(fig, f"hook {hook} threw: {error}") for fig in figures)
        return out


def read_app(session: BrowserSession, log_from: int = 0) -> AppSample:
    """All app hooks in one round trip."""
    r = session.driver.execute_script(PROBE_JS, log_from)
    sites = r.get("sites")
    return AppSample(
        t=(r["origin"] + r["perf"]) / 1000.0,
        mem=r.get("mem") if isinstance(r.get("mem"), dict) else None,
        sites=sites if isinstance(sites, list) else None,
        handles=int(r["handles"]) if isinstance(r.get("handles"), int | float) else None,
        missing=tuple(r.get("missing", ())),
        errors=dict(r.get("errors") or {}),
        log=list(r.get("log") or []),
        log_length=int(r.get("logLength") or 0),
        cross_origin_isolated=bool(r.get("coi")),
        js_heap=r.get("jsHeap"),
        page_ms=float(r.get("perfEnd", 0)) - float(r.get("perf", 0)),
        state=r.get("state") if isinstance(r.get("state"), dict) else None,
        caches=r.get("caches") if isinstance(r.get("caches"), list) else None,
    )


def call_close_all(session: BrowserSession) -> bool:
    """Ask the app to CLOSE every subscription; False when it has no ``__moxie_close_all`` hook."""
    return bool(session.driver.execute_script(CLOSE_ALL_JS))


@dataclass(frozen=True)
class BrowserFigures:
    """The browser's own view of the page (CDP and measureUserAgentSpecificMemory), each possibly absent."""

    metrics: dict[str, float] | None
    dom_counters: dict[str, int] | None
    ua_memory: dict[str, Any] | None
    unavailable: tuple[Unavailable, ...]

    def to_dict(self) -> dict[str, Any]:
        keep = ("JSHeapUsedSize", "JSHeapTotalSize", "Nodes", "JSEventListeners", "Documents", "Frames")
        return {
            "metrics": None if self.metrics is None else {k: v for k, v in self.metrics.items() if k in keep},
            "dom_counters": self.dom_counters,
            "ua_memory_bytes": None if self.ua_memory is None else self.ua_memory.get("bytes"),
            "ua_memory_breakdown": None if self.ua_memory is None else self.ua_memory.get("breakdown"),
            "unavailable": [u.to_dict() for u in self.unavailable],
        }


def enable_metrics(session: BrowserSession) -> bool:
    """``Performance.enable`` once per page load: getMetrics answers an empty list without it."""
    try:
        session.cdp("Performance.enable")
        return True
    except CdpUnavailable:
        return False


def read_metrics(session: BrowserSession) -> dict[str, float] | None:
    """``Performance.getMetrics`` as a dict, or None without CDP (one round trip)."""
    try:
        got = session.cdp("Performance.getMetrics")
    except CdpUnavailable:
        return None
    return {m["name"]: m["value"] for m in got.get("metrics", [])} or None


def read_browser_figures(session: BrowserSession, *, ua_memory: bool = True) -> BrowserFigures:
    """CDP counters plus measureUserAgentSpecificMemory (when cross-origin isolated); gaps are listed."""
    missing: list[Unavailable] = []
    metrics = dom = None
    if session.has_cdp:
        enable_metrics(session)
        metrics = read_metrics(session)
        if metrics is None:
            missing.append(Unavailable("cdp_metrics", "Performance.getMetrics returned nothing"))
        try:
            dom = session.cdp("Memory.getDOMCounters")
        except Exception as exc:
            missing.append(Unavailable("dom_counters", f"Memory.getDOMCounters failed: {exc}"))
    else:
        missing.append(Unavailable("cdp_metrics", f"no CDP in a {session.kind} session"))
        missing.append(Unavailable("dom_counters", f"no CDP in a {session.kind} session"))
    measured = None
    if ua_memory:
        measured = session.driver.execute_script(MEASURE_MEMORY_JS)
        if measured is None or "unavailable" in measured:
            why = "unknown" if measured is None else measured["unavailable"]
            missing.append(Unavailable("ua_memory", f"measureUserAgentSpecificMemory: {why}"))
            measured = None
    return BrowserFigures(metrics, dom, measured, tuple(missing))


def probe_cost_readings(session: BrowserSession, calls: int = 20) -> tuple[list[float], float] | None:
    """``calls`` back-to-back readings of totalAlloc, each after a full probe, and the in-page ms per probe.

    ``None`` when the app has no ``__moxie_mem_stats``. Every gap between two readings holds exactly
    one probe's allocation, which :func:`relaysim.analysis.measure_probe_cost` turns into bytes per probe.
    """
    got = session.driver.execute_script(PROBE_COST_JS, calls)
    if not got:
        return None
    totals = [float(x) for x in got["totals"]]
    return totals, float(got["ms"]) / max(1, len(totals))


def measure_probe_cost(session: BrowserSession, calls: int = 20) -> ProbeCost | None:
    """The probe's own allocation cost in the app's heap, or None without ``__moxie_mem_stats``."""
    got = probe_cost_readings(session, calls)
    if got is None:
        return None
    return analysis.measure_probe_cost(got[0])
