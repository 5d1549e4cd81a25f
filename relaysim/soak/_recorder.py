"""Every sample of a soak, on its way to the timeline: the soak's own figures added, restarts noticed.

Theory of operation. The runner's :class:`~relaysim.browser.Sampler` calls :meth:`Recorder.on_sample`
with each sample it takes (after a step, while time passes, in an idle window). The recorder

* adds what only a soak needs: ``app_restarts`` (the page's restart counter, from
  ``__relaysim_app_state().restarts``, read in the same round trip as the hooks) -- the relay's
  figures (subscriptions, events and live events sent, store size) come from :func:`relay_figures`,
  which the soak loop installs as the sampler's ``relay_figures``;
* gives the sample its place on the soak clock (:class:`~relaysim.soak._files.SoakClock`) and
  appends it to ``timeline.jsonl`` (fsynced before the next sample is taken);
* notices a proactive Worker restart -- the counter went up -- and writes a ``restart`` event with
  the heap before and after and the page state before; the soak loop then checks that the state
  came back (:meth:`Recorder.restore_check`);
* keeps only the last sample and the figures the progress display shows: nothing here grows
  with the length of the soak.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from relaysim import analysis as an
from relaysim.analysis import APP_RESTARTS, Sample
from relaysim.report import TimelineWriter
from relaysim.soak._files import EventLog, SoakClock
from relaysim.soak.progress import LiveFigures

__all__ = ["PageState", "Recorder", "relay_figures"]

RELAY_LIVE_EVENTS_SENT = "relay_live_events_sent"
RELAY_STORE_EVENTS = "relay_store_events"
RATE_SPAN_S = 60.0
"""The display's current allocation rate is taken over about this much of the latest samples."""


def relay_figures(stats: Callable[[], Mapping[str, Any]]) -> Callable[[], dict[str, float | int | None]]:
    """The relay's side of a soak sample, from one ``/stats`` read."""

    def read() -> dict[str, float | int | None]:
        doc = stats()
        totals = doc.get("totals", {})
        return {
            an.RELAY_SUBSCRIPTIONS: totals.get("subscriptions_active"),
            "relay_events_sent": totals.get("events_sent"),
            "relay_bytes_sent": totals.get("bytes_sent"),
            RELAY_LIVE_EVENTS_SENT: totals.get("live_events_sent"),
            RELAY_STORE_EVENTS: (doc.get("store") or {}).get("events"),
        }

    return read


@dataclass(frozen=True)
class PageState:
    """What a proactive restart must give back: the page, what it shows, the viewer, the scroll."""

    page: str | None
    arg: object
    pubkey: str | None
    scroll_y: float | None
    ready: bool = True

    @classmethod
    def of(cls, state: Mapping[str, Any] | None) -> PageState | None:
        if not state:
            return None
        scroll = state.get("scrollY")
        return cls(
            page=state.get("page"),
            arg=state.get("arg"),
            pubkey=state.get("viewer"),
            scroll_y=float(scroll) if isinstance(scroll, int | float) else None,
            ready=bool(state.get("ready", True)),
        )

    def as_dict(self) -> dict[str, Any]:
        return {"page": self.page, "arg": self.arg, "pubkey": self.pubkey, "scroll_y": self.scroll_y}


@dataclass(frozen=True)
class PendingRestart:
    """A restart seen at ``t``; ``before`` is the page state of the sample before it."""

    t: float
    before: PageState | None


