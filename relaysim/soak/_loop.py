"""The soak loop: hours of seeded browsing, idle periods and live traffic against one app, crash-safe.

Theory of operation. One process of a soak (the first, or one ``--resume``) starts the relay with
its live traffic, then a browser session, and drives the app through a :class:`ScenarioRunner`
(the same step context a scenario runs against: the browsing steps' own ``run``) in a loop of
:class:`~relaysim.soak._plan.BrowsePlan` activities -- bursts of browsing steps with think pauses,
then an idle period (``close_all`` + ``measure_idle``, the seed's idle protocol) -- until the soak's
sampled time reaches its duration. A sample is taken every ``interval`` seconds on one schedule
(:class:`_SoakRunner` overrides ``run_for``) and after every step; the
:class:`~relaysim.soak._recorder.Recorder` appends each to the timeline at once.

Harness faults. An exception from a step is first asked whether the browser is still there (one
``return 1`` script): if it is, the step failed in the page (a ``step_error`` event, the soak goes
on); if not -- a crashed tab, a killed chromedriver, a lost WebDriver session -- it is a ``fault``
event, the session is closed and a new browser replaces it (a ``session_replaced`` event at the new
session's first sample, so the analysis starts a new segment and the report shows the gap). After
``max_session_failures`` failed starts in a row the soak stops and reports what it has.

Bounded. The runner was made for minutes: its sampler keeps every sample, its result every step and
idle outcome. The loop trims them after every activity (:func:`_trim`) -- the verdicts are computed
from the timeline file at the end, not from memory -- and the relay keeps at most
:data:`SOAK_MAX_LIVE_EVENTS` live events (the app shows the newest; older live events only cost the
relay memory over hours).

Stopping. SIGINT (Ctrl-C) and SIGTERM raise out of whatever the loop waits on; the loop writes a
``stop`` event naming the signal, closes the browser and the relay, and the caller judges and
writes the report as for a soak that ran its course.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import relaysim
from relaysim import analysis as an
from relaysim.browser import BrowserSession, BrowserSpec, open_browser
from relaysim.report import TimelineWriter, to_dict
from relaysim.scenario import CloseAll, MeasureIdle, Scenario, Step
from relaysim.scenario._app import adapter_for, open_relay, resolve_app
from relaysim.scenario.adapters import AdapterError
from relaysim.scenario.runner import ScenarioRunner
from relaysim.soak._files import EVENTS, TIMELINE, EventLog, PriorRun, SoakClock, SoakMeta, read_prior
from relaysim.soak._plan import BrowsePlan, plan_rng
from relaysim.soak._procs import ProcessTree, process_tree
from relaysim.soak._recorder import PageState, Recorder, relay_figures
from relaysim.soak.progress import Progress, open_progress

__all__ = ["SoakOptions", "SoakStopped", "run_loop"]

KEEP_SAMPLES = 60
# Live events the soak's relay keeps: ~25 minutes of the default traffic mix. Enough for every page the
# app shows (it asks for the newest); the relay's own default (100k) would cost ~400 MB over hours.
SOAK_MAX_LIVE_EVENTS = 20_000
"""Samples the runner's sampler keeps in memory (the timeline file has all of them)."""
KEEP_RECORDS = 20
RESULT_LISTS = ("steps", "idle", "thread_closes", "checkpoints", "cycle_readings", "page_visits",
                "subscription_views")
"""The runner's per-step histories (RunResult lists) that a soak keeps short."""
APP_STATE_JS = "return typeof __relaysim_app_state === 'function' ? __relaysim_app_state() : null"
BACKOFF_S = (2.0, 5.0, 10.0)


