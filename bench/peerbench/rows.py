"""The rows of the side-by-side table: each one drives one relay (or the do-nothing endpoint) on a port.

Every row is bounded in time (``deadline`` seconds, then it reports what it got). Rows with many
connections run in several forked worker processes, each with its own ``selectors`` loop, so the
generator is not one Python thread; the fan-out receivers and the large-REQ reader run in C
(``fastload.c``) when the bench could compile it (``fast``: the binary), the Python loops here
being the fallback. Times are ``time.perf_counter()``, which on Linux is the system-wide
monotonic clock (CLOCK_MONOTONIC, also fastload's), so times taken in different processes
compare. Answers are kept as raw payloads and checked after the clock stops (``check.py``).
"""

from __future__ import annotations

import multiprocessing
import select
import selectors
import socket
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson
from peerbench import fastload
from peerbench.wsraw import FrameScanner, client_frame, connect, quickack

from relaysim.nostr.event import Event

__all__ = [
    "alive",
    "big_req",
    "concurrent_queries",
    "fanout",
    "publish",
    "query_once",
    "queryable",
    "req_latency",
]

_CTX = multiprocessing.get_context("fork")
# Read size: below glibc's mmap threshold (128 KiB), so a read does not map and unmap a fresh buffer.
RECV = 65_536
BIG_RECV = 1 << 20  # the large REQ reads into one reused buffer


def _req(sub: str, flt: dict[str, Any]) -> bytes:
    return client_frame(orjson.dumps(["REQ", sub, flt]))


def _close(sub: str) -> bytes:
    return client_frame(orjson.dumps(["CLOSE", sub]))


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class Blocking:
    """One connection used one request at a time (blocking socket, a timeout on every read)."""

    def __init__(self, port: int, *, keep: bool = True, timeout: float = 30.0) -> None:
        self.sock, rest = connect(port, timeout=timeout)
        self.scan = FrameScanner(keep=keep)
        if rest:
            self.scan.feed(rest)

    def until(self, eoses: int = 0, others: int = 0) -> tuple[int, int, int]:
        """Read until ``eoses`` EOSEs and ``others`` OK/CLOSED/NOTICE messages more have arrived."""
        got_events = got_eoses = got_others = 0
        recv, feed, sock = self.sock.recv, self.scan.feed, self.sock
        while got_eoses < eoses or got_others < others:
            data = recv(RECV)
            if not data:
                raise ConnectionError("the relay closed the connection")
            quickack(sock)
            e, o, x = feed(data)
            got_events += e
            got_eoses += o
            got_others += x
        return got_events, got_eoses, got_others

    def close(self) -> None:
        self.sock.close()


def query_once(port: int, flt: dict[str, Any], *, timeout: float = 30.0) -> list[bytes]:
    """One REQ on a new connection: the payloads received up to its EOSE."""
    conn = Blocking(port, timeout=timeout)
    try:
        conn.sock.sendall(_req("once", flt))
        conn.until(eoses=1)
        return conn.scan.payloads
    finally:
        conn.close()


def alive(port: int, *, timeout: float = 5.0) -> bool:
    """Whether the relay still answers a small REQ within ``timeout`` seconds."""
    try:
        conn = Blocking(port, keep=False, timeout=timeout)
    except OSError:
        return False
    try:
        conn.sock.sendall(_req("alive", {"kinds": [0], "limit": 1}))
        conn.until(eoses=1)
        return True
    except OSError:
        return False
    finally:
        conn.close()


# -- publishing -------------------------------------------------------------------------------------


