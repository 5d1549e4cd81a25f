"""A timeline of memory figures at a fixed interval, and the sampler's own cost.

Each sample is one ``execute_script`` round trip for every app hook (see :mod:`relaysim.browser.probes`)
plus, when the session has CDP and ``cdp_metrics`` is on, one ``Performance.getMetrics`` round trip for the
browser's JS heap, node and listener counts. The sampler times itself and counts round trips from the
session so the report can say what sampling cost (ms per sample, round trips per sample).

Rows are plain dicts, ready for a JSONL timeline: ``t`` is the page's own clock (``performance.timeOrigin +
performance.now()``, seconds), so rates use the app's timestamps, not the harness's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from relaysim.browser.drivers import BrowserSession
from relaysim.browser.probes import AppSample, enable_metrics, read_app, read_metrics

__all__ = ["Sampler"]

Row = dict[str, Any]


class Sampler:
    """Takes samples on demand (:meth:`sample`) or while time passes (:meth:`run_for`).

    ``relay_stats`` (optional) is called per sample for relay-side figures (no browser round trip);
    ``on_row`` receives each row as it is taken (a JSONL writer, so a killed run loses nothing).
    """

    def __init__(
        self,
        session: BrowserSession,
        *,
        interval: float = 1.0,
        cdp_metrics: bool = True,
        relay_stats: Callable[[], dict[str, Any]] | None = None,
        on_row: Callable[[Row], None] | None = None,
    ) -> None:
        self.session = session
        self.interval = interval
        self.cdp_metrics = cdp_metrics and session.has_cdp
        self.relay_stats = relay_stats
        self.on_row = on_row
        self.rows: list[Row] = []
        self.samples = 0
        self.sample_seconds = 0.0
        self.sample_round_trips = 0
        self.max_handles: int | None = None
        self.max_heap_inuse: float | None = None
        self.log_length = 0
        self.alloc_log: list[dict[str, Any]] = []
        self.last: AppSample | None = None
        self._metrics_enabled = False

    def page_loaded(self) -> None:
        """Call after a navigation: CDP's Performance domain must be enabled again for the new page."""
        self._metrics_enabled = False
        self.log_length = 0

    def sample(self, phase: str = "") -> Row:
        """One sample now; returns its row and keeps it."""
        started = time.perf_counter()
        trips = self.session.round_trips
        app = read_app(self.session, self.log_length)
        metrics = None
        if self.cdp_metrics:
            if not self._metrics_enabled:
                self._metrics_enabled = enable_metrics(self.session)
            metrics = read_metrics(self.session)
        self.sample_seconds += time.perf_counter() - started
        self.sample_round_trips += self.session.round_trips - trips
        self.samples += 1
        self.last = app
        if app.log:
            self.alloc_log.extend(app.log)
        self.log_length = app.log_length
        row: Row = {"t": round(app.t, 4), "wall": round(time.time(), 4), "phase": phase}
        if app.mem is not None:
            for key in ("totalAlloc", "mallocs", "heapInuse", "sys"):
                if key in app.mem:
                    row[key] = app.mem[key]
            heap = app.mem.get("heapInuse")
            if heap is not None:
                self.max_heap_inuse = heap if self.max_heap_inuse is None else max(self.max_heap_inuse, heap)
        if app.handles is not None:
            row["dom_handles"] = app.handles
            self.max_handles = app.handles if self.max_handles is None else max(self.max_handles, app.handles)
        if app.js_heap:
            row["js_heap_used"] = app.js_heap.get("used")
        if metrics:
            for key, name in (("JSHeapUsedSize", "cdp_js_heap_used"), ("Nodes", "nodes"),
                              ("JSEventListeners", "js_event_listeners")):
                if key in metrics:
                    row[name] = metrics[key]
        if self.relay_stats is not None:
            row["relay"] = self.relay_stats()
        self.rows.append(row)
        if self.on_row is not None:
            self.on_row(row)
        return row

    def run_for(self, seconds: float, phase: str = "") -> list[Row]:
        """Sample every ``interval`` for ``seconds`` (first sample immediately, last at the end)."""
        taken = [self.sample(phase)]
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(self.interval, remaining))
            taken.append(self.sample(phase))
        return taken

    def cost(self) -> dict[str, float | int | None]:
        """What sampling cost so far: ms and WebDriver round trips per sample."""
        if not self.samples:
            return {"samples": 0, "ms_per_sample": None, "round_trips_per_sample": None}
        return {
            "samples": self.samples,
            "ms_per_sample": round(1000.0 * self.sample_seconds / self.samples, 3),
            "round_trips_per_sample": round(self.sample_round_trips / self.samples, 3),
            "interval_seconds": self.interval,
        }
