"""Progress for N sessions at once: one line per session, live on a terminal, periodic otherwise.

Each session's loop reports to its own :class:`~relaysim.soak.progress.Progress` (:meth:`Board.session`),
exactly as a single soak does; the board keeps the last phase and figures of each and shows them
together -- a rich ``Live`` table redrawn by rich's own thread on a terminal, or one block of plain
lines every ``every_s`` seconds (checked whenever any session reports) for a log. Both on stderr.
A display error never stops a session.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from relaysim.soak.progress import LiveFigures

__all__ = ["Board", "open_board"]

MiB = 1024 * 1024


@dataclass
class _Row:
    label: str
    app: str
    phase: str = "waiting"
    detail: str = ""
    figures: LiveFigures = field(default_factory=LiveFigures)


class _SessionProgress:
    """The :class:`~relaysim.soak.progress.Progress` one session's loop talks to."""

    def __init__(self, board: Board, row: _Row) -> None:
        self._board = board
        self._row = row

    def phase(self, name: str, detail: str = "", *, countdown_s: float | None = None,
              step: tuple[int, int] | None = None) -> None:
        self._row.phase, self._row.detail = name, detail
        self._board.changed()

    def figures(self, figures: LiveFigures) -> None:
        self._row.figures = figures
        self._board.changed()

    def close(self) -> None:
        """The board closes once, for every session."""


def _line(r: _Row) -> str:
    f = r.figures
    heap = "-" if f.heap_inuse is None else f"{f.heap_inuse / MiB:,.1f} MiB"
    rate = "-" if f.rate_bps is None else f"{f.rate_bps:,.0f} B/s"
    return (f"{r.label:<10} {r.app[:28]:<28} {r.phase[:16]:<16} samples {f.samples:>5}  heap {heap:>10}  "
            f"rate {rate:>10}  faults {f.faults}  {f.verdict}")


class Board:
    """Rows for every session; ``mode`` is ``live``, ``plain`` or ``off``."""

    def __init__(self, title: str, mode: str, every_s: float = 60.0, stream: TextIO | None = None) -> None:
        self.title = title
        self.mode = mode
        self.every_s = every_s
        self.stream = stream or sys.stderr
        self.rows: list[_Row] = []
        self.started = time.monotonic()
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self._live: Any = None
        if mode == "live":
            from rich.console import Console
            from rich.live import Live

            self._live = Live(get_renderable=self._render, console=Console(file=self.stream),
                              refresh_per_second=1, transient=False)
            self._live.start()

    def session(self, label: str, app: str) -> _SessionProgress:
        row = _Row(label, app)
        self.rows.append(row)
        return _SessionProgress(self, row)

    def _text(self) -> str:
        elapsed = int(time.monotonic() - self.started)
        head = f"{self.title}  {elapsed // 3600}:{elapsed % 3600 // 60:02d}:{elapsed % 60:02d}"
        return "\n".join([head, *(_line(r) for r in self.rows)])

    def _render(self) -> Any:
        from rich.text import Text

        return Text(self._text())

    def changed(self) -> None:
        if self.mode != "plain":
            return
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.every_s:
                return
            self._last = now
            try:
                self.stream.write(self._text() + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        if self._live is not None:
            with contextlib.suppress(Exception):  # a display error never stops a run
                self._live.stop()
            self._live = None


def open_board(mode: str, title: str, every_s: float = 60.0) -> Board:
    """``auto`` is ``live`` on a terminal and ``plain`` otherwise (as ``open_progress`` does)."""
    if mode == "auto":
        mode = "live" if sys.stderr.isatty() else "plain"
    return Board(title, mode, every_s)
