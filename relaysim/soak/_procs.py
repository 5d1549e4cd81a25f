"""The browser's processes, so a lost session does not leave a Chromium running for the rest of a soak.

Why: when chromedriver dies (killed, crashed), ``driver.quit()`` has nobody to ask, and the Chromium it
started keeps running -- re-parented, invisible to the soak -- with its renderers and their memory.
Over hours of faults that is a leak in the harness itself. So when a session opens, the soak notes
the process ids of the driver and of the processes it started (read from ``/proc``, Linux only; on
other systems nothing is noted), and after a fault it ends exactly those that are still the same
processes (same start time), never anything found by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessTree", "descendants", "process_tree"]


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of ``pid``, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return int(rest[1]), int(rest[19])


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), from ``/proc``."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                st = _stat(int(entry))
                if st is not None:
                    children.setdefault(st[0], []).append(int(entry))
    out: list[int] = []
    todo = list(children.get(pid, ()))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


@dataclass(frozen=True)
class ProcessTree:
    """Processes noted when a session opened: (pid, start time) pairs."""

    procs: tuple[tuple[int, int], ...] = ()

    def kill(self) -> int:
        """SIGKILL those still alive as the same process; returns how many were signalled."""
        n = 0
        for pid, started in self.procs:
            st = _stat(pid)
            if st is None or st[1] != started:
                continue
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                n += 1
        return n


def process_tree(driver: object) -> ProcessTree:
    """The driver process of a local WebDriver session and everything it started (empty if remote)."""
    process = getattr(getattr(driver, "service", None), "process", None)
    pid = getattr(process, "pid", None)
    if not isinstance(pid, int):
        return ProcessTree()
    procs = []
    for p in (pid, *descendants(pid)):
        st = _stat(p)
        if st is not None:
            procs.append((p, st[1]))
    return ProcessTree(tuple(procs))
