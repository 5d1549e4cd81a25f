"""Heap snapshots of the page, on request (``--snapshots``): detached DOM trees and who holds what is new.

Theory of operation. A V8 heap snapshot (``HeapProfiler.takeHeapSnapshot``, streamed as
``HeapProfiler.addHeapSnapshotChunk`` events) is a graph: flat ``nodes`` and ``edges`` arrays described
by ``snapshot.meta``. :func:`summarize` reads it with numpy and scipy, in time linear in its size:

* a **retaining path** for every object: breadth-first from the page's global objects (the snapshot
  root's ``shortcut`` edges to each ``Window``) and then from the GC roots for what those do not reach,
  weak edges left out -- the shortest way the object is kept alive, as DevTools' retainers show first;
* **detached DOM**: nodes whose ``detachedness`` is 2 (Blink's own marking: not in any document), joined
  into trees by the edges between them; the largest tree's size, its root and its retaining path;
* **what is new and who holds it**: object ids are stable across snapshots of one isolate and new
  objects get larger ids, so every object with an id above the previous snapshot's largest is new. Going
  up its retaining path to the first object that is *not* new names the holder (the ``Map`` whose table
  was reallocated, the array the detached nodes were pushed into); holders are ranked by the self size
  of the new objects they hold.

A snapshot costs a forced GC and a few hundred milliseconds per ten megabytes of heap, so the sampler
takes one only at the boundaries of a measured repeat, and only when asked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from relaysim.analysis._isolates import DetachedTree, GrowthHolder, SnapshotSummary

__all__ = ["HeapGraph", "Snapshotter", "parse_snapshot", "summarize"]

_HOLDERS = 5
# what an app allocates (not V8's code, shapes and internals, which the harness's own scripts add to)
_USER_KINDS = ("object", "closure", "string", "concatenated string", "sliced string", "array", "native",
               "number", "regexp", "bigint", "symbol")
_PATH_MAX = 12


@dataclass(frozen=True)
class HeapGraph:
    """A parsed snapshot: per node (type, name, id, self size, detachedness, first edge) and per edge
    (type, name, target node); ``names`` are the snapshot's strings."""

    node_type: np.ndarray
    node_name: np.ndarray
    node_id: np.ndarray
    self_size: np.ndarray
    detached: np.ndarray
    first_edge: np.ndarray
    edge_from: np.ndarray
    edge_type: np.ndarray
    edge_name: np.ndarray
    edge_to: np.ndarray
    node_types: tuple[str, ...]
    edge_types: tuple[str, ...]
    strings: list[str]

    @property
    def size(self) -> int:
        return int(self.node_id.shape[0])


def parse_snapshot(data: bytes | dict[str, Any]) -> HeapGraph:
    """The graph of a ``.heapsnapshot`` document (``ValueError`` when it is not one)."""
    doc = orjson.loads(data) if isinstance(data, bytes) else data
    try:
        meta = doc["snapshot"]["meta"]
        nf: list[str] = meta["node_fields"]
        ef: list[str] = meta["edge_fields"]
        node_types = tuple(meta["node_types"][0])
        edge_types = tuple(meta["edge_types"][0])
        nodes = np.asarray(doc["nodes"], dtype=np.int64).reshape(-1, len(nf))
        edges = np.asarray(doc["edges"], dtype=np.int64).reshape(-1, len(ef))
        strings: list[str] = doc["strings"]
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"not a V8 heap snapshot: {exc}") from exc
    col = {name: i for i, name in enumerate(nf)}
    edge_count = nodes[:, col["edge_count"]]
    first_edge = np.concatenate(([0], np.cumsum(edge_count)[:-1]))
    detached = nodes[:, col["detachedness"]] if "detachedness" in col else np.zeros(len(nodes), np.int64)
    ecol = {name: i for i, name in enumerate(ef)}
    return HeapGraph(
        node_type=nodes[:, col["type"]],
        node_name=nodes[:, col["name"]],
        node_id=nodes[:, col["id"]],
        self_size=nodes[:, col["self_size"]],
        detached=detached,
        first_edge=first_edge,
        edge_from=np.repeat(np.arange(len(nodes), dtype=np.int64), edge_count),
        edge_type=edges[:, ecol["type"]],
        edge_name=edges[:, ecol["name_or_index"]],
        edge_to=edges[:, ecol["to_node"]] // len(nf),
        node_types=node_types,
        edge_types=edge_types,
        strings=strings,
    )


