"""``relaysim soak --browsers N``: N soaks at once, one browser session each, against one relay.

Theory of operation. One relay is started (bound where ``--bind`` says, opened by the browsers at
``--public-url``; :mod:`._place`), or an already running one is used (``--relay-url``). Then each
session is an ordinary soak (:func:`relaysim.soak._loop.run_loop`) in its own thread, writing its
own directory ``OUT/session-K/`` -- timeline, events, ``summary.json``, ``report.html`` -- exactly as
``relaysim soak`` alone would, with three differences given through
:class:`~relaysim.soak.SoakOptions`: its relay is :class:`~relaysim.grid._relay.SessionRelay` (the
shared relay as that session sees it: its own connections, subscriptions, idle and figures); each
new browser is labelled (:func:`~relaysim.grid._relay.label_browser`) before the app loads; and
``stop`` is this module's flag. Session K browses with seed ``seed + K - 1``, so session 1 of a
batch browses as a lone soak with the same seed does.

A session lost on the Grid (the node died, the browser crashed, the session was deleted) is the
soak loop's own fault handling: a ``fault`` event in that session's timeline, a new browser in its
place (``session_replaced``), the analysis starting a new segment there.

Stopping. SIGINT/SIGTERM reach the main thread, which sets the flag; every session stops at its
next sample (or while it waits for idle), writes its ``stop`` event and closes its browser; then
every directory is judged and :mod:`._summary` lays the sessions side by side in ``OUT/summary.json``
and ``OUT/report.html``, as after a soak that ran its course.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaysim.browser import BrowserSession, BrowserSpec
from relaysim.errors import ExitCode, UsageError
from relaysim.grid._board import open_board
from relaysim.grid._figures import ResourceMonitor
from relaysim.grid._place import RelayPlace, browser_args, open_shared_relay, page_base
from relaysim.grid._relay import SessionRelay, label_browser
from relaysim.grid._summary import (
    GridSummary,
    build_grid_summary,
    session_row,
    write_grid_html,
    write_grid_summary,
)
from relaysim.relay.config import check_public_url
from relaysim.report import read_soak_dir
from relaysim.scenario import Scenario
from relaysim.scenario._app import relay_config, resolve_app
from relaysim.soak._files import SoakMeta
from relaysim.soak._loop import SOAK_MAX_LIVE_EVENTS, SoakOptions, SoakStopped, run_loop, stop_on_sigterm
from relaysim.soak._summary import finish_soak

__all__ = ["GridSoakOptions", "GridSoakResult", "StopFlag", "run_grid_soak", "spread"]

SUMMARY = "summary.json"
REPORT_HTML = "report.html"


def spread(apps: Sequence[str], n: int) -> tuple[str, ...]:
    """One app per session: the ``--app`` values in turn (one value: every session runs it)."""
    if n < 1:
        raise UsageError(f"--browsers must be >= 1, got {n}")
    if not apps:
        apps = ("builtin",)
    if len(apps) > n:
        raise UsageError(f"{len(apps)} --app values for --browsers {n}: give at most one per session")
    return tuple(apps[i % len(apps)] for i in range(n))


class StopFlag:
    """Set once, from any thread; calling it gives the reason (None until set)."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def __call__(self) -> str | None:
        return self.reason

    def interrupt(self) -> None:
        """Raise :class:`SoakStopped` once set (for waits that take no sample)."""
        if self.reason is not None:
            raise SoakStopped(self.reason)


@dataclass(frozen=True, kw_only=True)
class GridSoakOptions:
    """``meta`` the settings every session shares (its ``app`` and ``seed`` are set per session);
    ``apps`` one per session; ``relay_url`` a relay already running (else one is started at ``place``)."""

    meta: SoakMeta
    apps: tuple[str, ...]
    out: Path
    browser: BrowserSpec = field(default_factory=BrowserSpec)
    place: RelayPlace = field(default_factory=RelayPlace)
    relay_url: str | None = None
    allow_unavailable: bool = False
    max_session_failures: int = 3
    stagger_s: float = 1.0
    join_timeout_s: float = 180.0