class SoakStopped(BaseException):
    """SIGTERM arrived; ``reason`` names the signal. A BaseException so no ``except Exception`` eats it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _GaveUp(Exception):
    pass


@dataclass(frozen=True, kw_only=True)
class SoakOptions:
    """One ``relaysim soak`` invocation: ``meta`` (ignored with ``resume``: the directory's own),
    ``out`` the directory, ``browser`` what to start.

    For one of N sessions sharing a relay (:mod:`relaysim.grid`): ``relay`` is that session's view of
    the shared relay (the soak starts none), ``page_url`` where its browser opens the app, ``prepare``
    runs on each new browser before the app loads (it labels the session), and ``stop`` is asked at
    every sample: a reason (e.g. ``"SIGTERM"``) ends the soak as that signal would.
    """

    meta: SoakMeta
    out: Path
    resume: bool = False
    browser: BrowserSpec = field(default_factory=BrowserSpec)
    allow_unavailable: bool = False
    max_session_failures: int = 3
    relay: Any = None
    page_url: str | None = None
    prepare: Callable[[BrowserSession], None] | None = None
    stop: Callable[[], str | None] | None = None


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`SoakStopped` for the duration (SIGINT is KeyboardInterrupt already)."""

    def handler(signum: int, frame: object) -> None:
        raise SoakStopped("SIGTERM")

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: no handler, a SIGTERM ends the process as usual
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "msg", None) or exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


class _SoakRunner(ScenarioRunner):
    """A :class:`ScenarioRunner` whose waits sample on the soak's one schedule (every ``interval``
    since the last sample, whoever took it) instead of starting each wait with a sample."""

    last_sample_mono: float = 0.0

    def run_for(self, seconds: float, phase: str) -> None:
        deadline = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            due = self.last_sample_mono + self.sampler.interval
            if now >= due:
                self.sampler.sample(phase)
                continue
            if now >= deadline:
                return
            time.sleep(min(deadline, due) - now)


def _trim(runner: ScenarioRunner) -> None:
    """Keep the runner's in-memory history short (see the module docstring)."""
    s = runner.sampler
    for seq, keep in ((s.samples, KEEP_SAMPLES), (s.phases, KEEP_SAMPLES), (s.alloc_log, 200),
                      (s.cache_readings, KEEP_RECORDS)):
        if len(seq) > keep:
            del seq[: len(seq) - keep]
    r = runner.result
    for name in RESULT_LISTS:
        seq2 = getattr(r, name, None)
        keep = 1 if name == "idle" else KEEP_RECORDS
        if isinstance(seq2, list) and len(seq2) > keep:
            del seq2[: len(seq2) - keep]


class _Verdict:
    """The verdict so far, for the display: the seed's limits on what the loop has seen."""

    def __init__(self) -> None:
        self.th = an.Thresholds.for_scope("soak")
        self.worst_idle: float | None = None
        self.subs_open = 0
        self.dom_max: float | None = None
        self.heap_late_max: float | None = None
        self.heap_growth: float | None = None  # B/s: the worst segment's, after its warm-up
        self._current: float | None = None
        self._finished: float | None = None
        self._segment: tuple[float, float | None] = (0.0, None)  # (start t, warm-up s)
        self._ref: tuple[float, float] | None = None

    def new_segment(self, t: float, warmup_s: float) -> None:
        """A fresh app (new session: the seed's warm-up) or a restarted one (settle): trend afresh."""
        self._segment = (t, warmup_s)
        self._ref = None
        if self._current is not None:
            self._finished = max(self._finished or self._current, self._current)
        self._current = None

    def sample(self, s: an.Sample, since_start_s: float) -> None:
        h = s.get(an.HEAP_INUSE)
        start, warmup = self._segment
        if h is not None and warmup is not None and s.t - start >= warmup:
            if self._ref is None:
                self._ref = (s.t, h)
            elif s.t - self._ref[0] >= 120:  # as soak_heap_trend will judge it, roughly
                self._current = (h - self._ref[1]) / (s.t - self._ref[0])
                self.heap_growth = max(self._finished or self._current, self._current)
        d = s.get(an.DOM_HANDLES)
        if d is not None:
            self.dom_max = d if self.dom_max is None else max(self.dom_max, d)
        h = s.get(an.HEAP_INUSE)
        if h is not None and since_start_s >= self.th.heap_inuse_after_s:
            self.heap_late_max = h if self.heap_late_max is None else max(self.heap_late_max, h)

    def text(self, restarts: int, hours: float) -> str:
        th = self.th
        fails = []
        if self.worst_idle is not None and self.worst_idle >= th.idle_rate_bps:
            fails.append(f"idle rate {self.worst_idle:,.0f} B/s")
        if self.subs_open > th.subscriptions_open_when_idle_max:
            fails.append(f"{self.subs_open} subscription(s) open when idle")
        if self.dom_max is not None and self.dom_max >= th.dom_handles_max:
            fails.append(f"{self.dom_max:,.0f} DOM handles")
        if self.heap_late_max is not None and self.heap_late_max >= th.heap_inuse_after_5min_bytes:
            fails.append(f"heapInuse {self.heap_late_max / 2**20:,.1f} MiB after 5 min")
        if self.heap_growth is not None and self.heap_growth > th.heap_growth_bps:
            fails.append(f"heapInuse growing {self.heap_growth:,.0f} B/s")
        if hours > 0 and restarts / max(hours, 1.0) > th.restarts_per_hour_max:
            fails.append(f"{restarts} restart(s)")
        if fails:
            return "FAIL so far: " + ", ".join(fails)
        return "PASS so far" + ("" if self.worst_idle is not None else " (no idle period yet)")