def retainers(g: HeapGraph) -> tuple[np.ndarray, np.ndarray]:
    """(predecessor node, predecessor edge) of every node on its shortest retaining path; -1 at the
    root and for unreachable nodes. The page's globals are searched from first (module docstring)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import breadth_first_order

    n = g.size
    weak = g.edge_type == g.edge_types.index("weak") if "weak" in g.edge_types else np.zeros(0, bool)
    keep = ~weak if weak.size else np.ones(len(g.edge_to), bool)
    obj = g.node_types.index("object") if "object" in g.node_types else -1
    names = np.asarray([x.startswith("Window") for x in g.strings], bool)
    windows = np.nonzero((g.node_type == obj) & names[g.node_name])[0]
    pred_node = np.full(n, -1, np.int64)
    # phase 1: from the page's Window objects (as if the root held them directly); phase 2: everything
    idx = np.nonzero(keep & (g.edge_from != 0))[0]
    phase1 = (np.concatenate((g.edge_from[idx], np.zeros(len(windows), np.int64))),
              np.concatenate((g.edge_to[idx], windows)))
    idx = np.nonzero(keep)[0]
    phase2 = (g.edge_from[idx], g.edge_to[idx])
    for rows, cols in (phase1, phase2):
        m = csr_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
        _, pred = breadth_first_order(m, 0, directed=True, return_predecessors=True)
        pred = np.where(pred < 0, -1, pred)
        fill = (pred_node < 0) & (pred >= 0)
        pred_node[fill] = pred[fill]
    # the edge used: the first edge from the predecessor to the node
    pred_edge = np.full(n, -1, np.int64)
    has = np.nonzero(pred_node >= 0)[0]
    if has.size:
        order = np.lexsort((np.arange(len(g.edge_to)), g.edge_to, g.edge_from))
        key_from, key_to = g.edge_from[order], g.edge_to[order]
        pos = np.searchsorted(key_from * n + key_to, pred_node[has] * n + has)
        pos = np.minimum(pos, len(order) - 1)
        ok = (key_from[pos] == pred_node[has]) & (key_to[pos] == has)
        pred_edge[has[ok]] = order[pos[ok]]
    return pred_node, pred_edge


def _node_label(g: HeapGraph, i: int) -> str:
    kind = g.node_types[int(g.node_type[i])]
    name = g.strings[int(g.node_name[i])]
    if kind in ("string", "concatenated string", "sliced string"):
        return "(string)"
    name = name.split(" / ", 1)[0] if name.startswith("Window") else name
    if kind in ("object", "native", "closure"):
        return f"{name[:60]} @{int(g.node_id[i])}"
    return f"({kind}) {name[:40]}"


def _edge_label(g: HeapGraph, e: int) -> str:
    kind = g.edge_types[int(g.edge_type[e])]
    raw = int(g.edge_name[e])
    if kind in ("element", "hidden"):
        return f"[{raw}]"
    name = g.strings[raw] if 0 <= raw < len(g.strings) else str(raw)
    return f".{name[:40]}" if kind == "property" else f"<{name[:40]}>"


def path_to(g: HeapGraph, pred_node: np.ndarray, pred_edge: np.ndarray, i: int) -> tuple[str, ...]:
    """The retaining path of node ``i`` (root side first), e.g. ``("Window @9", ".leak", "Array @77")``."""
    chain: list[int] = []
    node = i
    for _ in range(1000):
        if node <= 0 or pred_node[node] < 0:
            break
        chain.append(node)
        node = int(pred_node[node])
    chain.reverse()
    if len(chain) > _PATH_MAX:
        chain = chain[-_PATH_MAX:]
        out: list[str] = ["..."]
    else:
        out = []
    for k, node in enumerate(chain):  # node, edge, node, ...: an edge always between two nodes
        e = int(pred_edge[node])
        if k > 0 or out:
            out.append(_edge_label(g, e) if e >= 0 else "")
        out.append(_node_label(g, node))
    return tuple(out)


def detached_trees(
    g: HeapGraph, pred_node: np.ndarray, pred_edge: np.ndarray
) -> tuple[int, DetachedTree | None]:
    """(detached DOM nodes, the largest detached tree) of the snapshot."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    native = g.node_types.index("native") if "native" in g.node_types else -1
    is_det = (g.detached == 2) & (g.node_type == native)
    count = int(is_det.sum())
    if not count:
        return 0, None
    both = is_det[g.edge_from] & is_det[g.edge_to]
    n = g.size
    m = csr_matrix((np.ones(int(both.sum()), np.int8), (g.edge_from[both], g.edge_to[both])), shape=(n, n))
    _, labels = connected_components(m, directed=True, connection="weak")
    det_idx = np.nonzero(is_det)[0]
    comp = labels[det_idx]
    values, counts = np.unique(comp, return_counts=True)
    biggest = values[int(np.argmax(counts))]
    members = det_idx[comp == biggest]
    # the tree's entry: a member whose retainer is outside the tree (else the first member)
    outside = [int(x) for x in members if pred_node[x] >= 0 and not is_det[pred_node[x]]]
    entry = outside[0] if outside else int(members[0])
    root_name = g.strings[int(g.node_name[entry])]
    return count, DetachedTree(int(counts.max()), root_name, path_to(g, pred_node, pred_edge, entry))


