"""A soak's output directory as the soak loop writes it, and what a resumed soak reads back from it.

Theory of operation (docs/report-schema.md, "Soak output directory"). Two append-only files carry
everything a killed soak must not lose: ``timeline.jsonl`` (a :class:`~relaysim.report.TimelineWriter`
fsynced after every line) and ``events.jsonl`` (the same writer: one ``{"t", "wall", "type", ...}``
object per line, fsynced after every event). ``summary.json`` and ``report.html`` are derived from
them at the end, atomically, and can be derived again (``relaysim report DIR``).

**The clock.** A sample's ``t`` is the page's own clock, ``performance.timeOrigin +
performance.now()`` in seconds (:mod:`relaysim.browser.sampler`): Unix time as the browser sees it.
Every browser a soak starts -- the first, a replacement after a crash, the one a ``--resume`` starts
hours later in another process -- reads the same system clock, so ``t`` simply continues, and the
time the soak was stopped shows as a gap between two samples (named by the ``resume`` and
``session_replaced`` events in it). Nothing is renumbered and no offset is stored. Two guards keep
the timeline strictly increasing anyway: :class:`SoakClock` shifts a session's samples forward if
its clock ever reads at or before the last written ``t`` (a system clock stepped back; the shift is
recorded as a ``clock_shift`` event), and events take their ``t`` from the same clock (the last
sample's ``t`` plus the wall time since), so idle periods, restarts and faults line up with samples.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from relaysim.errors import UsageError
from relaysim.report import TimelineWriter, read_soak_dir
from relaysim.report._soakdir import EVENTS, REPORT_HTML, SUMMARY, TIMELINE

__all__ = [
    "EVENTS",
    "REPORT_HTML",
    "SUMMARY",
    "TIMELINE",
    "EventLog",
    "PriorRun",
    "SoakClock",
    "SoakMeta",
    "default_out_dir",
    "read_prior",
]


@dataclass(frozen=True)
class SoakMeta:
    """What a soak was asked to do: written in its ``start`` event, read back by ``--resume``."""

    duration_s: float
    app: str = "builtin"
    adapter: str | None = None
    traffic: str | None = None
    interval: float = 10.0
    seed: int = 1
    browse_s: float = 90.0
    think_s: tuple[float, float] = (10.0, 40.0)
    idle_window: float = 30.0
    idle_settle: float = 5.0
    dataset: str = "seed1"
    browser: str = "chromium"
    webdriver_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_event(cls, event: dict[str, Any], where: str) -> SoakMeta:
        raw = event.get("meta")
        if not isinstance(raw, dict):
            raise UsageError(f"{where}: the start event has no 'meta' object (not written by relaysim soak?)")
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in raw.items() if k in known}
        if isinstance(given.get("think_s"), list):  # JSON has no tuples
            given["think_s"] = tuple(given["think_s"])
        try:
            return cls(**given)
        except TypeError as exc:
            raise UsageError(f"{where}: the start event's meta is incomplete: {exc}") from None


def default_out_dir(now: float | None = None) -> Path:
    """``soak-YYYYmmdd-HHMMSS`` (local time) in the current directory."""
    stamp = dt.datetime.fromtimestamp(time.time() if now is None else now).strftime("%Y%m%d-%H%M%S")
    return Path(f"soak-{stamp}")


class SoakClock:
    """Sample and event times on the page clock, strictly increasing (see the module docstring)."""

    def __init__(self, last_t: float | None = None) -> None:
        self.last_t = last_t
        self.shift = 0.0
        self._offset: float | None = None  # page clock - time.time(), from the last sample

    def new_session(self) -> None:
        """A new browser: its clock is read afresh (no shift carried over)."""
        self.shift = 0.0

    def admit(self, t: float) -> tuple[float, float | None]:
        """The ``t`` to write for a sample read at page time ``t``, and the new shift if it changed."""
        changed = None
        t += self.shift
        if self.last_t is not None and t <= self.last_t:
            extra = self.last_t - t + 0.001
            self.shift += extra
            t += extra
            changed = self.shift
        self.last_t = t
        self._offset = t - time.time()
        return t, changed

    def now(self) -> float:
        """The current time on the sample clock (never before the last sample)."""
        t = time.time() + (self._offset or 0.0)
        return t if self.last_t is None else max(t, self.last_t)


class EventLog:
    """``events.jsonl``: one event per line, fsynced at once; ``emit`` returns what it wrote."""

    def __init__(self, path: Path, clock: SoakClock) -> None:
        self._writer = TimelineWriter(path, fsync_every=1)
        self.clock = clock
        self.count = 0

    def emit(self, type_: str, t: float | None = None, **fields_: Any) -> dict[str, Any]:
        at = self.clock.now() if t is None else t
        event = {"t": at, "wall": round(time.time(), 3), "type": type_, **fields_}
        self._writer.append(event)
        self.count += 1
        return event

    def close(self) -> None:
        self._writer.close()


@dataclass(frozen=True)
class PriorRun:
    """What the processes before this one left in the directory (for ``--resume``)."""

    meta: SoakMeta
    samples: int
    last_t: float | None
    active_s: float
    resumes: int
    started_wall: float | None


def _process_starts(events: list[dict[str, Any]]) -> list[float]:
    return sorted(float(e["t"]) for e in events if e.get("type") in ("start", "resume") and _num(e.get("t")))


def _num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def active_seconds(sample_ts: list[float], starts: list[float]) -> float:
    """Sampled time summed per process: each process's last sample minus its first.

    ``starts`` are the ``t`` of the ``start``/``resume`` events; the time between processes (the
    soak was stopped) does not count towards ``--hours``.
    """
    if not sample_ts:
        return 0.0
    bounds = [*starts[1:], float("inf")]
    total = 0.0
    i = 0
    for hi in bounds:
        first = last = None
        while i < len(sample_ts) and sample_ts[i] < hi:
            first = sample_ts[i] if first is None else first
            last = sample_ts[i]
            i += 1
        if first is not None and last is not None:
            total += last - first
    return total


def read_prior(directory: Path) -> PriorRun:
    """Read a soak directory to resume it; :class:`UsageError` when it is not one."""
    soak = read_soak_dir(directory)
    start = next((e for e in soak.events if e.get("type") == "start"), None)
    if start is None:
        raise UsageError(f"{directory / EVENTS}: no start event (not a relaysim soak directory?)")
    meta = SoakMeta.from_event(start, str(directory / EVENTS))
    ts = [s.t for s in soak.samples]
    starts = _process_starts(soak.events)
    wall = start.get("wall")
    return PriorRun(
        meta=meta,
        samples=len(ts),
        last_t=ts[-1] if ts else None,
        active_s=active_seconds(ts, starts),
        resumes=sum(1 for e in soak.events if e.get("type") == "resume"),
        started_wall=float(wall) if isinstance(wall, int | float) else None,
    )