def publish(
    port: int, events: Sequence[Event], *, conns: int = 4, procs: int = 2, deadline: float = 120.0
) -> dict[str, Any]:
    """Publish ``events`` pipelined over ``conns`` connections; events/s until the last OK.

    Every frame of a connection is written as fast as the socket takes it (the relay's reading is
    the only brake); the clock runs from the first byte to the last OK of all connections.
    """
    frames = [client_frame(orjson.dumps(["EVENT", ev.to_dict()])) for ev in events]
    shares = [frames[i::conns] for i in range(conns)]
    queue = _CTX.Queue()
    start_at = time.perf_counter() + 0.3 + 0.02 * conns
    workers = []
    per_proc = [list(range(conns))[p::procs] for p in range(procs)]
    for indexes in per_proc:
        if not indexes:
            continue
        batches = [b"".join(shares[i]) for i in indexes]
        counts = [len(shares[i]) for i in indexes]
        proc = _CTX.Process(target=_publish_proc, args=(port, batches, counts, start_at, deadline, queue))
        proc.start()
        workers.append(proc)
    results = [queue.get(timeout=deadline + 30) for _ in workers]
    for proc in workers:
        proc.join(timeout=10)
    t0 = min(r["t0"] for r in results)
    dones = [d for r in results for d in r["done"]]
    acked = sum(min(g, c) for r in results for g, c in zip(r["got"], r["counts"], strict=True))
    complete = all(dones)
    end = max(dones) if complete else t0 + deadline
    payloads = [p for r in results for p in r["payloads"]]
    return {
        "events": len(events),
        "acked": acked,
        "complete": complete,
        "seconds": end - t0,
        "per_s": acked / (end - t0) if end > t0 else 0.0,
        "payloads": payloads,
    }


def _publish_proc(
    port: int, batches: list[bytes], counts: list[int], start_at: float, deadline: float, queue: Any
) -> None:
    result = _publish_loop(port, batches, counts, start_at, deadline)
    result["counts"] = counts
    queue.put(result)


def _publish_loop(
    port: int, batches: list[bytes], counts: list[int], start_at: float, deadline: float
) -> dict[str, Any]:
    sel = selectors.DefaultSelector()
    states: list[dict[str, Any]] = []
    for blob, count in zip(batches, counts, strict=True):
        sock, rest = connect(port)
        sock.setblocking(False)
        scan = FrameScanner()
        if rest:
            scan.feed(rest)
        states.append(
            {"sock": sock, "out": memoryview(blob), "want": count, "got": 0, "scan": scan, "done": 0.0}
        )
    while time.perf_counter() < start_at:
        time.sleep(0.0005)
    t0 = time.perf_counter()
    for state in states:
        sel.register(state["sock"], selectors.EVENT_READ | selectors.EVENT_WRITE, state)
    pending = len(states)
    end_by = t0 + deadline
    while pending and time.perf_counter() < end_by:
        for key, mask in sel.select(timeout=0.5):
            state = key.data
            sock = state["sock"]
            if mask & selectors.EVENT_WRITE and state["out"]:
                try:
                    sent = sock.send(state["out"][: 1 << 18])
                except BlockingIOError:
                    sent = 0
                except OSError:
                    pending = -1  # the relay dropped us: report what was acknowledged
                    break
                state["out"] = state["out"][sent:]
                if not state["out"]:
                    sel.modify(sock, selectors.EVENT_READ, state)
            if mask & selectors.EVENT_READ:
                try:
                    data = sock.recv(RECV)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    pending = -1
                    break
                quickack(sock)
                state["got"] += state["scan"].feed(data)[2]
                if state["got"] >= state["want"] and not state["done"]:
                    state["done"] = time.perf_counter()
                    pending -= 1
        if pending < 0:
            break
    for state in states:
        state["sock"].close()
    return {
        "t0": t0,
        "done": [s["done"] for s in states],
        "got": [s["got"] for s in states],
        "payloads": [p for s in states for p in s["scan"].payloads],
    }