def growth_holders(
    g: HeapGraph, pred_node: np.ndarray, pred_edge: np.ndarray, previous_max_id: int
) -> tuple[GrowthHolder, ...]:
    """Objects older than the previous snapshot that hold the objects new since it, most bytes first."""
    new = g.node_id > previous_max_id
    reached = pred_node >= 0
    user = np.isin(g.node_type, [g.node_types.index(k) for k in _USER_KINDS if k in g.node_types])
    sel = np.nonzero(new & reached & user)[0]
    if not sel.size:
        return ()
    holder = sel.copy()
    for _ in range(64):  # walk up while the retainer is itself new (bounded: paths are short)
        parent = pred_node[holder]
        step = (parent > 0) & new[np.maximum(parent, 0)]
        if not step.any():
            break
        holder = np.where(step, parent, holder)
    parent = pred_node[holder]
    owners = np.where(parent > 0, parent, holder)
    uniq, inverse = np.unique(owners, return_inverse=True)
    sizes = np.bincount(inverse, weights=g.self_size[sel].astype(np.float64))
    counts = np.bincount(inverse)
    synthetic = g.node_types.index("synthetic") if "synthetic" in g.node_types else -1
    named = [g.node_types.index(k) for k in ("object", "closure", "native") if k in g.node_types]
    out: list[GrowthHolder] = []
    for k in np.argsort(-sizes):
        node = int(uniq[k])
        if g.node_type[node] == synthetic or node == 0:
            continue
        if len(out) == _HOLDERS:
            break
        for _ in range(3):  # a Map's table, an array's elements: name the object that owns them
            up = int(pred_node[node])
            if g.node_type[node] in named or up <= 0 or g.node_type[up] == synthetic:
                break
            node = up
        out.append(GrowthHolder(
            holder=_node_label(g, node),
            objects=int(counts[k]),
            bytes=int(sizes[k]),
            path=path_to(g, pred_node, pred_edge, node),
        ))
    return tuple(out)


def summarize(g: HeapGraph, previous_max_id: int | None = None) -> SnapshotSummary:
    """What one snapshot says (module docstring); ``previous_max_id`` enables the growth holders."""
    pred_node, pred_edge = retainers(g)
    detached, largest = detached_trees(g, pred_node, pred_edge)
    grown = () if previous_max_id is None else growth_holders(g, pred_node, pred_edge, previous_max_id)
    return SnapshotSummary(nodes=g.size, detached_nodes=detached, largest_detached=largest, grown=grown)


class Snapshotter:
    """Takes heap snapshots of one page over a browser-level CDP connection and summarizes each against
    the previous one (``previous_max_id`` is all that is kept of it)."""

    def __init__(self) -> None:
        self.previous_max_id: int | None = None
        self._enabled: set[str] = set()

    def take(self, cdp: Any, session_id: str, timeout: float = 120.0) -> SnapshotSummary:
        started = time.perf_counter()
        chunks: list[str] = []

        def on_event(method: str, params: dict[str, Any], sid: str | None) -> None:
            if method == "HeapProfiler.addHeapSnapshotChunk" and sid == session_id:
                chunks.append(params["chunk"])

        if session_id not in self._enabled:
            cdp.call("HeapProfiler.enable", session_id=session_id)
            self._enabled.add(session_id)
        cdp.call(
            "HeapProfiler.takeHeapSnapshot",
            {"reportProgress": False, "captureNumericValue": False},
            session_id=session_id,
            timeout=timeout,
            on_event=on_event,
        )
        data = "".join(chunks).encode()
        graph = parse_snapshot(data)
        summary = summarize(graph, self.previous_max_id)
        self.previous_max_id = int(graph.node_id.max()) if graph.size else self.previous_max_id
        import dataclasses

        return dataclasses.replace(
            summary, seconds=round(time.perf_counter() - started, 3), snapshot_bytes=len(data)
        )
