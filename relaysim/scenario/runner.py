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

The pieces live beside it, one job each: :mod:`._app` (the app target and the relay),
:mod:`._result` (what a run measured), :mod:`._cycles` (measured-cycle readings), :mod:`._judge`
(evidence and failure details) and :mod:`._assemble` (the report). Their public names are importable
from here as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaysim import analysis as an
from relaysim.analysis import Sample, ThreadClose
from relaysim.browser import BrowserSession, BrowserSpec, Sampler, open_browser
from relaysim.browser.idle import RelayLike, close_everything, run_idle_protocol
from relaysim.browser.probes import probe_cost_readings, read_browser_figures
from relaysim.errors import UsageError
from relaysim.scenario import model as m
from relaysim.scenario._app import GENERIC_READY as GENERIC_READY
from relaysim.scenario._app import AppTarget as AppTarget
from relaysim.scenario._app import generic_adapter as generic_adapter
from relaysim.scenario._app import open_relay as open_relay
from relaysim.scenario._app import resolve_app as resolve_app
from relaysim.scenario._assemble import build_report as build_report
from relaysim.scenario._assemble import idle_notes as idle_notes
from relaysim.scenario._cycles import measured_growth, read_cycle
from relaysim.scenario._judge import explain, gather_evidence, result_dict
from relaysim.scenario._result import RunResult as RunResult
from relaysim.scenario._result import StepRecord as StepRecord
from relaysim.scenario.adapters import Adapter, load_adapter

__all__ = ["AppTarget", "RunOptions", "RunResult", "ScenarioRunner", "generic_adapter", "resolve_app", "run"]


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
        self.result.cycle_readings.append(read_cycle(self.sampler, phase))

    def _cycles(self) -> tuple[an.CycleGrowth | None, str | None]:
        return measured_growth(self.scenario, self.result.cycle_readings)

    def _judge(self, names: tuple[str, ...], where: str) -> str:
        if names == ("all",):
            names = an.ASSERTION_NAMES
        evidence = gather_evidence(
            self.sampler,
            self.result,
            start_t=self._start_t,
            subscriptions_open_when_idle=self._subs_open_when_idle,
            cycles=self._cycles(),
        )
        judged = an.evaluate(evidence, self.scenario.thresholds, names)
        results = [explain(r, self.sampler.alloc_log, self.result.idle) for r in judged]
        for r in results:
            self.result.results[r.name] = r
        self.result.checkpoints.append({"at": where, "results": [result_dict(r) for r in results]})
        return ", ".join(f"{r.name} {r.verdict}" for r in results)

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
