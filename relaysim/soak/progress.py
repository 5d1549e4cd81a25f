"""Progress for long runs: a live panel on a terminal, plain periodic lines otherwise.

Theory of operation. ``relaysim run`` and ``relaysim soak`` block for minutes to hours inside
WebDriver calls and sleeps, so the display cannot be driven by the loop alone. :class:`LiveProgress`
hands rich's :class:`~rich.live.Live` a ``get_renderable`` callback, and rich's own refresh thread
redraws it four times a second from the last state the loop reported (:meth:`Progress.phase`,
:meth:`Progress.figures`): elapsed time, ETA and an idle window's countdown keep moving while the
loop waits. Without a terminal, :class:`PlainProgress` writes one line every ``every_s`` seconds
(checked whenever the loop reports), never more, so a log or a CI page stays readable and a short
run writes nothing at all. Both write to stderr: stdout is the verdict table's.

The loop reports; it never asks the display anything, and a display error never stops a run.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TextIO

__all__ = [
    "PROGRESS_MODES",
    "LiveFigures",
    "LiveProgress",
    "PlainProgress",
    "Progress",
    "RunHooks",
    "open_progress",
]

PROGRESS_MODES = ("auto", "live", "plain", "off")
MiB = 1024 * 1024
Step = tuple[int, int]
"""(n, of N): the step a scenario run is at."""


@dataclass(frozen=True)
class LiveFigures:
    """The latest figures worth watching; ``None`` = not read (yet)."""

    heap_inuse: float | None = None
    rate_bps: float | None = None
    dom_handles: float | None = None
    relay_subscriptions: float | None = None
    samples: int = 0
    restarts: int = 0
    faults: int = 0
    idle_periods: int = 0
    verdict: str = ""


@dataclass
class _State:
    started: float = field(default_factory=time.monotonic)
    phase: str = "starting"
    detail: str = ""
    step: tuple[int, int] | None = None
    until: float | None = None
    figures: LiveFigures = field(default_factory=LiveFigures)


class Progress(Protocol):
    """What a loop tells the display."""

    def phase(
        self, name: str, detail: str = "", *, countdown_s: float | None = None, step: Step | None = None
    ) -> None: ...

    def figures(self, figures: LiveFigures) -> None: ...

    def close(self) -> None: ...


def _clock(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _num(value: float | None, unit: str = "", scale: float = 1.0, fmt: str = ",.0f") -> str:
    return "-" if value is None else f"{value / scale:{fmt}}{unit}"


def _lines(title: str, total_s: float | None, st: _State) -> list[tuple[str, str]]:
    now = time.monotonic()
    elapsed = now - st.started
    when = _clock(elapsed)
    if total_s:
        when += f" of {_clock(total_s)} (ETA {_clock(total_s - elapsed)})"
    phase = st.phase
    if st.step is not None:
        phase = f"step {st.step[0]} of {st.step[1]}: {phase}"
    if st.detail:
        phase += f" {st.detail}"
    if st.until is not None:
        phase += f" ({max(0.0, st.until - now):.0f} s left)"
    f = st.figures
    rows = [
        ("elapsed", when),
        ("phase", phase),
        ("heapInuse", _num(f.heap_inuse, " MiB", MiB, ",.2f")),
        ("alloc rate", _num(f.rate_bps, " B/s")),
        ("DOM handles", _num(f.dom_handles)),
        ("relay subs", _num(f.relay_subscriptions)),
        ("samples", f"{f.samples:,}  idle periods {f.idle_periods}  restarts {f.restarts}  "
                    f"faults {f.faults}"),
    ]
    if f.verdict:
        rows.append(("verdict so far", f.verdict))
    return rows


class _Base:
    def __init__(self, title: str, total_s: float | None) -> None:
        self.title = title
        self.total_s = total_s
        self.state = _State()

    def phase(
        self, name: str, detail: str = "", *, countdown_s: float | None = None, step: Step | None = None
    ) -> None:
        until = None if countdown_s is None else time.monotonic() + countdown_s
        self.state = replace(self.state, phase=name, detail=detail, until=until, step=step)
        self._changed()

    def figures(self, figures: LiveFigures) -> None:
        self.state = replace(self.state, figures=figures)
        self._changed()

    def _changed(self) -> None:
        """Called after every report."""

    def close(self) -> None:
        """Stop displaying."""


class LiveProgress(_Base):
    """A rich live panel on ``stream`` (a terminal), redrawn by rich's refresh thread."""

    def __init__(self, title: str, total_s: float | None = None, stream: TextIO | None = None) -> None:
        super().__init__(title, total_s)
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=stream or sys.stderr)
        self._live = Live(
            console=self._console,
            get_renderable=self._render,
            refresh_per_second=4,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def _render(self) -> Any:
        from rich.panel import Panel
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for k, v in _lines(self.title, self.total_s, self.state):
            table.add_row(k, v)
        return Panel(table, title=self.title, expand=False)

    def close(self) -> None:
        self._live.stop()


class PlainProgress(_Base):
    """One line every ``every_s`` seconds on ``stream`` (written when the loop reports)."""

    def __init__(
        self, title: str, total_s: float | None = None, stream: TextIO | None = None, every_s: float = 60.0
    ) -> None:
        super().__init__(title, total_s)
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._next = time.monotonic() + every_s

    def _changed(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every_s
        text = "; ".join(f"{k} {v}" for k, v in _lines(self.title, self.total_s, self.state))
        try:
            self.stream.write(f"{self.title}: {text}\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe must not stop the run
            pass


class _Off(_Base):
    pass


def open_progress(
    mode: str, title: str, total_s: float | None = None, *, stream: TextIO | None = None,
    every_s: float = 60.0,
) -> Progress:
    """The display for ``mode``: ``auto`` (live on a terminal, else plain), ``live``, ``plain`` or ``off``."""
    out = stream or sys.stderr
    if mode == "auto":
        mode = "live" if getattr(out, "isatty", lambda: False)() else "plain"
    if mode == "live":
        return LiveProgress(title, total_s, out)
    if mode == "plain":
        return PlainProgress(title, total_s, out, every_s)
    return _Off(title, total_s)


class RunHooks:
    """``relaysim run``'s progress: the runner's ``on_step`` and ``on_sample`` callbacks turned into
    the step (n of N), its phase -- browsing, waiting, settling, an idle window with its countdown --
    and the live figures. ``idle_window``/``idle_windows`` are the CLI's overrides (None: the step's)."""

    def __init__(
        self, progress: Progress, idle_window: float | None = None, idle_windows: int | None = None
    ) -> None:
        self.progress = progress
        self.idle_window = idle_window
        self.idle_windows = idle_windows
        self._step: Step | None = None
        self._idle_s: float | None = None
        self._in_window = False
        self._last: Any = None
        self._rate: float | None = None
        self._samples = 0

    def on_step(self, n: int, total: int, step: Any) -> None:
        kind = str(getattr(step, "KIND", "step"))
        self._step = (n, total)
        self._idle_s = None
        self._in_window = False
        if getattr(step, "BROWSING", False):
            self.progress.phase("browsing", kind, step=self._step)
        elif kind == "wait":
            self.progress.phase("waiting", countdown_s=float(step.seconds), step=self._step)
        elif kind == "measure_idle":
            window = self.idle_window if self.idle_window is not None else float(step.window)
            windows = self.idle_windows if self.idle_windows is not None else int(step.windows)
            self._idle_s = window * windows
            self.progress.phase("idle: settling", "(waiting for the relay to go quiet)", step=self._step)
        elif kind == "close_all":
            self.progress.phase("closing every subscription", step=self._step)
        elif kind == "assert":
            self.progress.phase("judging", step=self._step)
        else:
            self.progress.phase(kind, step=self._step)

    def on_sample(self, sample: Any, phase: str) -> None:
        if phase == "idle" and self._idle_s is not None and not self._in_window:
            self._in_window = True
            self.progress.phase("idle window", countdown_s=self._idle_s, step=self._step)
        prev, self._last = self._last, sample
        self._samples += 1
        if prev is not None and sample.t > prev.t:
            a, b = prev.figures.get("totalAlloc"), sample.figures.get("totalAlloc")
            if isinstance(a, int | float) and isinstance(b, int | float) and b >= a:
                self._rate = (b - a) / (sample.t - prev.t)
        f = sample.figures
        self.progress.figures(
            LiveFigures(
                heap_inuse=f.get("heapInuse"), rate_bps=self._rate, dom_handles=f.get("dom_handles"),
                relay_subscriptions=f.get("relay_subscriptions"), samples=self._samples,
            )
        )
