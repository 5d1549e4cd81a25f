"""What N sessions cost the machine that drives them: the harness's own figures, for the summary.

A background thread reads ``/proc`` every ``every_s`` seconds (Linux; elsewhere nothing is read and the
figures say so): the resident memory of this process (the harness, with the relay when it runs
in-process) and of any other process named (a relay started with ``relaysim serve``), and the CPU
seconds of each -- for an in-process relay, of the relay's own thread (``/proc/self/task/TID``), so
the relay's share is told apart from the sessions'. With the samples the sessions wrote and their
sampling cost (the soak's ``stop`` events), that gives samples per second, RSS and per-sample cost.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ResourceMonitor", "cpu_seconds", "rss_bytes"]

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def rss_bytes(pid: int | str = "self") -> int | None:
    """Resident set size of ``pid`` from ``/proc/PID/status`` (None when unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def cpu_seconds(stat_path: str) -> float | None:
    """utime + stime of a ``/proc/.../stat`` file, in seconds."""
    try:
        raw = Path(stat_path).read_text()
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2 :].split()
    try:
        return (int(rest[11]) + int(rest[12])) / TICK
    except (ValueError, IndexError):
        return None


@dataclass
class _Track:
    name: str
    pid: int | str
    stat: str
    rss_max: int | None = None
    rss_last: int | None = None
    cpu_first: float | None = None
    cpu_last: float | None = None


@dataclass
class ResourceMonitor:
    """Start with :meth:`start`, stop with :meth:`stop`; :meth:`figures` is the summary's ``figures``."""

    every_s: float = 5.0
    tracks: list[_Track] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch_process(self, name: str, pid: int | str = "self") -> None:
        self.tracks.append(_Track(name, pid, f"/proc/{pid}/stat"))

    def watch_thread(self, name: str, native_id: int) -> None:
        """A thread of this process: its CPU seconds (its memory is the process's)."""
        self.tracks.append(_Track(name, "self", f"/proc/self/task/{native_id}/stat"))

    def _read(self) -> None:
        for t in self.tracks:
            if not t.stat.startswith("/proc/self/task/"):
                rss = rss_bytes(t.pid)
                if rss is not None:
                    t.rss_last = rss
                    t.rss_max = rss if t.rss_max is None else max(t.rss_max, rss)
            cpu = cpu_seconds(t.stat)
            if cpu is not None:
                t.cpu_first = cpu if t.cpu_first is None else t.cpu_first
                t.cpu_last = cpu

    def start(self) -> None:
        self._read()

        def loop() -> None:
            while not self._stop.wait(self.every_s):
                self._read()

        self._thread = threading.Thread(target=loop, name="relaysim-figures", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every_s + 1)
        self._read()

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for t in self.tracks:
            if t.rss_max is not None:
                out[f"{t.name}_rss_max_mib"] = round(t.rss_max / 2**20, 1)
                out[f"{t.name}_rss_end_mib"] = round((t.rss_last or 0) / 2**20, 1)
            if t.cpu_first is not None and t.cpu_last is not None:
                out[f"{t.name}_cpu_s"] = round(t.cpu_last - t.cpu_first, 2)
        return out
