"""The search's progress for a person: examples tried, the best failing session so far, time used.

On a terminal a live line drawn with rich; otherwise (a CI log, a pipe) plain lines: one when
something happens (a failure found, a smaller one while shrinking) and one every ``every`` seconds.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol, TextIO

__all__ = ["PlainProgress", "Progress", "RichProgress", "progress_for"]


class Progress(Protocol):
    def update(self, status: dict[str, Any]) -> None: ...
    def event(self, text: str) -> None: ...
    def close(self) -> None: ...


def _line(s: dict[str, Any]) -> str:
    best = s.get("best")
    best_text = f"best: {best}" if best else "nothing found yet"
    return (
        f"{s['phase']}: {s['examples']} examples, {s['failing']} failing, {best_text}, "
        f"{s['elapsed']:.0f}/{s['budget']:.0f} s"
    )


class PlainProgress:
    """Plain lines on ``stream`` (stderr by default): events at once, status every ``every`` s."""

    def __init__(self, stream: TextIO | None = None, every: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self._last = 0.0

    def update(self, status: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            print(f"explore: {_line(status)}", file=self.stream, flush=True)

    def event(self, text: str) -> None:
        print(f"explore: {text}", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class RichProgress:
    """One live status line (rich), events printed above it."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.live = Live("", console=self.console, refresh_per_second=4, transient=True)
        self.live.start()

    def update(self, status: dict[str, Any]) -> None:
        self.live.update(f"[bold]explore[/] {_line(status)}")

    def event(self, text: str) -> None:
        self.console.print(f"explore: {text}", markup=False, highlight=False)

    def close(self) -> None:
        self.live.stop()


def progress_for(stream: TextIO | None = None) -> Progress:
    """Rich on a terminal, plain lines otherwise."""
    stream = stream or sys.stderr
    if stream.isatty():
        return RichProgress()
    return PlainProgress(stream)
