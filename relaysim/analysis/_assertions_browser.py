"""The browser-level assertions: what any web client can be judged on, hooks or not.

Each is judged like ``cycle_growth``: on the weakest measured cycle of a ``repeat`` with
``measure_cycles = true`` (:func:`relaysim.analysis._isolates.browser_cycles`), from readings taken after a
forced GC in every isolate. A leak tied to the repeated actions grows its figure in every cycle; one
quiet cycle acquits. When an assertion fails, ``explain`` names what holds the growth: the Worker by its
script URL, the listener type and handler on window or document, and -- with ``--snapshots`` -- the
retaining path of the largest detached DOM tree and the objects that hold what is new.

``heap_delta`` and ``cycle_growth`` (in :mod:`relaysim.analysis._assertions`) fall back to the aggregate
:data:`~relaysim.analysis._isolates.APP_MEMORY` through :func:`app_memory_delta` and
:func:`app_memory_cycles` when the app has no ``__moxie_mem_stats`` hook.
"""

from __future__ import annotations

from relaysim.analysis._cycles import CycleGrowth
from relaysim.analysis._isolates import (
    APP_MEMORY,
    JS_HEAP_AFTER_GC,
    LISTENERS_AFTER_GC,
    NODES_AFTER_GC,
    BrowserCycles,
    IsolateReading,
    ListenerGroup,
    retaining_path,
)
from relaysim.analysis._verdict import (
    Assertion,
    AssertionResult,
    Evidence,
    Measured,
    NotMeasured,
    Threshold,
    Thresholds,
    Tolerance,
    register,
)

__all__ = [
    "BROWSER",
    "DOM_NODES_GROWTH",
    "JS_HEAP_GROWTH",
    "LISTENERS_GROWTH",
    "WORKER_MEMORY_GROWTH",
    "app_memory_cycles",
    "app_memory_delta",
]

BROWSER = "browser"
"""``source`` of a verdict read from the browser's own figures (CDP, every isolate after a forced GC)."""

_NO_CYCLES = "no repeat with measure_cycles = true in this run"
_SNAPSHOTS_HINT = "run with --snapshots to name what holds it"


def _cycles(ev: Evidence) -> BrowserCycles | NotMeasured:
    if ev.browser_cycles is None:
        return NotMeasured(ev.browser_cycles_unavailable or _NO_CYCLES)
    return ev.browser_cycles


def _per_cycle(g: CycleGrowth, unit: str = "B") -> str:
    values = ", ".join(f"{v:+,.0f}" for v in g.per_cycle_bytes)
    return f"weakest of {g.cycles} cycle(s) after {g.warmup} warm-up (per cycle {unit}: {values})"


def _measured_boundaries(bc: BrowserCycles) -> tuple[IsolateReading, ...]:
    """The readings that bound the measured cycles (the warm-up passes left out)."""
    return bc.readings[bc.warmup:]


# -- js_heap_growth -----------------------------------------------------------------------------------