def queryable(port: int, ids: list[str], *, deadline: float = 10.0) -> float | None:
    """Seconds from now until a REQ for ``ids`` returns all of them (polled), or None.

    The connection is opened before the clock starts: the row is about when the events can be
    found, not about a handshake (a cold Python handshake alone costs ~1 ms).
    """
    conn = Blocking(port, keep=False)
    t0 = time.perf_counter()
    try:
        round_no = 0
        while time.perf_counter() - t0 < deadline:
            round_no += 1
            sub = f"qa{round_no}"
            conn.sock.sendall(_req(sub, {"ids": ids}))
            events, _, _ = conn.until(eoses=1)
            if events >= len(ids):
                return time.perf_counter() - t0
            conn.sock.sendall(_close(sub))
            time.sleep(0.001)
        return None
    finally:
        conn.close()


# -- queries ---------------------------------------------------------------------------------------


def req_latency(port: int, mix: Sequence[dict[str, Any]], *, rounds: int, deadline: float) -> dict[str, Any]:
    """REQ -> EOSE one query at a time on one connection, cycling through ``mix``.

    The first answer to each query of the mix is kept for checking.
    """
    conn = Blocking(port, timeout=10.0)
    latencies: list[float] = []
    answers: list[list[bytes]] = []
    req_frames = [_req(f"l{i}", flt) for i, flt in enumerate(mix)]
    close_frames = [_close(f"l{i}") for i in range(len(mix))]
    end_by = time.perf_counter() + deadline
    stopped = None
    try:
        for n in range(rounds):
            if time.perf_counter() > end_by:
                break
            i = n % len(mix)
            before = len(conn.scan.payloads)
            t0 = time.perf_counter()
            conn.sock.sendall(req_frames[i])
            try:
                conn.until(eoses=1)
            except OSError as exc:  # no EOSE within the socket timeout: keep what was measured
                stopped = f"query {n} ({mix[i]}) got no EOSE: {type(exc).__name__}"
                break
            latencies.append(time.perf_counter() - t0)
            conn.sock.sendall(close_frames[i])
            if n < len(mix):
                answers.append(conn.scan.payloads[before:])
            else:
                conn.scan.payloads.clear()
    finally:
        conn.close()
    return {
        "queries": len(latencies),
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * _percentile(latencies, 99) if latencies else None,
        "answers": answers,
        "stopped": stopped,
    }


def _read_to_eose(conn: Blocking) -> tuple[float, list[bytes]]:
    """Read until an EOSE message has fully arrived; (time it did, the payloads received).

    While the clock runs only ``"EOSE"`` is searched for in the bytes (C speed); the frames are
    walked afterwards, so the reading costs far less per event than any relay's sending. A match
    that is not a real EOSE frame (the word inside an event) just means reading on.
    """
    chunks: list[bytes] = []
    carry = b""
    sock = conn.sock
    buf = bytearray(BIG_RECV)  # one buffer for every read: no allocation per read
    view = memoryview(buf)
    while True:
        n = sock.recv_into(buf)
        if not n:
            raise ConnectionError("the relay closed the connection")
        quickack(sock)
        data = bytes(view[:n])
        chunks.append(data)
        window = carry + data
        carry = data[-16:]
        if b'"EOSE"' not in window:
            continue
        at = time.perf_counter()
        scan = FrameScanner()
        scan.feed(b"".join(chunks))
        if any(p[2:4] == b"EO" for p in scan.payloads):
            return at, scan.payloads


def big_req(
    port: int, flt: dict[str, Any], *, rounds: int, deadline: float, fast: Path | None = None
) -> dict[str, Any]:
    """One large REQ at a time: events/s from the REQ to its EOSE (median of ``rounds``).

    With ``fast`` (a built fastload binary) the reading is done in C; else in Python below.
    """
    if fast is not None:
        got = fastload.big_req(fast, port, orjson.dumps(flt), rounds=rounds, deadline=deadline)
        per_round = [events / seconds for events, seconds in got["rates"] if seconds > 0]
        return {
            "rounds": len(per_round),
            "per_s": statistics.median(per_round) if per_round else None,
            "answer": got["answer"],
        }
    conn = Blocking(port, keep=False)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rates: list[float] = []
    first: list[bytes] = []
    end_by = time.perf_counter() + deadline
    try:
        for n in range(rounds):
            if time.perf_counter() > end_by:
                break
            sub = f"big{n}"
            t0 = time.perf_counter()
            conn.sock.sendall(_req(sub, flt))
            at, payloads = _read_to_eose(conn)
            events = sum(1 for p in payloads if p[2:4] == b"EV")
            rates.append(events / (at - t0))
            conn.sock.sendall(_close(sub))
            if n == 0:
                first = payloads
    finally:
        conn.close()
    return {"rounds": len(rates), "per_s": statistics.median(rates) if rates else None, "answer": first}


