"""Run a scenario: drive the app through its adapter, sample throughout, judge, report.

Theory of operation. :class:`ScenarioRunner` is given live things -- a browser session, a relay (anything
with ``stats()``, ``close_subscriptions()``, ``wait_idle()``), the app's URL and its adapter -- and walks
:func:`relaysim.scenario.steps.expand` of the scenario's steps (repeats unrolled, cycle marks between the
passes of a measured repeat), calling each step's own ``run`` with itself as the step context. A sample
is taken after every step and every
``sample_interval`` seconds while a step waits, so the timeline covers the whole run. Evidence for the
assertions (:class:`relaysim.analysis.Evidence`) is gathered as the steps go: the timeline, the idle
measurement, the relay's open-subscription count at idle, and the samples around each thread that was
opened and then left. ``assert`` steps judge what has been gathered so far; a scenario without any judges
every assertion at the end.

:func:`run` is the shell around it used by the CLI: it resolves ``--app`` (``builtin``, ``builtin?leaks=...``,
a URL or a directory), starts the relay (unless ``--relay-url``) and the browser, runs, and writes the
report and the timeline.

The pieces live beside it, one job each: :mod:`._app` (the app target and the relay),
:mod:`._result` (what a run measured), :mod:`._cycles` (measured-cycle readings), :mod:`._judge`
(evidence) and :mod:`._assemble` (the report: :func:`build_report`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from relaysim import analysis as an
from relaysim.analysis import Sample, ThreadClose
from relaysim.browser import BrowserSession, BrowserSpec, Sampler, open_browser
from relaysim.browser.idle import RelayLike, run_idle_protocol
from relaysim.browser.probes import call_close_all, probe_cost_readings, read_browser_figures
from relaysim.errors import UsageError
from relaysim.report import TimelineWriter, write_report
from relaysim.scenario._app import GENERIC_READY as GENERIC_READY
from relaysim.scenario._app import AppTarget as AppTarget
from relaysim.scenario._app import adapter_for, resolve_app
from relaysim.scenario._app import generic_adapter as generic_adapter
from relaysim.scenario._app import open_relay as open_relay
from relaysim.scenario._assemble import build_report
from relaysim.scenario._cycles import measured_browser_growth, measured_growth, parsed_sites, read_cycle
from relaysim.scenario._faults import switch_faults
from relaysim.scenario._judge import gather_evidence
from relaysim.scenario._result import Checkpoint, RunResult, StepRecord
from relaysim.scenario._step import walk
from relaysim.scenario._subs_watch import SubscriptionWatch
from relaysim.scenario._visits import BrowsingObserver, re_spent_sites
from relaysim.scenario.adapters import Action as PageAction
from relaysim.scenario.adapters import Adapter, perform_action
from relaysim.scenario.model import Scenario
from relaysim.scenario.steps import Assert, CycleMark, expand

__all__ = [
    "AppTarget",
    "RunOptions",
    "RunResult",
    "ScenarioRunner",
    "build_report",
    "generic_adapter",
    "resolve_app",
    "run",
]


class ScenarioRunner:
    """Walks a scenario's steps against a live browser session, relay and app (see module docstring).

    It is the :class:`relaysim.scenario._step.StepContext` the steps run against: each step's ``run``
    calls back into :meth:`act`, :meth:`arrived`, :meth:`sample`, :meth:`measure_idle` and the rest.
    """

    def __init__(
        self,
        scenario: Scenario,
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
        on_step: Callable[[int, int, Any], None] | None = None,
        snapshots: bool = False,
    ) -> None:
        self.scenario = scenario
        self.session = session
        self.relay = relay
        self.page_url = page_url
        self.adapter = adapter
        self.idle_window = idle_window
        self.idle_windows = idle_windows
        self.idle_settle = idle_settle
        self.traffic_control = traffic
        self.on_record = on_record
        self.on_step = on_step  # (n, of N, step) before each step: progress displays
        # This run's connections only (a relay given by URL may serve others): subscriptions settled,
        # the most held at once, whether the page reached the relay (module _subs_watch).
        self.watch = SubscriptionWatch(relay) if relay is not None else None
        figures = self.watch.figures if self.watch is not None else None
        self.sampler = Sampler(
            session, interval=scenario.sample_interval, relay_figures=figures, on_sample=on_sample,
            snapshots=snapshots,
        )
        self.result = RunResult(scenario, app, page_url)
        self._thread_open: Sample | None = None
        self._thread_label = ""
        self._page = ""
        self._subs_open_when_idle: int | None = None
        self._start_t = 0.0
        self._began = 0.0
        self.re_spent_sites = re_spent_sites(adapter)
        self.observer = BrowsingObserver(session, self.sampler, relay)

    # -- the run ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the app, turn on its threshold log, measure the probe cost and take the first sample."""
        res = self.result
        res.started_at = time.time()
        self._began = time.monotonic()
        res.environment = self.session.environment()
        if self.watch is not None:
            self.watch.begin()
        self.session.driver.get(self.page_url)
        self.adapter.wait_ready(self.session.driver)
        if self.watch is not None:
            self.watch.settle()
        # The seed's threshold log (__moxie_alloc_log) is written only while this flag is on.
        self.session.driver.execute_script("window.__moxie_instrument = true")
        self.sampler.page_loaded()
        self._page = "feed"
        readings = probe_cost_readings(self.session, max(2, self.scenario.probe_calls))
        if readings is not None:
            res.probe_cost = an.measure_probe_cost(readings[0])
            res.probe_ms = readings[1]
        figures = read_browser_figures(self.session)
        res.initial_browser = figures
        first = self.sampler.sample("start")
        app = self.sampler.last
        assert app is not None
        res.initial_sites = parsed_sites(app.sites)
        res.unavailable = [*app.unavailable(), *figures.unavailable]
        self._start_t = first.t
        self._observe("start", None)

    def run(self) -> RunResult:
        self.start()
        items = list(expand(self.scenario.steps))
        total = sum(1 for item in items if not isinstance(item, CycleMark))
        n = 0
        for item in items:
            if isinstance(item, CycleMark):
                self.result.cycle_readings.append(read_cycle(self.sampler, item.phase))
            else:
                n += 1
                if self.on_step is not None:
                    self.on_step(n, total, item)
                self.run_step(item)
        if not any(isinstance(s, Assert) for s in walk(self.scenario.steps)):
            self.judge(an.assertion_names(), "end")
        return self.finish()

    def run_step(self, step: Any) -> StepRecord:
        """Run one (expanded) step and record it."""
        t0 = time.monotonic()
        if self.watch is not None:
            self.watch.at = f"{step.KIND} (line {step.line})" if step.line else step.KIND
        browsing = getattr(step, "BROWSING", False)
        before = self.observer.before() if browsing else None
        detail = step.run(self) or ""
        if browsing:
            where = f"line {step.line}" if step.line else f"step {len(self.result.steps) + 1}"
            self._observe(f"{step.KIND} ({where})", before)
        record = StepRecord(
            len(self.result.steps), step.KIND, step.line, time.monotonic() - t0, detail, t0 - self._began
        )
        self.result.steps.append(record)
        if self.on_record is not None:
            self.on_record({"type": "step", **dataclasses.asdict(record)})
        return record

    def finish(self) -> RunResult:
        """The last sample and readings; the result is complete after this."""
        res = self.result
        self.sampler.sample("end")
        app = self.sampler.last
        res.final_sites = parsed_sites(app.sites) if app else None
        res.final_browser = read_browser_figures(self.session)
        res.samples = self.sampler.samples
        res.phases = self.sampler.phases
        res.sampler_cost = self.sampler.cost()
        res.alloc_log = self.sampler.alloc_log
        res.relay_stats = self.relay.stats() if self.relay is not None else None
        if self.watch is not None:
            res.relay_run = self.watch.report_figures()
            res.relay_unreached = self.watch.unreached()
            res.relay_scope = self.watch.scope.describe() if self.watch.scope is not None else None
        res.hosts_tried = self.session.hosts_tried()
        res.cycles = self._cycles()[0]
        res.isolates = list(self.sampler.isolate_readings)
        res.browser_cycles = self._browser_cycles()[0]
        res.cache_readings = list(self.sampler.cache_readings)
        res.seconds = time.monotonic() - self._began
        return res

    def _observe(self, label: str, before: Any) -> None:
        """Where a browsing step left the app, and both views of its subscriptions (module _visits)."""
        visit, view = self.observer.visit(label, before)
        self.result.page_visits.append(visit)
        if view is not None:
            self.result.subscription_views.append(view)

    def _cycles(self) -> tuple[an.CycleGrowth | None, str | None]:
        return measured_growth(self.scenario, self.result.cycle_readings)

    def _browser_cycles(self) -> tuple[an.BrowserCycles | None, str | None]:
        return measured_browser_growth(self.scenario, self.sampler.isolate_readings)

    # -- StepContext: what steps call ----------------------------------------------------------------

    def evidence(self) -> an.Evidence:
        """Everything gathered so far, as the assertions read it (explore judges this after each step)."""
        return gather_evidence(
            self.sampler,
            self.result,
            start_t=self._start_t,
            subscriptions_open_when_idle=self._subs_open_when_idle,
            cycles=self._cycles(),
            browser_cycles=self._browser_cycles(),
            re_spent_sites=self.re_spent_sites,
            relay_totals=self.relay.stats().get("totals") if self.relay is not None else None,
            watch=self.watch,
        )

    def judge(self, names: tuple[str, ...], where: str) -> str:
        results = an.evaluate(self.evidence(), self.scenario.thresholds, names)
        for r in results:
            self.result.results[r.name] = r
        self.result.checkpoints.append(Checkpoint(where, tuple(results)))
        return ", ".join(f"{r.name} {r.verdict}" for r in results)

    def act(self, action: str, arg: Any = None) -> None:
        self.adapter.perform(self.session.driver, action, arg)

    def perform(self, action: PageAction, arg: Any = None) -> Any:
        return perform_action(self.session.driver, action, arg)

    def navigate(self, to: str) -> str:
        """A ``#hash`` set in place; any other URL (relative to the page shown) loaded as a new document,
        then the adapter's ready check and a fresh start for the page's probes (as after the first load)."""
        driver = self.session.driver
        if to.startswith("#"):
            driver.execute_script("location.hash = arguments[0]", to)
            return f"hash {to}"
        url = urljoin(driver.current_url, to)
        driver.get(url)
        self.adapter.wait_ready(driver)
        driver.execute_script("window.__moxie_instrument = true")
        self.sampler.page_loaded()
        return f"loaded {url}"

    def supports(self, action: str) -> bool:
        return self.adapter.supports(action)

    def sample(self, phase: str) -> None:
        self.sampler.sample(phase)

    def run_for(self, seconds: float, phase: str) -> None:
        self.sampler.run_for(seconds, phase)

    def set_interval(self, seconds: float) -> None:
        self.sampler.interval = seconds

    def arrived(self, page: str) -> None:
        """Called after every navigation: closes a pending thread observation when the thread was left."""
        if self._thread_open is not None and page != "thread":
            after = self.sampler.sample("thread-closed")
            self.result.thread_closes.append(ThreadClose(self._thread_open, after, self._thread_label))
            self._thread_open = None
        elif self._thread_open is None and page == "thread" and self.sampler.samples:
            # Back into a thread (from a profile opened inside it): its next close counts too.
            self._thread_open, self._thread_label = self.sampler.samples[-1], "thread (returned to)"
        self._page = page

    def open_thread(self, k: int | str) -> None:
        before = self.sampler.sample("before-thread")
        self.act("open_thread", k)
        if self._thread_open is None:
            self._thread_open, self._thread_label = before, f"thread {k}"
        self._page = "thread"

    def current_page(self) -> str:
        state = self.sampler.last.state if self.sampler.last else None
        if state and isinstance(state.get("page"), str):
            return str(state["page"])
        return "unknown"

    def traffic(self, mode: str, kind: str | None, n: int | None) -> str:
        control = self.traffic_control
        if control is None:
            raise UsageError("this run has no traffic control (a --relay-url relay cannot be driven)")
        if mode == "on":
            control.resume()  # the generator's rates are set when the relay starts (see open_relay)
        elif mode == "off":
            control.pause()
        else:
            control.burst(kind, n or 1)
        self.sampler.sample("traffic")
        return f"traffic {mode}"

    def faults(self, spec: str) -> str:
        """A ``faults`` step: switch the relay's injected faults now (POST /control/faults)."""
        if self.relay is None:
            raise UsageError("a faults step needs a relay to steer (none attached)")
        sc = self.scenario
        switch_faults(self.relay, spec, sc.seed if sc.faults_seed is None else sc.faults_seed)
        self.sampler.sample("faults")
        return f"faults {spec or 'off'}"

    def close_all(self) -> str:
        if self.relay is None:
            raise UsageError("close_all needs a relay to check (none attached)")
        if call_close_all(self.session):
            return "closed by app"
        # Without the hook, what the app still holds is the finding: measure_idle counts it (after its
        # settle) before the relay ends anything, so nothing is ended here.
        return "the app has no __moxie_close_all: measure_idle counts what it holds, then the relay ends it"

    def measure_idle(self, settle: float, window: float, windows: int) -> str:
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
            scope=self.watch.scope if self.watch is not None else None,
        )
        self.result.idle.append(outcome)
        self._subs_open_when_idle = outcome.subscriptions_open
        if outcome.measurement is None:
            return f"idle not measured: {outcome.unavailable}"
        return f"idle {outcome.measurement.rate:.1f} B/s (raw {outcome.measurement.raw_rate:.1f})"


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
    test_headers: bool | None = None  # COOP/COEP for a DIR app (None: the relay's default)
    progress: Any = None  # relaysim.soak.progress.RunHooks: on_step / on_sample for a display
    snapshots: bool = False  # heap snapshots at the measured repeat's boundaries (detached DOM, holders)