class _Soak:
    """One process of a soak (module docstring)."""

    def __init__(
        self,
        options: SoakOptions,
        meta: SoakMeta,
        prior: PriorRun | None,
        timeline: TimelineWriter,
        events: EventLog,
        progress: Progress,
    ) -> None:
        self.options = options
        self.meta = meta
        self.prior = prior
        self.events = events
        self.progress = progress
        self.recorder = Recorder(timeline, events, events.clock, on_figures=progress.figures)
        self.timeline = timeline
        self.plan = BrowsePlan(plan_rng(meta.seed, prior.resumes + 1 if prior else 0), browse_s=meta.browse_s,
                               pause_s=meta.think_s)
        self.verdict = _Verdict()
        self.session: BrowserSession | None = None
        self.procs = ProcessTree()
        self.runner: _SoakRunner | None = None
        self.relay: Any = None
        self.replacements = 0
        self.began: float | None = None
        self.remaining = meta.duration_s - (prior.active_s if prior else 0.0)
        self.first_t: float | None = None
        # The sampler's own cost over every browser session of this process (the stop event reports it).
        self.sampling: dict[str, float] = {"samples": 0, "seconds": 0.0, "round_trips": 0}

    # -- sessions ----------------------------------------------------------------------------------

    def _open_session(self, scenario: Scenario, target: Any, adapter: Any, page_url: str) -> None:
        session = open_browser(self.options.browser)
        self.procs = process_tree(session.driver)
        try:
            if self.options.prepare is not None:
                self.options.prepare(session)
            runner = _SoakRunner(
                scenario, session, self.relay, page_url, adapter, app=self.meta.app,
                idle_window=self.meta.idle_window, idle_windows=1, idle_settle=self.meta.idle_settle,
                on_sample=self._on_sample, traffic=getattr(self.relay, "traffic", None),
            )
            runner.sampler.relay_figures = relay_figures(self.relay.stats)
            self.recorder.new_session(lambda: runner.sampler.last.state if runner.sampler.last else None)
            self.runner = runner
            runner.start()
        except BaseException:
            session.close()
            self.procs.kill()  # whatever a half-started or lost browser left running
            self.procs = ProcessTree()
            self.runner = None
            raise
        self.session = session
        res = runner.result
        if res.probe_cost is not None:
            self.timeline.append({"type": "probe_cost", **dataclasses.asdict(res.probe_cost)})
        first = self.recorder.last
        t = first.t if first is not None else None
        relay_info = self.relay.stats().get("relay", {})
        self.events.emit(
            "session", t=t, page_url=page_url, hooks_missing=list(res.hooks_missing),
            dataset=relay_info.get("dataset"), dataset_sha256=relay_info.get("sha256"),
            dataset_spec_sha256=relay_info.get("spec_sha256"),
            probe_bytes=res.probe_cost.bytes_per_probe if res.probe_cost else None,
            **{k: res.environment.get(k) for k in ("browser_name", "browser_version", "driver_version")},
        )
        if self.began is None:
            self.began = time.monotonic()
            self.first_t = t
        if self.prior is not None or self.replacements:
            why = "resume" if not self.replacements else "harness fault"
            self.events.emit("session_replaced", t=t, reason=why, replacements=self.replacements)

    def _close_session(self, lost: bool = False) -> None:
        """Quit the browser; after a fault (``lost``) also end the processes it left behind."""
        if self.runner is not None:
            s = self.runner.sampler
            self.sampling["samples"] += s.count
            self.sampling["seconds"] += s.sample_seconds
            self.sampling["round_trips"] += s.sample_round_trips
        if self.session is not None:
            self.session.close()
        if lost:
            killed = self.procs.kill()
            if killed:
                self.events.emit("cleanup", killed=killed, why="browser processes left by the lost session")
        self.procs = ProcessTree()
        self.session = None
        self.runner = None

    def _alive(self) -> bool:
        if self.session is None:
            return False
        try:
            return bool(self.session.driver.execute_script("return 1") == 1)
        except (KeyboardInterrupt, SoakStopped):
            raise
        except Exception:
            return False

    def _replace(self, exc: BaseException, what: str, start: Any) -> None:
        self.recorder.faults += 1
        self.events.emit("fault", reason=f"{what}: {_first_line(exc)}", error=type(exc).__name__)
        self.progress.phase("replacing the browser session", _first_line(exc)[:60])
        self._close_session(lost=True)
        self.replacements += 1
        for attempt, pause in enumerate(BACKOFF_S[: self.options.max_session_failures]):
            try:
                start()
                return
            except (KeyboardInterrupt, SoakStopped):
                raise
            except Exception as err:
                self.recorder.faults += 1
                self.events.emit(
                    "fault", reason=f"could not start a new browser session: {_first_line(err)}",
                    error=type(err).__name__, attempt=attempt + 1,
                )
                time.sleep(pause)
        raise _GaveUp(f"no browser session after {self.options.max_session_failures} attempts")

    # -- samples -------------------------------------------------------------------------------------

    def _on_sample(self, sample: an.Sample, phase: str) -> None:
        if self.runner is not None:
            self.runner.last_sample_mono = time.monotonic()
        fresh, restarts = self.recorder.last is None, self.recorder.restarts
        self.recorder.on_sample(sample, phase)
        last = self.recorder.last
        if last is not None and (fresh or self.recorder.restarts > restarts):
            self.verdict.new_segment(last.t, self.verdict.th.heap_inuse_after_s if fresh else 30.0)
        if last is not None:
            since = last.t - self.first_t if self.first_t is not None else 0.0
            self.verdict.sample(last, since + (self.prior.active_s if self.prior else 0.0))
            self.recorder.verdict = self.verdict.text(self.recorder.restarts, self._active_s() / 3600)
        self._check_stop()

    def _check_stop(self) -> None:
        """Another thread asked this soak to stop (``SoakOptions.stop``): stop as that signal would."""
        why = self.options.stop() if self.options.stop is not None else None
        if why:
            raise SoakStopped(why)

    def _active_s(self) -> float:
        done = self.prior.active_s if self.prior else 0.0
        return done + (time.monotonic() - self.began if self.began is not None else 0.0)

    def _time_left(self) -> float:
        self._check_stop()
        return self.meta.duration_s - self._active_s()

    # -- activities ----------------------------------------------------------------------------------

    def _guarded(self, what: str, step: Step | None, fn: Any, start: Any) -> bool:
        """Run ``fn``; a failure in the page is a ``step_error``, a lost browser a fault and a new session."""
        try:
            fn()
            return True
        except (KeyboardInterrupt, SoakStopped, _GaveUp):
            raise
        except AdapterError as exc:
            if step is not None and "has no action" in str(exc):
                self.plan.drop(type(step))
                self.events.emit("step_unsupported", step=step.KIND, reason=str(exc))
            else:
                self.events.emit("step_error", step=what, reason=_first_line(exc))
            return False
        except Exception as exc:
            if self._alive():
                self.events.emit("step_error", step=what, reason=_first_line(exc))
                return False
            self._replace(exc, what, start)
            return False

    def _browse(self, step: Step, pause_s: float) -> None:
        runner = self.runner
        assert runner is not None
        self.progress.phase("browsing", step.KIND)
        t0 = time.monotonic()
        runner.run_step(step)
        state = runner.sampler.last.state if runner.sampler.last else None
        self.events.emit(
            "page", page=runner.current_page(), arg=(state or {}).get("arg"), step=step.KIND,
            args=_step_args(step), seconds=round(time.monotonic() - t0, 3),
        )
        self._after_restart()
        runner.run_for(pause_s, "browse")
        self._after_restart()

    def _after_restart(self) -> None:
        """A restart was seen: wait until the app is ready again, then check what it restored."""
        if self.recorder.pending is None or self.session is None:
            return
        deadline = time.monotonic() + 30.0
        state = None
        while time.monotonic() < deadline:
            raw = self.session.driver.execute_script(APP_STATE_JS)
            state = PageState.of(raw)
            if state is None or state.ready:
                break
            time.sleep(0.5)
        self.recorder.restore_check(state)

    def _idle(self) -> None:
        runner = self.runner
        assert runner is not None
        m = self.meta
        self.progress.phase("idle window", f"(settle {m.idle_settle:g} s, window {m.idle_window:g} s)",
                            countdown_s=m.idle_settle + m.idle_window)
        self.events.emit("idle_start", window_s=m.idle_window, settle_s=m.idle_settle)
        closed = CloseAll().run(runner)
        MeasureIdle(settle=m.idle_settle, window=m.idle_window, windows=1).run(runner)
        outcome = runner.result.idle[-1]
        me = outcome.measurement
        end_t = self.recorder.last.t if outcome.samples and self.recorder.last else None
        grown = an.top_sites(outcome.site_deltas, n=3, by="bytes")
        self.events.emit(
            "idle_end", t=end_t, rate=me.rate if me else None, raw_rate=me.raw_rate if me else None,
            window_s=me.window_s if me else None, settle_s=outcome.settle_s,
            subscriptions_open=outcome.subscriptions_open, open_detail=outcome.open_detail or None,
            closed_by=outcome.closed_by, close_detail=closed, unavailable=outcome.unavailable,
            grew=[f"{d.name} +{d.bytes:,} B" for d in grown], idle=to_dict(me) if me else None,
        )
        self.recorder.idle_periods += 1
        if me is not None:
            worst = self.verdict.worst_idle
            self.verdict.worst_idle = me.rate if worst is None else max(worst, me.rate)
        self.verdict.subs_open = max(self.verdict.subs_open, outcome.subscriptions_open)
        self._after_restart()

    # -- the loop ------------------------------------------------------------------------------------

    def run(self) -> str:
        meta = self.meta
        target = resolve_app(meta.app)
        adapter = adapter_for(target, meta.adapter)
        scenario = Scenario(
            name="soak", steps=(), app=meta.app, dataset=meta.dataset, seed=meta.seed,
            traffic=meta.traffic, sample_interval=meta.interval,
        )
        reason = "done"
        self.progress.phase("starting the relay")
        shared = self.options.relay
        opened = (contextlib.nullcontext(shared) if shared is not None
                  else open_relay(target, scenario, None, max_events=SOAK_MAX_LIVE_EVENTS))
        with opened as relay:
            self.relay = relay
            page_url = self.options.page_url or target.page_url(getattr(relay, "http_url", None))

            def start() -> None:
                self.progress.phase("starting the browser")
                self._open_session(scenario, target, adapter, page_url)

            try:
                start()
                while self._time_left() > 0:
                    self.plan.new_burst()
                    while self._time_left() > 0:
                        burst_t0 = time.monotonic()
                        act = self.plan.next_step()
                        if act.step is None:
                            break
                        step, pause = act.step, act.pause_s
                        self._guarded(step.KIND, step, lambda s=step, p=pause: self._browse(s, p), start)
                        if self.runner:
                            _trim(self.runner)
                        if self.plan.burst_over(time.monotonic() - burst_t0):
                            break
                    if self._time_left() <= 0:
                        break
                    self._guarded("idle", None, self._idle, start)
                    if self.runner:
                        _trim(self.runner)
                self._guarded("end", None, self._last_sample, start)
            except KeyboardInterrupt:
                reason = "SIGINT"
            except SoakStopped as exc:
                reason = exc.reason
            except _GaveUp as exc:
                reason = f"harness fault: {exc}"
            finally:
                self.progress.phase("finishing", reason)
                with contextlib.suppress(Exception):
                    self._emit_stop(reason)
                self._close_session()
        return reason

    def _last_sample(self) -> None:
        if self.runner is not None:
            self.runner.sample("end")
            self._after_restart()

    def _emit_stop(self, reason: str) -> None:
        totals = self.relay.stats().get("totals", {}) if self.relay is not None else {}
        keys = ("connections_opened", "subs_opened", "subs_closed", "subscriptions_active", "events_sent",
                "live_events_sent", "bytes_sent")
        s = self.sampling
        if self.runner is not None:  # the session still open: its sampler has not been added yet
            sampler = self.runner.sampler
            s = {"samples": s["samples"] + sampler.count, "seconds": s["seconds"] + sampler.sample_seconds,
                 "round_trips": s["round_trips"] + sampler.sample_round_trips}
        self.events.emit(
            "stop", reason=reason, samples_written=self.recorder.written,
            active_s=round(self._active_s(), 3), relay={k: totals.get(k) for k in keys},
            sampling={**s, "seconds": round(float(s["seconds"]), 3)},
        )


