"""Per-isolate memory after a forced GC, read over the browser's DevTools websocket: page and Workers.

Theory of operation. :class:`IsolateProbe` lists the browser's targets (``Target.getTargets``), keeps
the page that WebDriver drives (its window handle is its target id) and every dedicated Worker whose
parent chain leads to that page, attaches to each once (flat sessions, kept across reads) and reads:

* in every isolate: ``HeapProfiler.collectGarbage``, then ``Runtime.getHeapUsage`` (JS heap and, in
  Chromium, the embedder heap: Blink's DOM objects), then the byte length of every
  ``WebAssembly.Memory``. A Worker relaysim does not control cannot tell us where its memories are, so
  they are found the way DevTools' console ``queryObjects()`` does: ``Runtime.queryObjects`` with the
  ``WebAssembly.Memory`` prototype, and one ``Runtime.callFunctionOn`` over the array it returns to sum
  ``buffer.byteLength`` in the Worker's own context. Every object handle taken lives in one object group
  that is released at once, so the probe keeps nothing alive in the app;
* in the page: ``Memory.getDOMCounters`` (documents, nodes, JS event listeners, after the GC) and
  ``DOMDebugger.getEventListeners`` on ``window`` and ``document`` (grouped by event type, with the
  first handler's name and position: what a listener leak adds to).

Nothing here changes the page's state: no ``Memory.prepareForLeakDetection`` (it ends Workers), no
``Debugger.enable``, no script injected into the app's globals. A figure that cannot be read is listed
in the reading's ``unavailable`` with the reason. A heap snapshot is taken only when asked
(:mod:`relaysim.browser.snapshots`, ``--snapshots``).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from relaysim.analysis._isolates import IsolateReading, ListenerGroup, SnapshotSummary, WorkerReading
from relaysim.browser.cdp_browser import BrowserCdp, CdpError, open_browser_cdp
from relaysim.browser.drivers import BrowserSession, CdpUnavailable

__all__ = ["IsolateProbe"]

_GROUP = "relaysim-probe"
_SUM_BYTES = "function(){let s=0;for(const m of this){s+=m.buffer.byteLength}return [this.length,s]}"
_FAILURES = (CdpError, TimeoutError, OSError, KeyError, ValueError, RuntimeError)


class IsolateProbe:
    """Reads an :class:`~relaysim.analysis.IsolateReading` of the session's page and its Workers.

    Opened lazily: the first :meth:`read` connects (one connection per session,
    :meth:`BrowserSession.keep`); when that is impossible (Firefox, a remote Grid node) every reading
    says why in ``unavailable``.
    ``snapshots`` makes :meth:`read` with ``snapshot=True`` add a heap snapshot summary.
    """

    def __init__(self, session: BrowserSession, *, snapshots: bool = False) -> None:
        self.session = session
        self.snapshots = snapshots
        self.reads = 0
        self.seconds = 0.0
        self._snapshotter: Any = None
        self._unavailable: CdpUnavailable | None = None

    def _cdp(self) -> BrowserCdp:
        if self._unavailable is not None:
            raise self._unavailable
        try:
            cdp: BrowserCdp = self.session.keep("browser_cdp", lambda: open_browser_cdp(self.session))
        except CdpUnavailable as exc:
            self._unavailable = exc  # said once per probe; not retried on every sample
            raise
        return cdp

    def _forget(self) -> None:
        """After a failed read: attach afresh next time (a target may have gone away)."""
        with contextlib.suppress(CdpUnavailable):
            self._cdp().sessions.clear()

    def read(self, t: float, phase: str = "", *, snapshot: bool = False) -> IsolateReading:
        """One reading now (``t``: the page-clock time of the sample it goes with)."""
        started = time.perf_counter()
        try:
            reading = self._read(t, phase, snapshot and self.snapshots)
        except CdpUnavailable as exc:
            reading = IsolateReading(t, phase, unavailable=(f"browser-level figures: {exc}",))
        except _FAILURES as exc:
            reading = IsolateReading(t, phase, unavailable=(f"browser-level figures: {_short(exc)}",))
            self._forget()
        ms = (time.perf_counter() - started) * 1000.0
        self.reads += 1
        self.seconds += ms / 1000.0
        return _with_ms(reading, ms)

    def _read(self, t: float, phase: str, snapshot: bool) -> IsolateReading:
        cdp = self._cdp()
        page, workers = self._targets(cdp)
        sid = self._attach(cdp, page["targetId"])
        missing: list[str] = []
        heap = _heap_after_gc(cdp, sid)
        dom = cdp.call("Memory.getDOMCounters", session_id=sid)
        listeners = _listeners(cdp, sid, missing)
        page_wasm = _wasm_bytes(cdp, sid, missing, "page")
        read_workers = tuple(self._worker(cdp, w, missing) for w in workers)
        summary: SnapshotSummary | None = None
        if snapshot:
            summary = self._snapshot(cdp, sid, missing)
        return IsolateReading(
            t=t,
            phase=phase,
            js_heap_used=_int(heap.get("usedSize")),
            embedder_heap_used=_int(heap.get("embedderHeapUsedSize")),
            dom={k: int(v) for k, v in dom.items() if isinstance(v, int | float)},
            listeners=listeners,
            workers=read_workers,
            page_wasm_bytes=page_wasm[1] if page_wasm else None,
            snapshot=summary,
            unavailable=tuple(missing),
        )

    def _snapshot(self, cdp: BrowserCdp, sid: str, missing: list[str]) -> SnapshotSummary | None:
        from relaysim.browser.snapshots import Snapshotter

        if self._snapshotter is None:
            self._snapshotter = Snapshotter()
        try:
            summary: SnapshotSummary = self._snapshotter.take(cdp, sid)
            return summary
        except _FAILURES as exc:
            missing.append(f"heap snapshot: {_short(exc)}")
            return None

    def _targets(self, cdp: BrowserCdp) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        infos = cdp.call("Target.getTargets")["targetInfos"]
        pages = [i for i in infos if i.get("type") == "page"]
        handle = _window_handle(self.session)
        page = next((p for p in pages if p["targetId"] == handle), None)
        if page is None:
            if len(pages) != 1:
                raise CdpUnavailable(f"cannot tell which of {len(pages)} page targets WebDriver drives")
            page = pages[0]
        ours = {page["targetId"]}
        workers: list[dict[str, Any]] = []
        pending = [i for i in infos if i.get("type") == "worker"]
        # a Worker's parent is the page's frame, or another Worker of the page (nested Workers)
        for _ in range(len(pending) + 1):
            found = [w for w in pending if (w.get("parentFrameId") or w.get("parentId")) in ours]
            if not found:
                break
            for w in found:
                ours.add(w["targetId"])
                workers.append(w)
                pending.remove(w)
        return page, workers

    def _attach(self, cdp: BrowserCdp, target_id: str) -> str:
        sessions = cdp.sessions
        if target_id not in sessions:
            got = cdp.call("Target.attachToTarget", {"targetId": target_id, "flatten": True})
            sessions[target_id] = got["sessionId"]
        return sessions[target_id]

    def _worker(self, cdp: BrowserCdp, info: dict[str, Any], missing: list[str]) -> WorkerReading:
        url, name = str(info.get("url", "")), str(info.get("title", ""))
        name = "" if name == url else name
        try:
            sid = self._attach(cdp, info["targetId"])
            heap = _heap_after_gc(cdp, sid)
            wasm = _wasm_bytes(cdp, sid, missing, f"worker {url}")
        except _FAILURES as exc:
            cdp.sessions.pop(info["targetId"], None)
            return WorkerReading(url, name, unavailable=_short(exc))
        return WorkerReading(
            url,
            name,
            js_heap_used=_int(heap.get("usedSize")),
            embedder_heap_used=_int(heap.get("embedderHeapUsedSize")),
            wasm_memory_bytes=wasm[1] if wasm else None,
            wasm_memories=wasm[0] if wasm else None,
        )


def _window_handle(session: BrowserSession) -> str | None:
    try:
        return str(session.driver.current_window_handle)
    except Exception:
        return None


def _heap_after_gc(cdp: BrowserCdp, sid: str) -> dict[str, Any]:
    cdp.call("HeapProfiler.collectGarbage", session_id=sid)
    return cdp.call("Runtime.getHeapUsage", session_id=sid)


def _wasm_bytes(cdp: BrowserCdp, sid: str, missing: list[str], where: str) -> tuple[int, int] | None:
    """(number of WebAssembly.Memory objects, their total byte length) in the isolate of ``sid``."""
    try:
        proto = cdp.call(
            "Runtime.evaluate",
            {"expression": "WebAssembly.Memory.prototype", "objectGroup": _GROUP, "silent": True},
            session_id=sid,
        )["result"]
        if "objectId" not in proto:
            missing.append(f"WebAssembly.Memory in {where}: no WebAssembly in this context")
            return None
        found = cdp.call(
            "Runtime.queryObjects", {"prototypeObjectId": proto["objectId"], "objectGroup": _GROUP},
            session_id=sid,
        )["objects"]
        summed = cdp.call(
            "Runtime.callFunctionOn",
            {"objectId": found["objectId"], "functionDeclaration": _SUM_BYTES, "returnByValue": True,
             "silent": True},
            session_id=sid,
        )["result"].get("value")
        if not (isinstance(summed, list) and len(summed) == 2):
            missing.append(f"WebAssembly.Memory in {where}: unexpected answer {summed!r}")
            return None
        return int(summed[0]), int(summed[1])
    finally:
        _release(cdp, sid)


def _listeners(cdp: BrowserCdp, sid: str, missing: list[str]) -> tuple[ListenerGroup, ...] | None:
    groups: list[ListenerGroup] = []
    try:
        for target in ("window", "document"):
            obj = cdp.call(
                "Runtime.evaluate", {"expression": target, "objectGroup": _GROUP, "silent": True},
                session_id=sid,
            )["result"]
            got = cdp.call("DOMDebugger.getEventListeners", {"objectId": obj["objectId"]}, session_id=sid)
            by_type: dict[str, list[dict[str, Any]]] = {}
            for item in got.get("listeners", []):
                by_type.setdefault(str(item.get("type")), []).append(item)
            for kind, items in sorted(by_type.items()):
                groups.append(ListenerGroup(target, kind, len(items), _handler(items[-1])))
        return tuple(groups)
    except _FAILURES as exc:
        missing.append(f"listeners on window/document: {_short(exc)}")
        return None
    finally:
        _release(cdp, sid)


def _handler(item: dict[str, Any]) -> str:
    """``name line:col`` of a listener's handler (the newest one of its type: a leak adds at the end)."""
    text = str((item.get("handler") or {}).get("description", "")).strip()
    head = text.split("{", 1)[0].split("=>", 1)[0].strip()
    name = head.removeprefix("async ").removeprefix("function").strip().split("(", 1)[0].strip()
    where = f"line {int(item.get('lineNumber', 0)) + 1}:{int(item.get('columnNumber', 0)) + 1}"
    return f"{name or '(anonymous)'} at {where}"


def _release(cdp: BrowserCdp, sid: str) -> None:
    with contextlib.suppress(*_FAILURES):
        cdp.call("Runtime.releaseObjectGroup", {"objectGroup": _GROUP}, session_id=sid)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _with_ms(reading: IsolateReading, ms: float) -> IsolateReading:
    import dataclasses

    return dataclasses.replace(reading, ms=round(ms, 3))
