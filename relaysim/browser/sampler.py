"""A timeline of memory figures at a fixed interval, and the sampler's own cost.

Each sample is one ``execute_script`` round trip for every app hook (see :mod:`relaysim.browser.probes`).
An app without ``__moxie_mem_stats`` adds, when the session has CDP and ``cdp_metrics`` is on, one
``Performance.getMetrics`` round trip for the browser's JS heap, node and listener counts (the only
per-sample memory figures such an app has); an app with hooks keeps its one round trip and gets those
figures at the deep readings only.

A **deep reading** (:class:`relaysim.browser.isolates.IsolateProbe`: every isolate after a forced GC, the
Workers' WebAssembly.Memory, DOM counters and listeners, over the browser's own DevTools websocket, not
WebDriver) costs tens of milliseconds, so it is taken at the run's ends (phases ``start`` and ``end``), at
the boundaries of a measured repeat (``cycle-start``, ``cycle-end``; with ``snapshots`` a heap snapshot
there too) and every ``isolate_every``-th sample. Its figures join that sample's; the readings are kept in
``isolate_readings``. The sampler times itself and counts round trips from the session so the report can
say what sampling cost: ms and round trips per sample (deep readings apart), and ms per deep reading.

Samples are :class:`relaysim.analysis.Sample` values. Their ``t`` is the **page's own clock**
(``performance.timeOrigin + performance.now()``, seconds), read inside the same script that calls the hooks,
so an idle rate divides by the time the app really spent between two readings, not by the harness's
WebDriver latency. ``app_ts`` carries the same instant in milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from relaysim import analysis as an
from relaysim.analysis import Sample, SamplingCost
from relaysim.analysis._isolates import IsolateReading
from relaysim.browser.drivers import BrowserSession
from relaysim.browser.isolates import IsolateProbe
from relaysim.browser.probes import AppSample, enable_metrics, read_app, read_metrics

__all__ = ["DEEP_PHASES", "SNAPSHOT_PHASES", "Sampler", "sample_figures"]

DEEP_PHASES = frozenset({"start", "end", "cycle-start", "cycle-end"})
"""Sample phases that always take a deep (per-isolate, after GC) reading."""
SNAPSHOT_PHASES = frozenset({"cycle-start", "cycle-end"})
"""Sample phases where a heap snapshot is taken when the sampler was asked for ``snapshots``."""

_CDP_FIGURES = (("JSHeapUsedSize", an.JS_HEAP_USED), ("Nodes", an.NODES), ("JSEventListeners", an.LISTENERS))


def sample_figures(app: AppSample, metrics: Mapping[str, float] | None) -> dict[str, float | int | None]:
    """The figures of one reading, by :data:`relaysim.analysis.FIGURES` name; unread ones are absent."""
    figures: dict[str, float | int | None] = {}
    if app.mem is not None:
        for key in (an.TOTAL_ALLOC, an.MALLOCS, an.HEAP_INUSE, an.SYS):
            if isinstance(app.mem.get(key), int | float):
                figures[key] = app.mem[key]
    if app.handles is not None:
        figures[an.DOM_HANDLES] = app.handles
    if app.thread_events is not None:
        figures[an.THREAD_EVENTS] = app.thread_events
    if metrics:
        for key, name in _CDP_FIGURES:
            if key in metrics:
                figures[name] = metrics[key]
    if app.js_heap and isinstance(app.js_heap.get("used"), int | float):
        figures["perf_memory_used"] = app.js_heap["used"]
    return figures


class Sampler:
    """Takes samples on demand (:meth:`sample`) or while time passes (:meth:`run_for`).

    ``relay_figures`` (optional) is called per sample and its figures merged in (no browser round trip);
    ``on_sample(sample, phase)`` receives each sample as it is taken (a JSONL writer, so a killed run
    loses nothing).
    """

    def __init__(
        self,
        session: BrowserSession,
        *,
        interval: float = 1.0,
        cdp_metrics: bool = True,
        relay_figures: Callable[[], Mapping[str, float | int | None]] | None = None,
        on_sample: Callable[[Sample, str], None] | None = None,
        isolates: bool = True,
        isolate_every: int = 10,
        snapshots: bool = False,
    ) -> None:
        self.session = session
        self.interval = interval
        self.cdp_metrics = cdp_metrics and session.has_cdp
        self.isolate_every = isolate_every
        self.probe = IsolateProbe(session, snapshots=snapshots) if isolates else None
        self.isolate_readings: list[IsolateReading] = []
        self.relay_figures = relay_figures
        self.on_sample = on_sample
        self.samples: list[Sample] = []
        self.phases: list[str] = []
        self.count = 0
        self.sample_seconds = 0.0
        self.sample_round_trips = 0
        self.alloc_log: list[dict[str, Any]] = []
        self.last: AppSample | None = None
        # (t, sizes) per sample that read __moxie_cache_sizes(); a malformed answer is kept as a reason
        self.cache_readings: list[tuple[float, tuple[an.CacheGroupSize, ...]]] = []
        self.cache_error: str | None = None
        self._log_length = 0
        self._metrics_enabled = False

    def page_loaded(self) -> None:
        """Call after a navigation: the CDP Performance domain and the alloc log start over."""
        self._metrics_enabled = False
        self._log_length = 0

    def deep_due(self, phase: str) -> bool:
        """Whether the sample about to be taken (in ``phase``) takes a deep reading too."""
        if self.probe is None:
            return False
        every = self.isolate_every > 0 and self.count % self.isolate_every == 0
        return phase in DEEP_PHASES or every

    def sample(self, phase: str = "") -> Sample:
        """One sample now; keeps it and returns it."""
        started = time.perf_counter()
        trips = self.session.round_trips
        app = read_app(self.session, self._log_length)
        deep = self.deep_due(phase)
        metrics = None
        # an app with hooks keeps its one round trip; the browser's counters come with the deep readings
        if self.cdp_metrics and (app.mem is None or deep):
            if not self._metrics_enabled:
                self._metrics_enabled = enable_metrics(self.session)
            metrics = read_metrics(self.session)
        self.sample_seconds += time.perf_counter() - started
        self.sample_round_trips += self.session.round_trips - trips
        reading = None
        if deep and self.probe is not None:
            reading = self.probe.read(app.t, phase, snapshot=phase in SNAPSHOT_PHASES)
            self.isolate_readings.append(reading)
        self.count += 1
        self.last = app
        if app.log:
            self.alloc_log.extend(app.log)
        self._log_length = app.log_length
        if app.caches is not None:
            try:
                self.cache_readings.append((app.t, an.parse_cache_sizes(app.caches)))
            except ValueError as exc:
                self.cache_error = f"__moxie_cache_sizes() answered something malformed: {exc}"
        figures = sample_figures(app, metrics)
        if reading is not None:
            figures.update(reading.figures())
        if self.relay_figures is not None:
            figures.update(self.relay_figures())
        sample = Sample(t=app.t, figures=figures, app_ts=round(app.t * 1000.0, 3))
        self.samples.append(sample)
        self.phases.append(phase)
        if self.on_sample is not None:
            self.on_sample(sample, phase)
        return sample

    def run_for(self, seconds: float, phase: str = "") -> list[Sample]:
        """Sample every ``interval`` for ``seconds``: first sample now, last one at the end."""
        taken = [self.sample(phase)]
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(self.interval, remaining))
            taken.append(self.sample(phase))
        return taken

    def last_isolates(self, phase: str | None = None) -> IsolateReading | None:
        """The newest deep reading (of the last sample, when ``phase`` is given and matches), or None."""
        if not self.isolate_readings:
            return None
        last = self.isolate_readings[-1]
        if phase is not None and (last.phase != phase or not self.samples or last.t != self.samples[-1].t):
            return None
        return last

    def cost(self) -> SamplingCost:
        """What sampling cost so far: ms and WebDriver round trips per sample, ms per deep reading."""
        probe = self.probe
        reads = probe.reads if probe is not None else 0
        per_read = round(1000.0 * probe.seconds / reads, 3) if probe is not None and reads else None
        if not self.count:
            return SamplingCost(0, None, None, self.interval, reads, per_read)
        return SamplingCost(
            samples=self.count,
            ms_per_sample=round(1000.0 * self.sample_seconds / self.count, 3),
            round_trips_per_sample=round(self.sample_round_trips / self.count, 3),
            interval_seconds=self.interval,
            isolate_reads=reads,
            ms_per_isolate_read=per_read,
        )