def _step_args(step: Step) -> dict[str, Any]:
    return {f.name: getattr(step, f.name) for f in dataclasses.fields(step) if f.name != "line"}


def run_loop(options: SoakOptions, progress: Progress | None = None) -> tuple[str, int, Path]:
    """Run (or resume) one process of a soak; returns (stop reason, samples written, directory).

    The directory then holds the timeline and events; :func:`relaysim.soak.finish_soak` judges it.
    """
    out = options.out
    prior = read_prior(out) if options.resume else None
    meta = prior.meta if prior is not None else options.meta
    clock = SoakClock(prior.last_t if prior is not None else None)
    display = progress or open_progress("off", "relaysim soak")
    with TimelineWriter(out / TIMELINE, fsync_every=1) as timeline:
        events = EventLog(out / EVENTS, clock)
        try:
            if prior is None:
                events.emit("start", meta=meta.to_dict(), relaysim=relaysim.__version__)
            else:
                events.emit(
                    "resume", from_t=prior.last_t, samples_before=prior.samples,
                    active_s_before=round(prior.active_s, 3), resumes=prior.resumes + 1,
                )
            soak = _Soak(options, meta, prior, timeline, events, display)
            if soak.remaining <= 0:
                done = prior.active_s if prior else 0.0
                events.emit("stop", reason="already complete", samples_written=0, active_s=done)
                return "already complete", 0, out
            with stop_on_sigterm():
                try:
                    reason = soak.run()
                except KeyboardInterrupt:  # before the loop's own handling (starting the relay)
                    reason = "SIGINT"
                except SoakStopped as exc:
                    reason = exc.reason
            return reason, soak.recorder.written, out
        finally:
            events.close()
