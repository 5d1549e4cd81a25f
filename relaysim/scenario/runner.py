"""Run a scenario: drive the app through its adapter, sample throughout, judge, report.

Theory of operation. :class:`ScenarioRunner` is given live things -- a browser session, a relay (anything
with ``stats()``, ``close_subscriptions()``, ``wait_idle()``), the app's URL and its adapter -- and walks
``scenario.expanded()`` with one ``match`` per step class. A sample is taken after every step and every
``sample_interval`` seconds while a step waits, so the timeline covers the whole run. Evidence for the
assertions (:class:`relaysim.analysis.Evidence`) is gathered as the steps go: the timeline, the idle
measurement, the relay's open-subscription count at idle, and the samples around each thread that was
opened and then left. ``assert`` steps judge what has been gathered so far; a scenario without any judges
every assertion at the end.

:func:`run` is the shell around it used by the CLI: it resolves ``--app`` (``builtin``, ``builtin?leaks=...``,
a URL or a directory), starts the relay (unless ``--relay-url``) and the browser, runs, and writes the
report and the timeline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from relaysim import analysis as an
from relaysim.analysis import AssertionResult, Evidence, Sample, ThreadClose, Verdict
from relaysim.browser import BrowserSession, BrowserSpec, Sampler, open_browser
from relaysim.browser.idle import IdleOutcome, RelayLike, close_everything, run_idle_protocol
from relaysim.browser.probes import probe_cost_readings, read_browser_figures
from relaysim.errors import UsageError
from relaysim.scenario import model as m
from relaysim.scenario.adapters import Adapter, load_adapter, parse_adapter

__all__ = ["AppTarget", "RunOptions", "RunResult", "ScenarioRunner", "generic_adapter", "resolve_app", "run"]

GENERIC_READY = "return document.readyState === 'complete'"


def generic_adapter() -> Adapter:
    """The adapter for an app relaysim knows nothing about: wait for the page to load, no actions."""
    return parse_adapter({"name": "generic", "ready": GENERIC_READY, "ready_timeout": 20}, "<generic>")


@dataclass(frozen=True)
class AppTarget:
    """Where the app comes from: ``builtin`` (the relay serves the reference client), ``url``, or ``dir``."""

    kind: str
    spec: str
    query: str = ""
    url: str | None = None
    static_dir: Path | None = None

    def page_url(self, relay_http_url: str | None) -> str:
        if self.kind == "url":
            return self.url or self.spec
        if relay_http_url is None:
            raise UsageError(f"--app {self.spec} needs a relay that serves it (no --relay-url for a DIR app)")
        base = relay_http_url.rstrip("/") + "/"
        return base + (f"?{self.query}" if self.query else "")


def resolve_app(spec: str) -> AppTarget:
    """``builtin`` / ``builtin?leaks=idle`` / ``http(s)://...`` / an existing directory."""
    if spec == "builtin" or spec.startswith("builtin?"):
        return AppTarget("builtin", spec, query=spec.partition("?")[2])
    if urlsplit(spec).scheme in ("http", "https"):
        return AppTarget("url", spec, url=spec)
    path = Path(spec)
    if path.is_dir():
        return AppTarget("dir", spec, static_dir=path.resolve())
    raise UsageError(f"--app {spec!r} is neither builtin, builtin?QUERY, an http(s) URL nor a directory")


@dataclass
class StepRecord:
    index: int
    kind: str
    line: int | None
    seconds: float
    detail: str = ""
    start_s: float = 0.0