class Recorder:
    """The soak's ``on_sample``: see the module docstring. ``state_of()`` gives the page state the
    sampler read with the sample (``sampler.last.state``)."""

    def __init__(
        self,
        timeline: TimelineWriter,
        events: EventLog,
        clock: SoakClock,
        *,
        on_figures: Callable[[LiveFigures], None] | None = None,
    ) -> None:
        self.timeline = timeline
        self.events = events
        self.clock = clock
        self.on_figures = on_figures
        self.state_of: Callable[[], Mapping[str, Any] | None] = lambda: None
        self.written = 0
        self.restarts = 0
        self.faults = 0
        self.idle_periods = 0
        self.verdict = ""
        self.pending: PendingRestart | None = None
        self.last: Sample | None = None
        self._last_state: PageState | None = None
        self._last_restarts: int | None = None
        self._rate: float | None = None
        self._recent: deque[tuple[float, float]] = deque(maxlen=1000)

    def new_session(self, state_of: Callable[[], Mapping[str, Any] | None]) -> None:
        """A new browser session: its counters start again, nothing is compared across it."""
        self.state_of = state_of
        self.clock.new_session()
        self.last = None
        self._last_state = None
        self._last_restarts = None
        self.pending = None
        self._rate = None
        self._recent.clear()

    def on_sample(self, sample: Sample, phase: str) -> None:
        state = self.state_of()
        figures = dict(sample.figures)
        restarts = state.get("restarts") if state else None
        if isinstance(restarts, int) and not isinstance(restarts, bool):
            figures[APP_RESTARTS] = restarts
        t, shift = self.clock.admit(sample.t)
        if shift is not None:
            self.events.emit("clock_shift", t=t, shift_s=round(shift, 6))
        out = Sample(t=t, figures=figures, app_ts=sample.app_ts)
        self.timeline.append(out)
        self.written += 1
        page = PageState.of(state)
        if isinstance(restarts, int) and self._last_restarts is not None and restarts > self._last_restarts:
            self._restarted(out, restarts, page)
        if isinstance(restarts, int):
            self._last_restarts = restarts
        self._rate = self._recent_rate(out)
        self.last = out
        if page is not None and page.ready:
            self._last_state = page
        self.report()

    def _recent_rate(self, s: Sample) -> float | None:
        """totalAlloc per second over the last minute of this session (the display's "current rate")."""
        v = s.get(an.TOTAL_ALLOC)
        if v is None:
            return self._rate
        recent = self._recent
        if recent and v < recent[-1][1]:
            recent.clear()  # the counter was reset (a restart)
        recent.append((s.t, float(v)))
        while len(recent) > 2 and s.t - recent[1][0] >= RATE_SPAN_S:
            recent.popleft()
        t0, v0 = recent[0]
        return (v - v0) / (s.t - t0) if s.t > t0 else self._rate

    def _restarted(self, sample: Sample, counter: int, page: PageState | None) -> None:
        prev = self.last
        self.restarts += 1
        self.events.emit(
            "restart",
            t=sample.t,
            restarts=counter,
            heap_before=prev.get(an.HEAP_INUSE) if prev else None,
            heap_after=sample.get(an.HEAP_INUSE),
            state_before=self._last_state.as_dict() if self._last_state else None,
        )
        self.pending = PendingRestart(sample.t, self._last_state)

    def restore_check(self, after: PageState | None) -> dict[str, Any] | None:
        """Compare the page state after a pending restart with the one before; writes
        ``restart_restored`` and returns it (None when no restart is pending)."""
        pending, self.pending = self.pending, None
        if pending is None:
            return None
        before = pending.before
        if before is None or after is None:
            return self.events.emit("restart_restored", restored=None, why="app state not readable")
        checks = {
            "page": before.page == after.page,
            "arg": before.arg == after.arg,
            "pubkey": before.pubkey == after.pubkey,
            # the page is re-fetched after a restart and may be shorter: scrolled back is enough
            "scroll": (before.scroll_y or 0) == 0 or (after.scroll_y or 0) > 0,
        }
        return self.events.emit(
            "restart_restored",
            restored=all(checks.values()),
            failed=[k for k, ok in checks.items() if not ok],
            before=before.as_dict(),
            after=after.as_dict(),
        )

    def report(self) -> None:
        """Send the current figures to the display."""
        if self.on_figures is None:
            return
        s = self.last
        self.on_figures(
            LiveFigures(
                heap_inuse=s.get(an.HEAP_INUSE) if s else None,
                rate_bps=self._rate,
                dom_handles=s.get(an.DOM_HANDLES) if s else None,
                relay_subscriptions=s.get(an.RELAY_SUBSCRIPTIONS) if s else None,
                samples=self.written,
                restarts=self.restarts,
                faults=self.faults,
                idle_periods=self.idle_periods,
                verdict=self.verdict,
            )
        )