def _measure_js_heap(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    bc = _cycles(ev)
    if isinstance(bc, NotMeasured):
        return bc
    if bc.js_heap is None:
        return NotMeasured(bc.unavailable.get(JS_HEAP_AFTER_GC, "page JS heap not read"))
    return Measured(bc.js_heap.weakest, f"page JS heap after GC, {_per_cycle(bc.js_heap)}", BROWSER)


def _explain_holders(r: AssertionResult, ev: Evidence) -> str | None:
    bc = ev.browser_cycles
    if bc is None:
        return None
    snaps = [x.snapshot for x in _measured_boundaries(bc)[1:] if x.snapshot is not None and x.snapshot.grown]
    if not snaps:
        return f"{r.detail}; {_SNAPSHOTS_HINT}"
    top = snaps[-1].grown[0]
    return (
        f"{r.detail}; held by {top.holder} (+{top.objects:,} objects, +{top.bytes:,} B in the last cycle): "
        f"{retaining_path(top.path)}"
    )


JS_HEAP_GROWTH = register(Assertion(
    name="js_heap_growth",
    summary="smallest growth of the page's JS heap after GC in any measured cycle",
    unit="B/cycle",
    thresholds=(
        Threshold("js_heap_growth_bytes", 65536, "page JS heap growth allowed per cycle (after GC)"),
    ),
    measure=_measure_js_heap,
    requires="cycles",
    requires_text="a repeat with measure_cycles = true",
    reads=("browser_cycles", "browser_cycles_unavailable"),
    explain=_explain_holders,
    tolerance=Tolerance(abs=16384, rel=0.25),
))


# -- dom_nodes_growth ---------------------------------------------------------------------------------


def _measure_nodes(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    bc = _cycles(ev)
    if isinstance(bc, NotMeasured):
        return bc
    if bc.nodes is None:
        return NotMeasured(bc.unavailable.get(NODES_AFTER_GC, "DOM counters not read"))
    detail = f"DOM nodes after GC (Memory.getDOMCounters), {_per_cycle(bc.nodes, 'nodes')}"
    return Measured(bc.nodes.weakest, detail, BROWSER)


def _explain_nodes(r: AssertionResult, ev: Evidence) -> str | None:
    bc = ev.browser_cycles
    if bc is None:
        return None
    snaps = [x.snapshot for x in _measured_boundaries(bc) if x.snapshot is not None]
    if not snaps:
        return f"{r.detail}; {_SNAPSHOTS_HINT}"
    last = snaps[-1]
    if last.largest_detached is None:
        return f"{r.detail}; the last heap snapshot holds no detached DOM node (the nodes are attached)"
    tree = last.largest_detached
    counts = " -> ".join(str(s.detached_nodes) for s in snaps)
    return (
        f"{r.detail}; detached DOM nodes in the snapshots: {counts}; largest detached tree "
        f"({tree.nodes} node(s), root {tree.root}) held by {retaining_path(tree.path)}"
    )


DOM_NODES_GROWTH = register(Assertion(
    name="dom_nodes_growth",
    summary="smallest growth of the live DOM node count after GC in any measured cycle",
    unit="nodes/cycle",
    comparison="<=",
    thresholds=(Threshold("dom_nodes_growth_max", 8, "DOM nodes a cycle may add (after GC)"),),
    measure=_measure_nodes,
    requires="cycles",
    requires_text="a repeat with measure_cycles = true",
    reads=("browser_cycles", "browser_cycles_unavailable"),
    explain=_explain_nodes,
    tolerance=Tolerance(abs=4),
))


# -- listeners_growth ---------------------------------------------------------------------------------


def _measure_listeners(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    bc = _cycles(ev)
    if isinstance(bc, NotMeasured):
        return bc
    if bc.listeners is None:
        return NotMeasured(bc.unavailable.get(LISTENERS_AFTER_GC, "listener counts not read"))
    detail = f"JS event listeners after GC (Memory.getDOMCounters), {_per_cycle(bc.listeners, 'listeners')}"
    return Measured(bc.listeners.weakest, detail, BROWSER)


def _groups(reading: IsolateReading) -> dict[tuple[str, str], ListenerGroup]:
    return {(g.target, g.type): g for g in reading.listeners or ()}


def _explain_listeners(r: AssertionResult, ev: Evidence) -> str | None:
    bc = ev.browser_cycles
    if bc is None:
        return None
    bounds = _measured_boundaries(bc)
    if len(bounds) < 2 or bounds[0].listeners is None or bounds[-1].listeners is None:
        return None
    first, last = _groups(bounds[0]), _groups(bounds[-1])
    grew = [
        (key, first[key].count if key in first else 0, g)
        for key, g in last.items()
        if g.count > (first[key].count if key in first else 0)
    ]
    if not grew:
        return f"{r.detail}; not on window or document (their listeners did not grow): on other nodes"
    grew.sort(key=lambda x: x[1] - x[2].count)
    parts = [f"{t}.on{kind} {before} -> {g.count} (newest: {g.handler})" for (t, kind), before, g in grew]
    return f"{r.detail}; grew: {', '.join(parts)}"


LISTENERS_GROWTH = register(Assertion(
    name="listeners_growth",
    summary="smallest growth of the JS event listener count after GC in any measured cycle",
    unit="listeners/cycle",
    comparison="<=",
    thresholds=(Threshold("listeners_growth_max", 0, "JS event listeners a cycle may add (after GC)"),),
    measure=_measure_listeners,
    requires="cycles",
    requires_text="a repeat with measure_cycles = true",
    reads=("browser_cycles", "browser_cycles_unavailable"),
    explain=_explain_listeners,
))


# -- worker_memory_growth -----------------------------------------------------------------------------


def _measure_workers(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    bc = _cycles(ev)
    if isinstance(bc, NotMeasured):
        return bc
    if not bc.workers:
        if bc.js_heap is None:  # the readings themselves failed: say why, not "no Worker"
            return NotMeasured(bc.unavailable.get(JS_HEAP_AFTER_GC, "browser-level figures not read"))
        if any(r.workers for r in bc.readings):
            why = next((u for r in bc.readings for u in r.unavailable if "worker" in u), "Workers not read")
            return NotMeasured(why)
        # nothing to judge is not a pass: a figure that cannot grow would pass silently
        return NotMeasured("the page ran no dedicated Worker at the cycle boundaries")
    url, worst = max(bc.workers, key=lambda w: w[1].weakest)
    detail = f"worst Worker {url}: JS heap + WebAssembly.Memory after GC, {_per_cycle(worst)}"
    return Measured(worst.weakest, f"{detail}; {len(bc.workers)} Worker script(s)", BROWSER)


def _explain_workers(r: AssertionResult, ev: Evidence) -> str | None:
    bc = ev.browser_cycles
    if bc is None:
        return None
    bounds = _measured_boundaries(bc)
    limit = r.threshold
    grown = [url for url, g in bc.workers if g.weakest >= limit]
    parts = []
    for url in grown:
        def wasm(reading: IsolateReading, url: str = url) -> int:
            return sum(w.wasm_memory_bytes or 0 for w in reading.workers if url.startswith(w.url))

        parts.append(f"{url} WebAssembly.Memory {wasm(bounds[0]):,} -> {wasm(bounds[-1]):,} B")
    return f"{r.detail}; grew in every cycle: {'; '.join(parts)}" if parts else None


WORKER_MEMORY_GROWTH = register(Assertion(
    name="worker_memory_growth",
    summary="smallest growth of any Worker's memory (JS heap + WebAssembly.Memory, after GC) in any cycle",
    unit="B/cycle",
    thresholds=(
        Threshold("worker_memory_growth_bytes", 65536, "growth allowed per cycle per Worker script URL"),
    ),
    measure=_measure_workers,
    requires="cycles",
    requires_text="a repeat with measure_cycles = true",
    reads=("browser_cycles", "browser_cycles_unavailable"),
    explain=_explain_workers,
    tolerance=Tolerance(abs=65536, rel=0.25),
))


# -- fallbacks for heap_delta and cycle_growth ---------------------------------------------------------


def app_memory_delta(ev: Evidence) -> Measured | None:
    """final - initial :data:`APP_MEMORY` from the browser-level readings, or None when unread."""
    have = [(r, v) for r in ev.isolates if (v := r.figures().get(APP_MEMORY)) is not None]
    if len(have) < 2:
        return None
    (a, v0), (b, v1) = have[0], have[-1]
    detail = (
        f"app memory after GC (page JS + Blink heap, Workers, WebAssembly.Memory) {v0:,} -> {v1:,} "
        f"({a.phase or 'first'} -> {b.phase or 'last'} reading); no heapInuse hook"
    )
    return Measured(v1 - v0, detail, BROWSER)


def app_memory_cycles(ev: Evidence) -> Measured | None:
    """The weakest cycle of :data:`APP_MEMORY`, naming the isolate that grew most, or None."""
    bc = ev.browser_cycles
    if bc is None or bc.app_memory is None:
        return None
    g = bc.app_memory
    parts = []
    if bc.js_heap is not None:
        parts.append(f"page JS heap {bc.js_heap.weakest:+,.0f}")
    parts.extend(f"Worker {url} {w.weakest:+,.0f}" for url, w in bc.workers)
    of = f"; weakest per part: {', '.join(parts)}" if parts else ""
    return Measured(g.weakest, f"app memory after GC, {_per_cycle(g)}; no heapInuse hook{of}", BROWSER)