def _concurrent_proc(
    port: int, mix: list[dict[str, Any]], conns: int, offset: int, start_at: float, seconds: float, queue: Any
) -> None:
    sel = selectors.DefaultSelector()
    states = []
    for c in range(conns):
        sock, rest = connect(port)
        scan = FrameScanner(keep=False)
        if rest:
            scan.feed(rest)
        sock.setblocking(False)
        states.append({"sock": sock, "scan": scan, "n": 0, "i": offset + c * 3})
    frames = [_req(f"c{i}", flt) for i, flt in enumerate(mix)]
    closes = [_close(f"c{i}") for i in range(len(mix))]
    while time.perf_counter() < start_at:
        time.sleep(0.0005)
    end_by = start_at + seconds
    queries = events = 0
    for state in states:
        state["sock"].send(frames[state["i"] % len(mix)])
        sel.register(state["sock"], selectors.EVENT_READ, state)
    while time.perf_counter() < end_by:
        for key, _ in sel.select(timeout=0.2):
            state = key.data
            sock = state["sock"]
            try:
                data = sock.recv(RECV)
            except BlockingIOError:
                continue
            if not data:
                raise ConnectionError("the relay closed a query connection")
            quickack(sock)
            e, o, _ = state["scan"].feed(data)
            events += e
            if o:
                queries += 1
                i = state["i"] % len(mix)
                state["i"] += 1
                sock.send(closes[i] + frames[state["i"] % len(mix)])
    for state in states:
        state["sock"].close()
    queue.put({"queries": queries, "events": events})


def concurrent_queries(
    port: int, mix: Sequence[dict[str, Any]], *, conns: int = 8, procs: int = 2, seconds: float = 5.0
) -> dict[str, Any]:
    """``conns`` connections, each one query at a time (REQ, read to EOSE, CLOSE + next REQ)."""
    queue = _CTX.Queue()
    start_at = time.perf_counter() + 0.5
    workers = []
    for p in range(procs):
        share = len(range(p, conns, procs))
        proc = _CTX.Process(
            target=_concurrent_proc, args=(port, list(mix), share, p, start_at, seconds, queue)
        )
        proc.start()
        workers.append(proc)
    results = [queue.get(timeout=seconds + 60) for _ in workers]
    for proc in workers:
        proc.join(timeout=10)
    queries = sum(r["queries"] for r in results)
    events = sum(r["events"] for r in results)
    return {"queries_per_s": queries / seconds, "events_per_s": events / seconds, "queries": queries}


# -- fan-out ---------------------------------------------------------------------------------------


