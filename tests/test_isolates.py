"""Browser-level figures without a browser: growth per cycle, the four assertions and the fallbacks of
heap_delta and cycle_growth (pure, on hand-made readings), and heap snapshot analysis on a small snapshot
written here node by node in V8's own format."""

from __future__ import annotations

import pytest

from relaysim import analysis as an
from relaysim.analysis import Evidence, IsolateReading, ListenerGroup, Sample, Verdict, WorkerReading
from relaysim.browser.snapshots import parse_snapshot, summarize

DECODER = "http://127.0.0.1:7447/decoder.js"


def reading(t: float, *, js: int, nodes: int, listeners: int = 2, wasm: int = 65536,
            resize: int = 1, phase: str = "cycle-end") -> IsolateReading:
    return IsolateReading(
        t=t,
        phase=phase,
        js_heap_used=js,
        embedder_heap_used=1000,
        dom={"documents": 1, "nodes": nodes, "jsEventListeners": listeners},
        listeners=(ListenerGroup("window", "resize", resize, "relayoutView at line 21:58"),),
        workers=(WorkerReading(DECODER, "decoder", js_heap_used=5000, embedder_heap_used=100,
                               wasm_memory_bytes=wasm, wasm_memories=1),),
        page_wasm_bytes=0,
    )


def cycles(**grow: int) -> list[IsolateReading]:
    """Six boundaries (one warm-up + four measured cycles); each figure grows by ``grow[...]`` a cycle."""
    return [
        reading(float(i), js=400_000 + i * grow.get("js", 0), nodes=300 + i * grow.get("nodes", 0),
                listeners=2 + i * grow.get("listeners", 0), resize=1 + i * grow.get("listeners", 0),
                wasm=65536 + i * grow.get("wasm", 0), phase="cycle-start" if i == 0 else "cycle-end")
        for i in range(6)
    ]


def judge(readings: list[IsolateReading], names: tuple[str, ...]) -> dict[str, an.AssertionResult]:
    bc = an.browser_cycles(readings, warmup=1)
    assert not isinstance(bc, str)
    ev = Evidence(samples=(Sample(0.0, {}), Sample(5.0, {})), isolates=tuple(readings), browser_cycles=bc)
    return {r.name: r for r in an.evaluate(ev, names=names)}


SPECIFIC = ("js_heap_growth", "dom_nodes_growth", "listeners_growth", "worker_memory_growth")


def test_a_sound_page_passes_all_four_from_browser_figures():
    got = judge(cycles(), SPECIFIC)
    assert {n: r.verdict for n, r in got.items()} == dict.fromkeys(SPECIFIC, Verdict.PASS)
    assert {r.source for r in got.values()} == {"browser"}
    assert got["worker_memory_growth"].measured == 0


def test_a_page_without_workers_is_not_a_silent_pass():
    readings = [IsolateReading(**{**{f: getattr(r, f) for f in IsolateReading.__slots__}, "workers": ()})
                for r in cycles()]
    got = judge(readings, ("worker_memory_growth",))["worker_memory_growth"]
    assert got.verdict == Verdict.UNAVAILABLE
    assert got.detail == "the page ran no dedicated Worker at the cycle boundaries"
    why = "browser-level figures: no CDP in a firefox session"
    failed = [IsolateReading(float(i), "cycle-end", unavailable=(why,)) for i in range(3)]
    got = judge(failed, ("worker_memory_growth",))["worker_memory_growth"]
    assert (got.verdict, got.detail) == (Verdict.UNAVAILABLE, why)


@pytest.mark.parametrize(("grow", "meant", "words"), [
    ({"js": 350_000}, "js_heap_growth", ("350,000", "--snapshots")),
    ({"nodes": 402}, "dom_nodes_growth", ("+402",)),
    ({"listeners": 2}, "listeners_growth", ("window.onresize 3 -> 11", "relayoutView")),
    ({"wasm": 1 << 20}, "worker_memory_growth", (DECODER, "WebAssembly.Memory 1,114,112 -> 5,308,416 B")),
])
def test_each_growth_fails_exactly_its_assertion_and_names_it(grow, meant, words):
    got = judge(cycles(**grow), SPECIFIC)
    assert {n for n, r in got.items() if r.verdict == Verdict.FAIL} == {meant}
    for word in words:
        assert word in got[meant].detail, got[meant].detail


def test_one_quiet_cycle_acquits_the_weakest_cycle_rule():
    readings = cycles(nodes=50)
    quiet = readings[3]
    readings[4] = IsolateReading(**{**{f: getattr(readings[4], f) for f in IsolateReading.__slots__},
                                    "dom": quiet.dom})
    got = judge(readings, ("dom_nodes_growth",))["dom_nodes_growth"]
    assert got.verdict == Verdict.PASS and got.measured == 0


def test_without_cycles_the_growth_assertions_say_why_and_heap_delta_falls_back():
    readings = [reading(0.0, js=400_000, nodes=300, phase="start"),
                reading(9.0, js=900_000, nodes=300, phase="end")]
    ev = Evidence(samples=(Sample(0.0, {}), Sample(9.0, {})), isolates=tuple(readings))
    got = {r.name: r for r in an.evaluate(ev, names=(*SPECIFIC, "heap_delta", "cycle_growth"))}
    for name in (*SPECIFIC, "cycle_growth"):
        assert got[name].verdict == Verdict.UNAVAILABLE
        assert "measure_cycles" in got[name].detail
    assert got["heap_delta"].measured == 500_000 and got["heap_delta"].source == "browser"
    assert "start -> end" in got["heap_delta"].detail