@dataclass(frozen=True)
class GridSoakResult:
    out: Path
    summary: GridSummary
    exit_code: ExitCode
    stop_reason: str


@dataclass
class _Session:
    label: str
    app: str
    out: Path
    options: SoakOptions
    progress: Any = None
    reason: str | None = None
    written: int = 0
    error: BaseException | None = None
    thread: threading.Thread | None = None


def _relay(options: GridSoakOptions, stack: contextlib.ExitStack) -> tuple[Any, str]:
    """The shared relay and the origin the browsers open."""
    meta = options.meta
    if options.relay_url is not None:
        from relaysim.browser.relay_http import RelayHttp

        relay = RelayHttp(options.relay_url)
        public = options.place.public_url
        return relay, check_public_url(public) if public else relay.http_url + "/"
    targets = [resolve_app(a) for a in options.apps]
    dirs = {t.static_dir for t in targets}
    if len(dirs) > 1:
        raise UsageError("the sessions share one relay, which serves one app directory: "
                         f"--app names {len(dirs)} ({', '.join(sorted(str(d) for d in dirs))})")
    scenario = Scenario(name="soak", steps=(), app=options.apps[0], dataset=meta.dataset, seed=meta.seed,
                        traffic=meta.traffic, sample_interval=meta.interval)
    config = relay_config(targets[0], scenario, max_events=SOAK_MAX_LIVE_EVENTS)
    relay = stack.enter_context(open_shared_relay(config, options.place))
    return relay, page_base(relay)


def _sessions(options: GridSoakOptions, relay: Any, base: str, stop: StopFlag, board: Any) -> list[_Session]:
    out = []
    spec = dataclasses.replace(options.browser, args=(*options.browser.args, *browser_args(base)))
    for k, app in enumerate(options.apps, start=1):
        label = f"session-{k}"
        meta = dataclasses.replace(options.meta, app=app, seed=options.meta.seed + k - 1)

        def prepare(session: BrowserSession, label: str = label) -> None:
            label_browser(session.driver, base, label)

        soak = SoakOptions(
            meta=meta, out=options.out / label, browser=spec, allow_unavailable=options.allow_unavailable,
            max_session_failures=options.max_session_failures,
            relay=SessionRelay(relay, label, base, interrupt=stop.interrupt),
            page_url=resolve_app(app).page_url(base), prepare=prepare, stop=stop,
        )
        soak.out.mkdir(parents=True, exist_ok=True)
        out.append(_Session(label, app, soak.out, soak, progress=board.session(label, app)))
    return out


def _work(s: _Session) -> None:
    try:
        s.reason, s.written, _ = run_loop(s.options, s.progress)
    except BaseException as exc:  # kept and reported in the session's row
        s.error = exc


def _wait(sessions: list[_Session], stop: StopFlag, options: GridSoakOptions) -> None:
    """Start the threads (``stagger_s`` apart) and join them; a signal sets ``stop`` and waits (bounded)."""
    with stop_on_sigterm():
        try:
            for i, s in enumerate(sessions):
                if i and options.stagger_s > 0:
                    time.sleep(options.stagger_s)
                s.thread = threading.Thread(target=_work, args=(s,), name=f"relaysim-{s.label}", daemon=True)
                s.thread.start()
            for s in sessions:
                while s.thread is not None and s.thread.is_alive():
                    s.thread.join(0.5)
        except KeyboardInterrupt:
            stop.set("SIGINT")
        except SoakStopped as exc:
            stop.set(exc.reason)
    deadline = time.monotonic() + options.join_timeout_s
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: stop waiting, judge what is there
        for s in sessions:
            if s.thread is not None:
                s.thread.join(max(0.0, deadline - time.monotonic()))