def _fanout_proc(
    port: int, conns: int, expect: int, ready: Any, go: Any, queue: Any, deadline: float, tag: str
) -> None:
    sel = selectors.DefaultSelector()
    states = []
    try:
        connect_by = time.perf_counter() + deadline
        for _ in range(conns):
            sock, rest = connect(port, timeout=max(0.5, min(10.0, connect_by - time.perf_counter())))
            scan = FrameScanner(keep=True)
            if rest:
                scan.feed(rest)
            states.append({"sock": sock, "scan": scan, "events": 0, "times": []})
        queue.put(("opened", conns))
        go.wait(timeout=deadline)
        flt = {"kinds": [1], "#t": [tag]}
        for state in states:
            state["sock"].sendall(_req("fan", flt))
        eoses = 0
        for state in states:
            state["sock"].settimeout(30)
            while True:
                data = state["sock"].recv(RECV)
                if not data:
                    raise ConnectionError("the relay closed a fan-out connection")
                _, o, _ = state["scan"].feed(data)
                if o:
                    break
            eoses += 1
            state["scan"].payloads.clear()
            state["sock"].setblocking(False)
            sel.register(state["sock"], selectors.EVENT_READ, state)
        ready.put(eoses)
        # The timed loop: epoll directly (no selector objects), and events counted by finding
        # '["EVENT"' in the bytes (C speed) with a 7-byte carry for a marker split between reads;
        # the first 50 connections keep their bytes, walked frame by frame after the clock.
        poller = select.epoll()
        by_fd: dict[int, list[Any]] = {}
        for i, state in enumerate(states):
            fd = state["sock"].fileno()
            poller.register(fd, select.EPOLLIN)
            by_fd[fd] = [state["sock"], 0, b"", [] if i < 50 else None]  # sock, events, carry, kept
        seen: list[int] = [0] * expect
        end_by = time.perf_counter() + deadline
        complete = 0
        marker = b'["EVENT"'
        while complete < expect and time.perf_counter() < end_by:
            for fd, _ in poller.poll(0.2):
                slot = by_fd[fd]
                sock = slot[0]
                try:
                    data = sock.recv(RECV)
                except BlockingIOError:
                    continue
                if not data:
                    raise ConnectionError("the relay closed a fan-out connection")
                now = time.perf_counter()
                quickack(sock)
                joined = slot[2] + data
                e = joined.count(marker)
                slot[2] = joined[-7:]
                if slot[3] is not None:
                    slot[3].append(data)
                before = slot[1]
                for k in range(before, min(expect, before + e)):
                    seen[k] += 1
                    if seen[k] == conns:
                        complete += 1
                        queue.put(("event", k, now))
                slot[1] = before + e
        poller.close()
        sample: list[bytes] = []
        for slot in list(by_fd.values())[:50]:
            scan = FrameScanner()
            scan.feed(b"".join(slot[3] or []))
            sample += scan.payloads
        queue.put(("done", [slot[1] for slot in by_fd.values()], sample))
    finally:
        for state in states:
            state["sock"].close()


class _Receivers(Protocol):
    """What fanout() needs of its receiver processes, Python (below) or C (fastload.Receivers)."""

    queue: Any  # ("opened", n), ("event", k, t), ("done", counts, sample), or ("error", why)
    ready: Any  # each process's EOSE count, or ("error", why)

    def __len__(self) -> int: ...

    def go(self) -> None: ...

    def join(self, timeout: float = 10.0) -> None: ...


class _PythonReceivers:
    """Forked processes running :func:`_fanout_proc` (the generator without a C compiler)."""

    def __init__(self, port: int, shares: list[int], *, expect: int, deadline: float, tag: str) -> None:
        self.queue = _CTX.Queue()
        self.ready = _CTX.Queue()
        self._go = _CTX.Event()
        self.procs = []
        for share in shares:
            args = (port, share, expect, self.ready, self._go, self.queue, deadline, tag)
            proc = _CTX.Process(target=_fanout_proc, args=args)
            proc.start()
            self.procs.append(proc)

    def __len__(self) -> int:
        return len(self.procs)

    def go(self) -> None:
        self._go.set()

    def join(self, timeout: float = 10.0) -> None:
        for proc in self.procs:
            proc.join(timeout=timeout)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=timeout)


def _take(source: Any, timeout: float) -> Any:
    """The next item a receiver process sent; its failure, raised."""
    item = source.get(timeout=max(0.1, timeout))
    if isinstance(item, tuple) and item and item[0] == "error":
        raise fastload.FastloadError(item[1])
    return item


