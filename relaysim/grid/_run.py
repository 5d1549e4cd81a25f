"""``relaysim run --browsers N``: scenario runs at once, in N browser sessions, against one relay.

Theory of operation. A batch is a list of *jobs* -- every scenario given, against every app given
(``--app`` and each ``--variant``). One job alone is run N times at once (N sessions of the same
thing: the spread is the finding); several are spread over N worker threads, each taking the next
job when it is done with one. Every job gets a fresh browser session (local, or on the Grid),
labelled for the relay (:func:`~relaysim.grid._relay.label_browser`), and runs the ordinary
:class:`~relaysim.scenario.runner.ScenarioRunner` against :class:`~relaysim.grid._relay.SessionRelay`:
its idle protocol, its relay figures and its report are its own. All jobs share one relay, so they
must agree on what it serves (dataset, traffic, app directory): :func:`relay_config` of every job
must be equal.

Shared, and said so in docs/grid.md: the live traffic. A ``traffic`` step in one job steers the one
generator every session sees.

A session lost mid-job (the Grid node died, the browser crashed, the session was deleted) is recorded
as a fault on that job's row, and the job runs again from its start in a new session, once
(:data:`RETRIES`); a job that fails twice is an ERROR row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaysim.browser import BrowserSpec, open_browser
from relaysim.errors import UsageError
from relaysim.grid._figures import ResourceMonitor
from relaysim.grid._place import RelayPlace, browser_args, open_shared_relay, page_base
from relaysim.grid._relay import SessionRelay, label_browser
from relaysim.grid._summary import GridSummary, build_grid_summary, session_row, write_grid_summary
from relaysim.report import write_report
from relaysim.scenario import Scenario
from relaysim.scenario._app import adapter_for, relay_config, resolve_app
from relaysim.scenario.runner import ScenarioRunner, build_report

__all__ = ["GridRunOptions", "Job", "jobs_for", "run_grid_batch"]

RETRIES = 1
"""New sessions a job gets after its browser session was lost mid-run."""


@dataclass(frozen=True)
class Job:
    """One scenario against one app, in one session labelled ``label``."""

    label: str
    scenario: Scenario
    app: str


def jobs_for(scenarios: list[Scenario], apps: list[str | None], browsers: int) -> list[Job]:
    """Every scenario against every app (None: the scenario's own); one job alone is repeated N times."""
    pairs = [(s, a or s.app) for s in scenarios for a in (apps or [None])]
    if len(pairs) == 1:
        pairs = pairs * browsers
    return [Job(f"session-{k}", s, a) for k, (s, a) in enumerate(pairs, start=1)]


@dataclass(frozen=True, kw_only=True)
class GridRunOptions:
    """The batch: ``jobs``, ``browsers`` sessions at a time, the per-run choices of ``relaysim run``."""

    jobs: tuple[Job, ...]
    browsers: int
    browser: BrowserSpec = field(default_factory=BrowserSpec)
    place: RelayPlace = field(default_factory=RelayPlace)
    adapter: str | None = None
    idle_window: float | None = None
    idle_windows: int | None = None
    idle_settle: float | None = None
    report: Path | None = None  # the batch summary; each job's report beside it (STEM.session-K.json)
    allow_unavailable: bool = False


@dataclass
class _Outcome:
    job: Job
    result: Any = None
    faults: int = 0
    error: str | None = None
    usage: UsageError | None = None  # a usage or environment problem (no Grid there, a bad app)


def _config(jobs: tuple[Job, ...]) -> Any:
    first = jobs[0]
    config = relay_config(resolve_app(first.app), first.scenario)
    for job in jobs[1:]:
        other = relay_config(resolve_app(job.app), job.scenario)
        if other != config:
            raise UsageError(
                f"the sessions share one relay: {job.scenario.name} against {job.app} needs a different one "
                f"(dataset, traffic or app directory) than {first.scenario.name} against {first.app}"
            )
    return config


def _run_job(job: Job, options: GridRunOptions, relay: Any, base: str, spec: BrowserSpec) -> Any:
    target = resolve_app(job.app)
    adapter = adapter_for(target, options.adapter)
    with open_browser(spec) as session:
        label_browser(session.driver, base, job.label)
        view = SessionRelay(relay, job.label, base)
        runner = ScenarioRunner(
            job.scenario, session, view, target.page_url(base), adapter, app=target.spec,
            idle_window=options.idle_window, idle_windows=options.idle_windows,
            idle_settle=options.idle_settle, traffic=view.traffic,
        )
        return runner.run()


def _alive(error: BaseException) -> bool:
    """Whether ``error`` is the page's (a step failed) rather than a lost session's."""
    from selenium.common.exceptions import InvalidSessionIdException, WebDriverException

    if isinstance(error, InvalidSessionIdException):
        return False
    text = str(getattr(error, "msg", "") or error).lower()
    lost = ("session deleted", "invalid session id", "no such window", "target window already closed",
            "chrome not reachable", "disconnected", "connection refused", "session not created")
    return isinstance(error, WebDriverException) and not any(w in text for w in lost)


def _worker(jobs: queue.Queue[_Outcome], options: GridRunOptions, relay: Any, base: str,
            spec: BrowserSpec) -> None:
    while True:
        try:
            out = jobs.get_nowait()
        except queue.Empty:
            return
        for attempt in range(RETRIES + 1):
            try:
                out.result = _run_job(out.job, options, relay, base, spec)
                out.error = None
                break
            except UsageError as exc:
                out.error, out.usage = str(exc), exc
                break
            except Exception as exc:
                text = str(getattr(exc, "msg", "") or exc).strip().splitlines() or [""]
                out.error = f"{type(exc).__name__}: {text[0][:200]}"
                if _alive(exc) or attempt == RETRIES:
                    break
                out.faults += 1  # the session was lost: the job runs again in a new one


def _report_path(summary: Path, label: str) -> Path:
    return summary.with_name(f"{summary.stem}.{label}.json")


def run_grid_batch(options: GridRunOptions) -> GridSummary:
    """Run every job (module docstring), write each job's report and the batch summary; the summary."""
    config = _config(options.jobs)
    if options.report is not None:
        options.report.parent.mkdir(parents=True, exist_ok=True)
    monitor = ResourceMonitor()
    monitor.watch_process("harness")
    outcomes = [_Outcome(job) for job in options.jobs]
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        relay = stack.enter_context(open_shared_relay(config, options.place))
        base = page_base(relay)
        spec = dataclasses.replace(options.browser, args=(*options.browser.args, *browser_args(base)))
        todo: queue.Queue[_Outcome] = queue.Queue()
        for o in outcomes:
            todo.put(o)
        monitor.start()
        threads = [threading.Thread(target=_worker, args=(todo, options, relay, base, spec), daemon=True,
                                    name=f"relaysim-run-{k}")
                   for k in range(min(options.browsers, len(outcomes)))]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.5)
        monitor.stop()
    if all(o.usage is not None for o in outcomes):
        raise outcomes[0].usage  # type: ignore[misc]  # nothing ran: one line, exit 2
    rows = []
    samples = 0
    seconds = 0.0
    for o in outcomes:
        report = build_report(o.result) if o.result is not None else None
        if report is not None and report.environment.webdriver_url is None:  # where its browser ran
            env = dataclasses.replace(report.environment, webdriver_url=options.browser.webdriver_url)
            report = dataclasses.replace(report, environment=env)
        path = None
        if report is not None and options.report is not None:
            target = _report_path(options.report, o.job.label)
            write_report(target, report)
            path = target.name
        if o.result is not None:
            cost = o.result.sampler_cost
            samples += cost.samples
            seconds += cost.samples * (cost.ms_per_sample or 0.0) / 1000
            unreached = getattr(o.result, "unreached_message", lambda: None)()
            if unreached is not None:  # nothing the page did was measured: not a verdict
                report, o.error = None, unreached
        rows.append(session_row(o.job.label, o.job.app, report, report_path=path, faults=o.faults,
                                replaced=o.faults if o.result is not None else 0, error=o.error,
                                scenario=o.job.scenario.name))
    wall = time.monotonic() - started
    figures = {"sessions": len(outcomes), "wall_s": round(wall, 1), "samples": samples,
               "samples_per_s": round(samples / wall, 3) if wall > 0 else None,
               "ms_per_sample": round(1000 * seconds / samples, 2) if samples else None, **monitor.figures()}
    summary = build_grid_summary(
        "run", rows, allow_unavailable=options.allow_unavailable, webdriver_url=options.browser.webdriver_url,
        public_url=base, figures=figures,
    )
    if options.report is not None:
        write_grid_summary(options.report, summary)
    return summary