@dataclass
class RunResult:
    """Everything a run measured; :meth:`report` turns it into the JSON report."""

    scenario: m.Scenario
    app: str
    page_url: str
    results: dict[str, AssertionResult] = field(default_factory=dict)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    idle: list[IdleOutcome] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    probe_cost: an.ProbeCost | None = None
    probe_ms: float | None = None
    sampler_cost: dict[str, Any] = field(default_factory=dict)
    initial_browser: dict[str, Any] | None = None
    final_browser: dict[str, Any] | None = None
    initial_sites: list[dict[str, Any]] | None = None
    final_sites: list[dict[str, Any]] | None = None
    unavailable: list[dict[str, str]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    relay_stats: dict[str, Any] | None = None
    alloc_log: list[dict[str, Any]] = field(default_factory=list)
    thread_closes: list[ThreadClose] = field(default_factory=list)
    cycle_readings: list[an.CycleReading] = field(default_factory=list)
    cycles: an.CycleGrowth | None = None
    cache_readings: list[tuple[float, tuple[an.CacheGroupSize, ...]]] = field(default_factory=list)
    seconds: float = 0.0
    started_at: float = 0.0
    timeline: Path | None = None

    @property
    def verdict(self) -> Verdict:
        return an.overall_verdict(self.results.values())

    @property
    def exit_code(self) -> int:
        """0 when nothing failed (UNAVAILABLE is reported, not failed), 1 when an assertion failed."""
        return 1 if self.verdict == Verdict.FAIL else 0

    def report(self) -> Any:
        """The :class:`relaysim.report.Report` of this run."""
        return build_report(self)


class ScenarioRunner:
    """Walks a scenario's steps against a live browser session, relay and app (see module docstring)."""

    def __init__(
        self,
        scenario: m.Scenario,
        session: BrowserSession,
        relay: RelayLike | None,
        page_url: str,
        adapter: Adapter,
        *,
        app: str = "builtin",
        idle_window: float | None = None,
        idle_windows: int | None = None,
        idle_settle: float | None = None,
        on_sample: Callable[[Sample, str], None] | None = None,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        traffic: Any = None,
    ) -> None:
        self.scenario = scenario
        self.session = session
        self.relay = relay
        self.page_url = page_url
        self.adapter = adapter
        self.idle_window = idle_window
        self.idle_windows = idle_windows
        self.idle_settle = idle_settle
        self.traffic = traffic
        self.on_record = on_record
        relay_figures = self._relay_figures if relay is not None else None
        self.sampler = Sampler(
            session, interval=scenario.sample_interval, relay_figures=relay_figures, on_sample=on_sample
        )
        self.result = RunResult(scenario, app, page_url)
        self._thread_open: Sample | None = None
        self._thread_label = ""
        self._page = ""
        self._subs_open_when_idle: int | None = None

    # -- relay figures ------------------------------------------------------------------------------

    def _relay_figures(self) -> dict[str, float | int | None]:
        assert self.relay is not None
        totals = self.relay.stats().get("totals", {})
        return {
            an.RELAY_SUBSCRIPTIONS: totals.get("subscriptions_active"),
            "relay_events_sent": totals.get("events_sent"),
            "relay_bytes_sent": totals.get("bytes_sent"),
        }

    # -- the run ------------------------------------------------------------------------------------

    def run(self) -> RunResult:
        res = self.result
        res.started_at = time.time()
        began = time.monotonic()
        res.environment = self.session.environment()
        self.session.driver.get(self.page_url)
        self.adapter.wait_ready(self.session.driver)
        # The seed's threshold log (__moxie_alloc_log) is written only while this flag is on.
        self.session.driver.execute_script("window.__moxie_instrument = true")
        self.sampler.page_loaded()
        self._page = "feed"
        readings = probe_cost_readings(self.session, max(2, self.scenario.probe_calls))
        if readings is not None:
            res.probe_cost = an.measure_probe_cost(readings[0])
            res.probe_ms = readings[1]
        figures = read_browser_figures(self.session)
        res.initial_browser = figures.to_dict()
        first = self.sampler.sample("start")
        app = self.sampler.last
        assert app is not None
        res.initial_sites = app.sites
        missing = [*app.unavailable(), *figures.unavailable]
        res.unavailable = [u.to_dict() for u in missing]
        self._start_t = first.t
        self._began = began
        self._run_steps(self.scenario.steps, 0)
        if not any(isinstance(s, m.Assert) for s in self.scenario.walk()):
            self._judge(an.ASSERTION_NAMES, "end")
        self.sampler.sample("end")
        app = self.sampler.last
        res.final_sites = app.sites if app else None
        res.final_browser = read_browser_figures(self.session).to_dict()
        res.samples = self.sampler.samples
        res.phases = self.sampler.phases
        res.sampler_cost = self.sampler.cost()
        res.alloc_log = self.sampler.alloc_log
        res.relay_stats = self.relay.stats() if self.relay is not None else None
        res.cycles = self._cycles()[0]
        res.cache_readings = list(self.sampler.cache_readings)
        res.seconds = time.monotonic() - began
        return res

    def _run_steps(self, steps: tuple[m.Step, ...], iteration: int) -> None:
        """Run ``steps`` in order; a repeat runs its body ``times`` times (``k_step`` applied per pass)
        and, when it is marked ``measure_cycles``, reads the probes before the first pass and after each."""
        for step in steps:
            if isinstance(step, m.Repeat):
                if step.measure_cycles:
                    self._cycle_reading("cycle-start")
                for i in range(step.times):
                    self._run_steps(step.steps, i)
                    if step.measure_cycles:
                        self._cycle_reading("cycle-end")
                continue
            step = m.at_iteration(step, iteration)
            t0 = time.monotonic()
            detail = self._do(step) or ""
            record = StepRecord(
                len(self.result.steps), step.KIND, step.line, time.monotonic() - t0, detail, t0 - self._began
            )
            self.result.steps.append(record)
            if self.on_record is not None:
                self.on_record({"type": "step", **dataclasses.asdict(record)})

    def _cycle_reading(self, phase: str) -> None:
        """One reading at a cycle boundary: heapInuse and the per-site counters, same round trip."""
        sample = self.sampler.sample(phase)
        app = self.sampler.last
        sites = _parsed_sites(app.sites) if app is not None else None
        self.result.cycle_readings.append(an.CycleReading(sample.t, sample.get(an.HEAP_INUSE), sites))

    def _cycles(self) -> tuple[an.CycleGrowth | None, str | None]:
        rep = self.scenario.measured_repeat
        if rep is None:
            return None, None
        got = an.cycle_growth(self.result.cycle_readings, rep.warmup, rep.ignore_sites, an.HEAP_INUSE)
        return (None, got) if isinstance(got, str) else (got, None)

    def _evidence(self) -> Evidence:
        idle = self.result.idle[-1] if self.result.idle else None
        cycles, cycles_why = self._cycles()
        cache_why = self.sampler.cache_error
        if cache_why is None and not self.sampler.cache_readings:
            last = self.sampler.last
            cache_why = (
                "app lacks __moxie_cache_sizes()" if last is None or "__moxie_cache_sizes" in last.missing
                else "__moxie_cache_sizes() " + last.errors.get("__moxie_cache_sizes", "gave nothing")
            )
        return Evidence(
            samples=tuple(self.sampler.samples),
            start_t=self._start_t,
            idle=idle.measurement if idle else None,
            idle_unavailable=idle.unavailable if idle else None,
            subscriptions_open_when_idle=self._subs_open_when_idle,
            thread_closes=tuple(self.result.thread_closes),
            cycles=cycles,
            cycles_unavailable=cycles_why,
            cache_readings=tuple(self.sampler.cache_readings),
            cache_unavailable=cache_why,
        )

    def _judge(self, names: tuple[str, ...], where: str) -> str:
        if names == ("all",):
            names = an.ASSERTION_NAMES
        judged = an.evaluate(self._evidence(), self.scenario.thresholds, names)
        results = [self._with_sites(r) for r in judged]
        for r in results:
            self.result.results[r.name] = r
        self.result.checkpoints.append({"at": where, "results": [_result_dict(r) for r in results]})
        return ", ".join(f"{r.name} {r.verdict}" for r in results)

    def _with_sites(self, r: AssertionResult) -> AssertionResult:
        """A failing idle rate names the allocation sites that grew during the idle window; a failing
        subscription check names the subscriptions the relay still held; a failing handle count the
        handle table's threshold records."""
        if r.name == "dom_handles_max" and r.verdict == Verdict.FAIL:
            # the seed's threshold log names the table that grew and when it crossed each mark
            marks = [str(x.get("value")) for x in self.sampler.alloc_log if x.get("source") == "dom"]
            if marks:
                return dataclasses.replace(
                    r, detail=f"{r.detail}; __moxie_alloc_log: dom _elements.size reached {', '.join(marks)}"
                )
        if r.name == "subscriptions_closed_when_idle" and r.verdict == Verdict.FAIL and self.result.idle:
            held = self.result.idle[-1].open_detail
            return dataclasses.replace(r, detail=f"{r.detail}: {held}") if held else r
        if r.name != "idle_rate" or r.verdict != Verdict.FAIL or not self.result.idle:
            return r
        grown = an.top_sites(self.result.idle[-1].site_deltas, n=3, by="bytes")
        if not grown:
            return r
        sites = ", ".join(f"{d.name} +{d.bytes:,} B" for d in grown)
        return dataclasses.replace(r, detail=f"{r.detail}; grew while idle: {sites}")

    def _act(self, action: str, arg: Any = None) -> None:
        self.adapter.perform(self.session.driver, action, arg)

    def _left_page(self, new_page: str) -> None:
        """Called after every navigation: closes a pending thread observation when the thread was left."""
        if self._thread_open is not None and new_page != "thread":
            after = self.sampler.sample("thread-closed")
            self.result.thread_closes.append(ThreadClose(self._thread_open, after, self._thread_label))
            self._thread_open = None
        elif self._thread_open is None and new_page == "thread" and self.sampler.samples:
            # Back into a thread (from a profile opened inside it): its next close counts too.
            self._thread_open, self._thread_label = self.sampler.samples[-1], "thread (returned to)"
        self._page = new_page

    def _open_thread(self, k: int | str) -> None:
        before = self.sampler.sample("before-thread")
        self._act("open_thread", k)
        if self._thread_open is None:
            self._thread_open, self._thread_label = before, f"thread {k}"
        self._page = "thread"

    def _do(self, step: m.Step) -> str | None:
        s = self.sampler
        match step:
            case m.Open(page="thread", arg=arg):
                self._open_thread(0 if arg is None else arg)
            case m.Open(page="profile", arg=arg):
                # no argument: the viewer's own profile (the nav button) when the adapter has it
                if arg is None and self.adapter.supports("profile"):
                    self._act("profile")
                else:
                    self._act("open_profile", 0 if arg is None else arg)
                self._left_page("profile")
            case m.Open(page=page):
                self._act(page)
                self._left_page(page)
            case m.Feed():
                self._act("feed")
                self._left_page("feed")
            case m.Notifications():
                self._act("notifications")
                self._left_page("notifications")
            case m.OpenThread(k=k):
                self._open_thread(k)
            case m.OpenProfile(k=k, from_thread=from_thread):
                self._act("open_profile_from_thread" if from_thread else "open_profile", k)
                self._left_page("profile")
            case m.Back(n=n):
                pages = []
                for _ in range(n):  # one at a time: each page passed through is seen (a thread, say)
                    self._act("back")
                    s.sample("back")
                    pages.append(self._current_page())
                    self._left_page(pages[-1])
                return "back to " + " -> ".join(pages)
            case m.Scroll(n=n, pause=pause):
                for _ in range(n):
                    self._act("scroll")
                    s.run_for(pause, "scroll")
                return None
            case m.Wait(seconds=seconds):
                s.run_for(seconds, "wait")
                return None
            case m.SampleInterval(interval=interval):
                s.interval = interval
                return None
            case m.Traffic():
                return self._traffic(step)
            case m.CloseAll():
                if self.relay is None:
                    raise UsageError("close_all needs a relay to check (none attached)")
                return f"closed by {close_everything(self.session, self.relay)}"
            case m.MeasureIdle(settle=settle, window=window, windows=windows):
                return self._measure_idle(settle, window, windows)
            case m.Assert(names=names):
                return self._judge(tuple(names), f"step {step.line}")
            case _:
                raise UsageError(f"the runner cannot do step {step.KIND!r}")
        s.sample(step.KIND)
        return None

    def _current_page(self) -> str:
        state = self.sampler.last.state if self.sampler.last else None
        if state and isinstance(state.get("page"), str):
            return state["page"]
        return "unknown"

    def _traffic(self, step: m.Traffic) -> str:
        control = self.traffic
        if control is None:
            raise UsageError("this run has no traffic control (a --relay-url relay cannot be driven)")
        if step.mode == "on":
            control.resume()  # the generator's rates are set when the relay starts (see open_relay)
        elif step.mode == "off":
            control.pause()
        else:
            control.burst(step.kind, step.n or 1)
        self.sampler.sample("traffic")
        return f"traffic {step.mode}"

    def _measure_idle(self, settle: float, window: float, windows: int) -> str:
        if self.relay is None:
            raise UsageError("measure_idle needs a relay to check (none attached)")
        outcome = run_idle_protocol(
            self.session,
            self.sampler,
            self.relay,
            window=self.idle_window if self.idle_window is not None else window,
            windows=self.idle_windows if self.idle_windows is not None else windows,
            settle=self.idle_settle if self.idle_settle is not None else settle,
            probe_cost=self.result.probe_cost,
        )
        self.result.idle.append(outcome)
        self._subs_open_when_idle = outcome.subscriptions_open
        if outcome.measurement is None:
            return f"idle not measured: {outcome.unavailable}"
        return f"idle {outcome.measurement.rate:.1f} B/s (raw {outcome.measurement.raw_rate:.1f})"


def _result_dict(r: AssertionResult) -> dict[str, Any]:
    return {
        "name": r.name,
        "threshold": r.threshold,
        "comparison": r.comparison,
        "measured": r.measured,
        "unit": r.unit,
        "verdict": str(r.verdict),
        "detail": r.detail,
    }


@dataclass
class RunOptions:
    """The CLI's choices; None = the scenario's (or the default)."""

    app: str | None = None
    browser: BrowserSpec = field(default_factory=BrowserSpec)
    relay_url: str | None = None
    adapter: str | None = None
    idle_window: float | None = None
    idle_windows: int | None = None
    idle_settle: float | None = None
    timeline: Path | None = None
    report: Path | None = None


@contextlib.contextmanager
def open_relay(target: AppTarget, scenario: m.Scenario, relay_url: str | None) -> Iterator[Any]:
    """The relay for a run: a local :class:`~relaysim.relay.SyncRelay`, or an HTTP handle on ``relay_url``."""
    if relay_url is not None:
        from relaysim.browser.relay_http import RelayHttp

        yield RelayHttp(relay_url)
        return
    from relaysim.relay import SyncRelay

    kwargs: dict[str, Any] = {"dataset": scenario.dataset, "port": 0, "traffic_seed": scenario.seed}
    rates = scenario.traffic or next(
        (s.rates for s in scenario.walk() if isinstance(s, m.Traffic) and s.mode == "on" and s.rates), None
    )
    uses_traffic = any(isinstance(s, m.Traffic) for s in scenario.walk())
    if rates is not None:
        kwargs.update(traffic=rates, traffic_paused=scenario.traffic is None)
    elif uses_traffic:
        kwargs.update(traffic="notes=1/s", traffic_paused=True)  # bursts need a running generator
    if target.static_dir is not None:
        kwargs["static"] = target.static_dir
    with SyncRelay(**kwargs) as relay:
        yield relay


def run(scenario: m.Scenario, options: RunOptions) -> RunResult:
    """Start what the run needs, run ``scenario``, write the report and timeline; return the result."""
    target = resolve_app(options.app or scenario.app)
    if options.adapter:
        adapter = load_adapter(options.adapter)
    elif target.kind == "builtin":
        adapter = load_adapter("builtin")
    else:
        adapter = generic_adapter()
    with contextlib.ExitStack() as stack:
        relay = stack.enter_context(open_relay(target, scenario, options.relay_url))
        page_url = target.page_url(getattr(relay, "http_url", None))
        sink = None
        if options.timeline:
            from relaysim.report import TimelineWriter

            sink = stack.enter_context(TimelineWriter(options.timeline))
        session = stack.enter_context(open_browser(options.browser))
        runner = ScenarioRunner(
            scenario,
            session,
            relay,
            page_url,
            adapter,
            app=target.spec,
            idle_window=options.idle_window,
            idle_windows=options.idle_windows,
            idle_settle=options.idle_settle,
            on_sample=(lambda sample, phase: sink.append(sample)) if sink else None,
            on_record=sink.append if sink else None,
            traffic=getattr(relay, "traffic", None),
        )
        result = runner.run()
        result.timeline = options.timeline
    if options.report:
        from relaysim.report import write_report

        write_report(options.report, result.report())
    return result


# -- report and timeline --------------------------------------------------------------------------


def _iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parsed_sites(raw: list[dict[str, Any]] | None) -> tuple[an.AllocSite, ...] | None:
    if raw is None:
        return None
    try:
        return an.parse_alloc_counters(raw)
    except ValueError:
        return None


def idle_notes(outcome: IdleOutcome) -> list[str]:
    """Plain sentences for the report's ``notes``: who closed, what grew while idle, the slope."""
    notes = [f"idle: subscriptions closed by the {outcome.closed_by}"]
    if outcome.subscriptions_open:
        notes.append(f"idle: still subscribed when told to go idle: {outcome.open_detail}")
    if outcome.unavailable:
        notes.append(f"idle: {outcome.unavailable}")
    grown = an.top_sites(outcome.site_deltas, n=5, by="bytes")
    if grown:
        notes.append("idle: allocation sites that grew: " + ", ".join(
            f"{d.name} +{d.bytes:,} B in {d.count} allocations" for d in grown))
    elif outcome.measurement is not None and outcome.site_deltas:
        notes.append("idle: no allocation site grew")
    ts = outcome.trend.theil_sen if outcome.trend else None
    if ts is not None:
        notes.append(
            f"idle: Theil-Sen totalAlloc slope {ts.slope:.1f} B/s "
            f"({ts.confidence:.0%} CI {ts.low:.1f}..{ts.high:.1f}, n={ts.n})"
        )
    return notes


def build_report(res: RunResult) -> Any:
    """The run as a :class:`relaysim.report.Report` (schema documented in docs/report-schema.md)."""
    import platform

    import relaysim
    from relaysim import report as rp

    sc = res.scenario
    first = res.samples[0] if res.samples else Sample(t=0.0)
    last = res.samples[-1] if res.samples else first
    before, after = _parsed_sites(res.initial_sites), _parsed_sites(res.final_sites)
    totals = (res.relay_stats or {}).get("totals", {})
    env = res.environment
    relay_info = (res.relay_stats or {}).get("relay", {})
    steps = tuple(
        rp.StepTiming(index=st.index, kind=st.kind, line=st.line, start_s=round(st.start_s, 3),
                      duration_s=round(st.seconds, 3))
        for st in res.steps
    )
    cost = res.sampler_cost
    timing = rp.Timing(
        started_at=_iso(res.started_at),
        finished_at=_iso(res.started_at + res.seconds),
        duration_s=round(res.seconds, 3),
        steps=steps,
        sampling=rp.SamplingCost(
            samples=int(cost.get("samples") or 0),
            ms_per_sample=cost.get("ms_per_sample"),
            round_trips_per_sample=cost.get("round_trips_per_sample"),
        ),
    )
    notes: list[str] = []
    for outcome in res.idle:
        notes.extend(idle_notes(outcome))
    if res.probe_ms is not None and res.probe_cost is not None:
        per_call = f"{res.probe_cost.bytes_per_probe:g} B and {res.probe_ms:.3f} ms"
        notes.append(f"probe: {per_call} per call in the page")
    for label, figs in (("initial", res.initial_browser), ("final", res.final_browser)):
        if figs and figs.get("metrics"):
            m = figs["metrics"]
            notes.append(
                f"browser {label}: JSHeapUsedSize {m.get('JSHeapUsedSize')}, Nodes {m.get('Nodes')}, "
                f"JSEventListeners {m.get('JSEventListeners')}, measureUserAgentSpecificMemory "
                f"{figs.get('ua_memory_bytes')}"
            )
    held = [x for x in (smp.get(an.RELAY_SUBSCRIPTIONS) for smp in res.samples) if x is not None]
    if held:
        notes.append(f"relay: at most {max(held):g} subscriptions open at once during the run")
    if res.alloc_log:
        records = ", ".join(
            f"{r.get('source')}.{r.get('metric')}={r.get('value')}" for r in res.alloc_log[:20]
        )
        notes.append(f"alloc_log: {len(res.alloc_log)} threshold records: {records}")
    last_idle = res.idle[-1].measurement if res.idle else None
    query = res.page_url.partition("?")[2]
    return rp.Report(
        scenario=rp.ScenarioInfo(name=sc.name, path=sc.path, description=sc.description,
                                 thresholds=sc.thresholds.to_dict()),
        app=rp.AppInfo(
            url=res.page_url,
            mode=("external" if not res.app.startswith("builtin") else (query or "fixed")),
            hooks_missing=tuple(sorted({u["reason"].removeprefix("hook missing: ")
                                        for u in res.unavailable if u["reason"].startswith("hook missing")})),
        ),
        environment=rp.Environment(
            browser_name=env.get("browser_name"),
            browser_version=env.get("browser_version"),
            driver_version=env.get("driver_version"),
            webdriver_url=env.get("webdriver_url"),
            python=platform.python_version(),
            relaysim=relaysim.__version__,
            platform=platform.platform(),
            dataset_name=relay_info.get("dataset") or sc.dataset,
            dataset_sha256=relay_info.get("sha256"),
            seed=sc.seed,
        ),
        timing=timing,
        heap=rp.heap_figures(first, last, an.trend(res.samples, an.HEAP_INUSE)),
        assertions=tuple(res.results.values()),
        alloc_sites=rp.alloc_sites(before or (), after) if after is not None else None,
        dom_handles=an.dom_handles(res.samples),
        relay=rp.RelayFigures(
            subscriptions_opened=totals.get("subs_opened"),
            subscriptions_closed=totals.get("subs_closed"),
            subscriptions_open_at_end=totals.get("subscriptions_active"),
            events_pushed=totals.get("events_sent"),
            bytes_pushed=totals.get("bytes_sent"),
            connections=totals.get("connections_opened"),
        ) if res.relay_stats is not None else None,
        probe_cost=res.probe_cost,
        idle=last_idle,
        unavailable=tuple(rp.Unavailable(figure=u["figure"], reason=u["reason"]) for u in res.unavailable),
        samples=rp.bound_samples(res.samples) if len(res.samples) >= 2 else tuple(res.samples),
        cycles=res.cycles,
        caches=an.cache_peaks(res.cache_readings) if res.cache_readings else None,
        timeline=str(res.timeline) if res.timeline else None,
        notes=tuple(notes),
    )