def _sampling(directory: Path) -> tuple[int, float, int, int, int]:
    """(samples, sampling seconds, round trips, faults, replacements) from a session's events."""
    samples, seconds, trips, faults, replaced = 0, 0.0, 0, 0, 0
    for e in read_soak_dir(directory).events:
        kind = e.get("type")
        if kind == "stop" and isinstance(e.get("sampling"), dict):
            samples += int(e["sampling"].get("samples") or 0)
            seconds += float(e["sampling"].get("seconds") or 0.0)
            trips += int(e["sampling"].get("round_trips") or 0)
        elif kind == "fault":
            faults += 1
        elif kind == "session_replaced" and e.get("reason") == "harness fault":
            replaced += 1
    return samples, seconds, trips, faults, replaced


def run_grid_soak(options: GridSoakOptions, progress: str = "off") -> GridSoakResult:
    """Run the N sessions, judge each directory, write the summary; see the module docstring."""
    stop = StopFlag()
    board = open_board(progress, f"relaysim soak --browsers {len(options.apps)} {options.out}")
    monitor = ResourceMonitor()
    monitor.watch_process("harness")
    started = time.monotonic()
    relay_totals: dict[str, Any] = {}
    try:
        with contextlib.ExitStack() as stack:
            relay, base = _relay(options, stack)
            for t in threading.enumerate():
                if t.name == "relaysim-relay" and t.native_id is not None:
                    monitor.watch_thread("relay_thread", t.native_id)
            monitor.start()
            sessions = _sessions(options, relay, base, stop, board)
            _wait(sessions, stop, options)
            monitor.stop()
            with contextlib.suppress(Exception):
                doc = relay.stats()
                relay_totals = {**(doc.get("totals_since_start") or {}),
                                "store_events": (doc.get("store") or {}).get("events")}
    finally:
        board.close()
    wall = time.monotonic() - started
    errors = [s.error for s in sessions if s.error is not None]
    if errors and len(errors) == len(sessions) and all(isinstance(e, UsageError) for e in errors):
        raise errors[0]  # nothing ran (no Grid there, a bad app): one line, exit 2
    rows, totals = [], [0, 0.0, 0]
    for s in sessions:
        report = None
        samples = faults = replaced = 0
        if s.error is None or isinstance(s.error, SoakStopped | KeyboardInterrupt):
            report, _ = finish_soak(s.out, options.allow_unavailable)
            samples, seconds, trips, faults, replaced = _sampling(s.out)
            totals = [totals[0] + samples, totals[1] + seconds, totals[2] + trips]
        why = None if s.error is None else f"{type(s.error).__name__}: {str(s.error).splitlines()[0][:200]}"
        rows.append(session_row(s.label, s.app, report, report_path=f"{s.label}/{REPORT_HTML}",
                                faults=faults, replaced=replaced, error=why))
    n_samples, seconds, trips = int(totals[0]), float(totals[1]), int(totals[2])
    figures: dict[str, Any] = {
        "sessions": len(sessions), "wall_s": round(wall, 1), "samples": n_samples,
        "samples_per_s": round(n_samples / wall, 3) if wall > 0 else None,
        "ms_per_sample": round(1000 * seconds / n_samples, 2) if n_samples else None,
        "round_trips_per_sample": round(trips / n_samples, 2) if n_samples else None,
        **monitor.figures(),
        "relay": relay_totals,
    }
    summary = build_grid_summary(
        "soak", rows, allow_unavailable=options.allow_unavailable,
        webdriver_url=options.browser.webdriver_url, public_url=base, figures=figures,
    )
    write_grid_summary(options.out / SUMMARY, summary)
    write_grid_html(options.out / REPORT_HTML, summary)
    reasons = sorted({s.reason for s in sessions if s.reason})
    return GridSoakResult(options.out, summary, summary.exit_code, ", ".join(reasons) or "error")

