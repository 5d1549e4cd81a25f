"""Browser-level readings of every isolate an app runs (page and Workers), and their growth per cycle.

Theory of operation. An app without relaysim's hooks still has memory the browser can count: the
page's JS heap and its Blink (embedder) heap, every dedicated Worker's heap, the byte length of every
``WebAssembly.Memory``, the live DOM nodes and JS event listeners. :mod:`relaysim.browser.isolates`
reads them over the browser's DevTools websocket **after a forced GC** (so what is counted is what the
app still holds, not garbage not yet collected) and gives one :class:`IsolateReading` per read. Those
reads cost tens of milliseconds, so the sampler takes them at the run's ends, at the boundaries of a
measured ``repeat`` and every Nth sample only.

Growth decisions use the rule the hook-based ``cycle_growth`` uses (:func:`relaysim.analysis.cycle_growth`):
readings before the first pass and after each, the first ``warmup`` passes not judged, the statistic is
the **weakest** measured cycle. :func:`browser_cycles` applies it to each figure: the page's JS heap,
DOM nodes, JS event listeners, each Worker's memory (grouped by script URL: a Worker started anew in
every pass, and never ended, makes its URL's memory grow too) and the aggregate :data:`APP_MEMORY`
that ``heap_delta`` and ``cycle_growth`` fall back to when the app has no hooks.

A heap snapshot summary (:class:`SnapshotSummary`, taken only on request) adds names: the detached DOM
trees and the retaining path of the largest, and the objects that hold what is new since the previous
snapshot (the Map, the array...). Everything here is pure: values in, values out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from relaysim.analysis._cycles import CycleGrowth, CycleReading, cycle_growth

__all__ = [
    "APP_MEMORY",
    "DETACHED_NODES",
    "DOCUMENTS",
    "ISOLATE_FIGURES",
    "JS_HEAP_AFTER_GC",
    "LISTENERS_AFTER_GC",
    "NODES_AFTER_GC",
    "WORKERS_MEMORY",
    "BrowserCycles",
    "DetachedTree",
    "GrowthHolder",
    "IsolateReading",
    "ListenerGroup",
    "SnapshotSummary",
    "WorkerReading",
    "browser_cycles",
    "retaining_path",
    "worker_label",
]

JS_HEAP_AFTER_GC = "js_heap_after_gc"  #: page isolate's used JS heap after a forced GC (Runtime.getHeapUsage)
NODES_AFTER_GC = "nodes_after_gc"  #: Memory.getDOMCounters nodes, after a forced GC
LISTENERS_AFTER_GC = "listeners_after_gc"  #: Memory.getDOMCounters jsEventListeners, after a forced GC
DOCUMENTS = "documents"  #: Memory.getDOMCounters documents, after a forced GC
WORKERS_MEMORY = "workers_memory"  #: every dedicated Worker's JS + embedder heap + WebAssembly.Memory bytes
APP_MEMORY = "app_memory"  #: page JS + embedder heap + page WebAssembly.Memory + WORKERS_MEMORY, after GC
DETACHED_NODES = "detached_nodes"  #: detached DOM nodes in the last heap snapshot (--snapshots)

ISOLATE_FIGURES: tuple[str, ...] = (
    JS_HEAP_AFTER_GC,
    NODES_AFTER_GC,
    LISTENERS_AFTER_GC,
    DOCUMENTS,
    WORKERS_MEMORY,
    APP_MEMORY,
    DETACHED_NODES,
)
"""The figures an :class:`IsolateReading` adds to a sample (see :meth:`IsolateReading.figures`)."""


@dataclass(frozen=True, slots=True)
class ListenerGroup:
    """JS event listeners of one ``type`` on ``target`` ("window" or "document"); ``handler`` names the
    first one (function name and line:column in its script)."""

    target: str
    type: str
    count: int
    handler: str = ""


@dataclass(frozen=True, slots=True)
class WorkerReading:
    """One dedicated Worker after a forced GC: its script ``url``, the ``name`` it was given, its JS and
    embedder heap, and its ``WebAssembly.Memory`` objects' total byte length (``wasm_memories`` of them).
    ``unavailable`` says why a figure is None (the Worker ended between listing and reading, say)."""

    url: str
    name: str = ""
    js_heap_used: int | None = None
    embedder_heap_used: int | None = None
    wasm_memory_bytes: int | None = None
    wasm_memories: int | None = None
    unavailable: str | None = None

    @property
    def memory(self) -> int | None:
        """JS heap + embedder heap + WebAssembly.Memory bytes; None when the heap was not read."""
        if self.js_heap_used is None:
            return None
        return self.js_heap_used + (self.embedder_heap_used or 0) + (self.wasm_memory_bytes or 0)


def worker_label(url: str, name: str = "") -> str:
    """How a report names a Worker: its script URL, and the name it was given when it has one."""
    return f"{url} ({name})" if name and name not in url else url


def retaining_path(parts: Sequence[str]) -> str:
    """A retaining path (object, edge, object, ... from the GC roots' side) as one line:
    ``Window @9 .leak -> Array @77 [0] -> <div> @81``."""
    out = ""
    for i, part in enumerate(parts):
        if i % 2:
            out += f" {part}" if part else ""
        else:
            out += (" -> " if out else "") + part
    return out


@dataclass(frozen=True, slots=True)
class DetachedTree:
    """A tree of detached DOM nodes in a heap snapshot: its size, its root's name, and the retaining
    path from the GC roots to it (edge names and object names, root first)."""

    nodes: int
    root: str
    path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GrowthHolder:
    """An object that existed at the previous snapshot and now holds ``objects`` new objects of
    ``bytes`` self size (a growing Map, an array of detached nodes); ``path`` is how it is retained."""

    holder: str
    objects: int
    bytes: int
    path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    """What one heap snapshot of the page said: its size, the detached DOM nodes and the largest
    detached tree, and (from the second snapshot on) who holds what is new, most bytes first."""

    nodes: int
    detached_nodes: int
    largest_detached: DetachedTree | None = None
    grown: tuple[GrowthHolder, ...] = ()
    seconds: float = 0.0
    snapshot_bytes: int = 0


@dataclass(frozen=True, slots=True)
class IsolateReading:
    """One browser-level reading at page time ``t`` (seconds), taken in sample phase ``phase``.

    ``js_heap_used``/``embedder_heap_used`` are the page isolate's after a forced GC; ``dom`` is
    ``Memory.getDOMCounters`` (documents, nodes, jsEventListeners) after it; ``listeners`` the JS event
    listeners on window and document by type; ``workers`` every dedicated Worker of the page;
    ``page_wasm_bytes`` the page's own WebAssembly.Memory bytes. ``unavailable`` lists what could not
    be read and why; ``ms`` is what the reading cost.
    """

    t: float
    phase: str = ""
    js_heap_used: int | None = None
    embedder_heap_used: int | None = None
    dom: Mapping[str, int] | None = None
    listeners: tuple[ListenerGroup, ...] | None = None
    workers: tuple[WorkerReading, ...] = ()
    page_wasm_bytes: int | None = None
    snapshot: SnapshotSummary | None = None
    unavailable: tuple[str, ...] = ()
    ms: float = 0.0

    def worker_memory(self) -> dict[str, int]:
        """Memory per Worker script URL (Workers sharing a URL summed; unread ones left out)."""
        out: dict[str, int] = {}
        for w in self.workers:
            if w.memory is not None:
                key = worker_label(w.url, w.name)
                out[key] = out.get(key, 0) + w.memory
        return out

    def figures(self) -> dict[str, float | int | None]:
        """This reading's figures by name (:data:`ISOLATE_FIGURES`), for a sample; unread ones absent."""
        out: dict[str, float | int | None] = {}
        if self.js_heap_used is not None:
            out[JS_HEAP_AFTER_GC] = self.js_heap_used
        if self.dom is not None:
            for key, name in (("nodes", NODES_AFTER_GC), ("jsEventListeners", LISTENERS_AFTER_GC),
                              ("documents", DOCUMENTS)):
                if isinstance(self.dom.get(key), int):
                    out[name] = self.dom[key]
        workers = None if any(w.memory is None for w in self.workers) else sum(
            w.memory or 0 for w in self.workers)
        if workers is not None:
            out[WORKERS_MEMORY] = workers
        if self.js_heap_used is not None and workers is not None:
            out[APP_MEMORY] = (
                self.js_heap_used + (self.embedder_heap_used or 0) + (self.page_wasm_bytes or 0) + workers
            )
        wasm = [w.wasm_memory_bytes for w in self.workers]
        if self.page_wasm_bytes is not None and all(x is not None for x in wasm):
            out["wasm_memory_bytes"] = self.page_wasm_bytes + sum(x or 0 for x in wasm)
        if self.snapshot is not None:
            out[DETACHED_NODES] = self.snapshot.detached_nodes
        return out


@dataclass(frozen=True)
class BrowserCycles:
    """Growth per measured cycle of every browser-level figure (same rule as ``cycle_growth``).

    ``js_heap``, ``nodes``, ``listeners`` and ``app_memory`` are the page's figures (None when not
    measured: ``unavailable`` says why, by figure name); ``workers`` is one growth per Worker script
    URL seen at the boundaries. ``readings`` are the boundary readings themselves (listener groups and
    snapshot summaries name what grew).
    """

    warmup: int
    cycles: int
    js_heap: CycleGrowth | None = None
    nodes: CycleGrowth | None = None
    listeners: CycleGrowth | None = None
    app_memory: CycleGrowth | None = None
    workers: tuple[tuple[str, CycleGrowth], ...] = ()
    unavailable: Mapping[str, str] = field(default_factory=dict)
    readings: tuple[IsolateReading, ...] = ()


def browser_cycles(readings: Sequence[IsolateReading | None], warmup: int = 1) -> BrowserCycles | str:
    """Weakest-cycle growth of each browser-level figure from the boundary ``readings`` (one before the
    first pass, one after each; None = no reading at that boundary). A string says why nothing could be
    measured."""
    if not readings:
        return "no reading at the measured repeat's boundaries"
    missing = [i for i, r in enumerate(readings) if r is None]
    if missing:
        return f"no browser-level reading at {len(missing)} of {len(readings)} cycle boundaries"
    got = [r for r in readings if r is not None]
    why: dict[str, str] = {}

    def growth(name: str, values: list[float | int | None]) -> CycleGrowth | None:
        series = [
            CycleReading(r.t, None if v is None else float(v)) for r, v in zip(got, values, strict=True)
        ]
        out = cycle_growth(series, warmup, (), name)
        if isinstance(out, str):
            why[name] = _first_reason(got, out)
            return None
        return out

    figs = [r.figures() for r in got]
    js = growth(JS_HEAP_AFTER_GC, [f.get(JS_HEAP_AFTER_GC) for f in figs])
    nodes = growth(NODES_AFTER_GC, [f.get(NODES_AFTER_GC) for f in figs])
    listeners = growth(LISTENERS_AFTER_GC, [f.get(LISTENERS_AFTER_GC) for f in figs])
    app = growth(APP_MEMORY, [f.get(APP_MEMORY) for f in figs])
    per_url = [r.worker_memory() for r in got]
    urls = sorted({u for m in per_url for u in m})
    workers = []
    for url in urls:
        g = growth(f"worker {url}", [m.get(url, 0) for m in per_url])
        if g is not None:
            workers.append((url, g))
    n = max(0, len(got) - 1 - warmup)
    return BrowserCycles(warmup, n, js, nodes, listeners, app, tuple(workers), why, tuple(got))


def _first_reason(readings: Sequence[IsolateReading], fallback: str) -> str:
    reasons = [u for r in readings for u in r.unavailable]
    return reasons[0] if reasons else fallback