def test_hooks_win_over_the_fallback_and_say_so():
    ev = Evidence(samples=(Sample(0.0, {"heapInuse": 100}), Sample(1.0, {"heapInuse": 300})),
                  isolates=tuple(cycles(js=10**6)))
    got = an.evaluate(ev, names=("heap_delta",))[0]
    assert (got.measured, got.source) == (200, "hooks")


def test_cycle_growth_falls_back_to_app_memory_and_names_the_parts():
    bc = an.browser_cycles(cycles(wasm=1 << 20), warmup=1)
    assert not isinstance(bc, str)
    ev = Evidence(samples=(Sample(0.0, {}),), browser_cycles=bc)
    got = an.evaluate(ev, names=("cycle_growth",))[0]
    assert got.verdict == Verdict.FAIL and got.source == "browser"
    assert got.measured == 1 << 20 and f"Worker {DECODER} +1,048,576" in got.detail


def test_a_missing_boundary_reading_is_said_not_guessed():
    assert an.browser_cycles([reading(0.0, js=1, nodes=1), None], warmup=0) == (
        "no browser-level reading at 1 of 2 cycle boundaries"
    )
    why = "browser-level figures: no CDP in a firefox session"
    broken = IsolateReading(1.0, "cycle-end", unavailable=(why,))
    bc = an.browser_cycles([reading(0.0, js=1, nodes=1), broken, broken], warmup=0)
    assert not isinstance(bc, str)
    assert bc.unavailable["js_heap_after_gc"] == why


# -- heap snapshots ------------------------------------------------------------------------------------

NODE_FIELDS = ["type", "name", "id", "self_size", "edge_count", "trace_node_id", "detachedness"]
NODE_TYPES = ["hidden", "array", "string", "object", "code", "closure", "regexp", "number", "native",
              "synthetic", "concatenated string", "sliced string", "symbol", "bigint", "object shape"]
EDGE_TYPES = ["context", "element", "property", "internal", "hidden", "shortcut", "weak"]


Node = tuple[str, str, int, int, int]
Edge = tuple[int, str, str | int, int]


def snapshot(nodes: list[Node], edges: list[Edge]) -> dict:
    """A V8 snapshot document: nodes (type, name, id, self_size, detachedness) and edges (from index,
    edge type, name or index, to index), edges grouped by their source as V8 writes them."""
    strings: list[str] = []

    def s(x: str) -> int:
        if x not in strings:
            strings.append(x)
        return strings.index(x)

    flat_nodes: list[int] = []
    flat_edges: list[int] = []
    for i, (kind, name, node_id, size, detached) in enumerate(nodes):
        mine = [e for e in edges if e[0] == i]
        flat_nodes += [NODE_TYPES.index(kind), s(name), node_id, size, len(mine), 0, detached]
        for _, etype, ename, to in mine:
            flat_edges += [EDGE_TYPES.index(etype), ename if isinstance(ename, int) else s(ename),
                           to * len(NODE_FIELDS)]
    meta = {"node_fields": NODE_FIELDS, "node_types": [NODE_TYPES], "edge_fields":
            ["type", "name_or_index", "to_node"], "edge_types": [EDGE_TYPES]}
    return {"snapshot": {"meta": meta}, "nodes": flat_nodes, "edges": flat_edges, "strings": strings}


def leaky_page(extra: bool) -> dict:
    nodes = [
        ("synthetic", "", 1, 0, 0),                # 0 (root)
        ("synthetic", "(GC roots)", 3, 0, 0),      # 1
        ("object", "Window", 5, 40, 0),            # 2
        ("object", "Array", 7, 16, 0),             # 3 window.viewHistory
        ("native", "<section>", 9, 80, 2),         # 4 detached tree root
        ("native", "<p>", 11, 80, 2),              # 5
        ("native", "<p>", 13, 80, 2),              # 6
        ("object", "Map", 15, 24, 0),              # 7 window.rowCache
        ("native", "<main>", 17, 80, 1),           # 8 attached
    ]
    edges = [
        (0, "element", 1, 1), (1, "element", 1, 2), (2, "property", "viewHistory", 3),
        (2, "property", "rowCache", 7), (2, "property", "document_main", 8), (3, "element", 0, 4),
        (4, "element", 1, 5), (4, "element", 2, 6), (5, "weak", "back", 3),
    ]
    if extra:  # what the Map holds that is new since the first snapshot
        nodes += [("array", "(table)", 101, 4000, 0), ("object", "Object", 103, 32, 0),
                  ("string", "row", 105, 24, 0)]
        edges += [(7, "internal", "table", 9), (9, "element", 0, 10), (10, "property", "text", 11)]
    return snapshot(nodes, edges)


def test_snapshot_names_the_largest_detached_tree_and_its_retaining_path():
    summary = summarize(parse_snapshot(leaky_page(False)))
    assert summary.detached_nodes == 3
    tree = summary.largest_detached
    assert tree is not None and (tree.nodes, tree.root) == (3, "<section>")
    assert an.retaining_path(tree.path) == "Window @5 .viewHistory -> Array @7 [0] -> <section> @9"


def test_snapshot_names_the_old_object_that_holds_what_is_new():
    first = parse_snapshot(leaky_page(False))
    summary = summarize(parse_snapshot(leaky_page(True)), previous_max_id=int(first.node_id.max()))
    top = summary.grown[0]
    assert (top.holder, top.objects, top.bytes) == ("Map @15", 3, 4056)
    assert an.retaining_path(top.path) == "Window @5 .rowCache -> Map @15"


def test_not_a_snapshot_is_a_value_error():
    with pytest.raises(ValueError, match="not a V8 heap snapshot"):
        parse_snapshot(b'{"nodes": []}')