def _on_sample(sink: TimelineWriter | None, hooks: Any) -> Callable[[Sample, str], None] | None:
    """Each sample to the timeline file and to the progress display, whichever are there."""
    if sink is None and hooks is None:
        return None

    def on_sample(sample: Sample, phase: str) -> None:
        if sink is not None:
            sink.append(sample)
        if hooks is not None:
            hooks.on_sample(sample, phase)

    return on_sample


def run(scenario: Scenario, options: RunOptions) -> RunResult:
    """Start what the run needs, run ``scenario``, write the report and timeline; return the result."""
    target = resolve_app(options.app or scenario.app)
    adapter = adapter_for(target, options.adapter)
    with contextlib.ExitStack() as stack:
        if options.test_headers and options.relay_url is not None:
            raise UsageError("--test-headers applies to the relay a run starts, not to a --relay-url relay")
        relay = stack.enter_context(
            open_relay(target, scenario, options.relay_url, test_headers=options.test_headers)
        )
        page_url = target.page_url(getattr(relay, "http_url", None))
        sink = stack.enter_context(TimelineWriter(options.timeline)) if options.timeline else None
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
            on_sample=_on_sample(sink, options.progress),
            on_record=sink.append if sink else None,
            traffic=getattr(relay, "traffic", None),
            on_step=options.progress.on_step if options.progress is not None else None,
            snapshots=options.snapshots,
        )
        result = runner.run()
        result.timeline = options.timeline
    if options.report:
        write_report(options.report, build_report(result))
    return result