def fanout(
    port: int,
    latency_events: Sequence[Event],
    sustained_events: Sequence[Event],
    *,
    conns: int = 1000,
    procs: int | None = None,
    tag: str,
    rss: Callable[[], int],
    deadline: float = 60.0,
    fast: Path | None = None,
) -> dict[str, Any]:
    """One EVENT to ``conns`` subscriptions on ``conns`` connections.

    Latency: each of ``latency_events`` published alone, time from sending it to its last delivery
    (median). Sustained: ``sustained_events`` published back to back, deliveries/s until the last
    one. Also: RSS per idle connection, from the relay's RSS before and after the connections open.
    The receivers are ``procs`` processes: fastload's C loop with ``fast`` (a built binary), else
    :func:`_fanout_proc`; the events are published from here either way. By default one C process
    (measured against the C endpoint on 2 cores: last delivery 5.6-6.6 ms with one, 6.1-8.3 ms with
    two, which share the cores with the endpoint's senders) or two Python ones.
    """
    procs = procs or (1 if fast is not None else 2)
    expect = len(latency_events) + len(sustained_events)
    shares = [len(range(p, conns, procs)) for p in range(procs)]
    rss_before = rss()
    workers: _Receivers
    if fast is None:
        workers = _PythonReceivers(port, shares, expect=expect, deadline=deadline, tag=tag)
    else:
        req = orjson.dumps(["REQ", "fan", {"kinds": [1], "#t": [tag]}])
        workers = fastload.Receivers(fast, port, shares, expect=expect, keep=50, deadline=deadline, req=req)
    try:
        return _fanout_run(workers, port, latency_events, sustained_events, conns, rss, rss_before, deadline)
    finally:
        workers.join()


def _fanout_run(
    workers: _Receivers,
    port: int,
    latency_events: Sequence[Event],
    sustained_events: Sequence[Event],
    conns: int,
    rss: Callable[[], int],
    rss_before: int,
    deadline: float,
) -> dict[str, Any]:
    queue = workers.queue
    opened = 0
    for _ in range(len(workers)):
        _kind, n = _take(queue, deadline)
        opened += n
    time.sleep(0.5)
    rss_after = rss()
    workers.go()
    eoses = sum(_take(workers.ready, deadline) for _ in range(len(workers)))
    pub = Blocking(port, keep=False)
    arrivals: dict[int, list[float]] = {}
    done: list[Any] = []

    def wait_for(k: int, end_by: float) -> None:
        while len(arrivals.get(k, [])) < len(workers):
            item = _take(queue, end_by - time.perf_counter())
            if item[0] == "event":
                arrivals.setdefault(item[1], []).append(item[2])
            elif item[0] == "done":
                done.append(item)

    latencies = []
    end_by = time.perf_counter() + deadline
    try:
        frames = [client_frame(orjson.dumps(["EVENT", ev.to_dict()])) for ev in latency_events]
        for k, frame in enumerate(frames):
            t0 = time.perf_counter()
            pub.sock.sendall(frame)
            wait_for(k, end_by)
            latencies.append(max(arrivals[k]) - t0)
            time.sleep(0.02)
        base = len(frames)
        burst = b"".join(client_frame(orjson.dumps(["EVENT", ev.to_dict()])) for ev in sustained_events)
        t0 = time.perf_counter()
        pub.sock.sendall(burst)
        last = base + len(sustained_events) - 1
        wait_for(last, end_by)
        sustained_s = max(arrivals[last]) - t0
    finally:
        pub.close()
    while len(done) < len(workers):
        item = _take(queue, deadline)
        if item[0] == "done":
            done.append(item)
    counts = [c for item in done for c in item[1]]
    return {
        "connections": opened,
        "eoses": eoses,
        "last_delivery_ms": 1000 * statistics.median(latencies),
        "last_delivery_all_ms": [round(1000 * x, 2) for x in latencies],
        "sustained_deliveries_per_s": conns * len(sustained_events) / sustained_s,
        "rss_per_idle_connection_kb": (rss_after - rss_before) / 1024 / max(1, opened),
        "deliveries": counts,
        "sample": [p for item in done for p in item[2]],
    }
