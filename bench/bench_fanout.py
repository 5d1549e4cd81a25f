"""Live fan-out of ``relaysim serve``: one EVENT to N subscriptions on N connections.

Run: ``python3 bench/bench_fanout.py [--conns 1000] [--procs 2] [--events 21] [--burst 50]
[--port P] [--profile OUT.txt]``

The same row as ``bench/peers.py``'s fan-out, narrowed to one relay for a quick inner loop while
working on the relay's delivery path: the relay runs in its own process (an empty store unless
``--dataset``), ``--procs`` receiver processes hold ``--conns`` raw-socket websocket connections
with one identical subscription each (``{"kinds":[1],"#t":[tag]}``, as the peer bench), and this
process publishes. Figures: the median and spread of "EVENT sent -> its last delivery" over
``--events`` events published one at a time, then deliveries/s for ``--burst`` events sent in
one write. Every connection must receive every event exactly once (checked, by count).

``--fast`` uses the peer bench's compiled receivers (``bench/peerbench``'s fastload, built into
``~/.cache/relaysim-bench``) instead of this file's Python ones, whose own cost shows in the figure.
``--port`` measures a relay already running there instead (e.g. a peer started by hand);
``--profile`` records the relay under py-spy (``--idle`` off, raw) during the timed part and
writes its top functions by own and by total samples. Run it under ``flock /tmp/chromium.lock``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from peerbench import wsraw
from peerbench.wsraw import client_frame

from relaysim.nostr.event import Event, sign_event

TAG = "fanoutbench"
SK = bytes(range(7, 39))
MARKER = b'["EVENT"'
RECV = 262_144
_CTX = mp.get_context("fork")


def connect(port: int) -> socket.socket:
    """A websocket to the relay on loopback (the peer bench's raw client; its first bytes are a 101)."""
    sock, rest = wsraw.connect(port)
    assert not rest, rest  # nothing is sent before a REQ
    return sock


def quickack(sock: socket.socket) -> None:
    # A relay without TCP_NODELAY waits on delayed ACKs; re-arm quick ACKs after each read.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def _receiver(port: int, conns: int, expect: int, queue: Any, go: Any, deadline: float) -> None:
    socks = [connect(port) for _ in range(conns)]
    queue.put(("opened", conns))
    go.wait(deadline)
    req = client_frame(orjson.dumps(["REQ", "fan", {"kinds": [1], "#t": [TAG]}]))
    for sock in socks:
        sock.sendall(req)
    for sock in socks:
        got = b""
        while b'["EOSE","fan"]' not in got:
            chunk = sock.recv(RECV)
            if not chunk:
                raise ConnectionError("the relay closed a connection before EOSE")
            got += chunk
        sock.setblocking(False)
    queue.put(("ready", conns))
    poller = select.epoll()
    slots: dict[int, list[Any]] = {}
    for sock in socks:
        poller.register(sock.fileno(), select.EPOLLIN)
        slots[sock.fileno()] = [sock, 0, b""]  # socket, events seen, carry for a split marker
    seen = [0] * expect
    done = 0
    end_by = time.perf_counter() + deadline
    while done < expect and time.perf_counter() < end_by:
        for fd, _ in poller.poll(0.2):
            slot = slots[fd]
            try:
                data = slot[0].recv(RECV)
            except BlockingIOError:
                continue
            if not data:
                raise ConnectionError("the relay closed a fan-out connection")
            now = time.perf_counter()
            quickack(slot[0])
            joined = slot[2] + data
            slot[2] = joined[-7:]
            before = slot[1]
            slot[1] = before + joined.count(MARKER)
            for k in range(before, min(expect, slot[1])):
                seen[k] += 1
                if seen[k] == conns:
                    done += 1
                    queue.put(("event", k, now))
    queue.put(("done", [slot[1] for slot in slots.values()]))
    for sock in socks:
        sock.close()


def start_relay(dataset: str) -> tuple[subprocess.Popen[bytes], int]:
    cmd = [sys.executable, "-m", "relaysim", "serve", "--dataset", dataset, "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    port = 0
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("relaysim serve ended before it was ready")
        if line.startswith(b"relaysim: relay"):
            port = int(line.split()[2].rstrip(b"/").rsplit(b":", 1)[1])
        if line.startswith(b"relaysim: ready"):
            return proc, port


def events(n: int) -> list[Event]:
    base = int(time.time())
    return [
        sign_event(SK, created_at=base + i, kind=1, tags=[["t", TAG]], content=f"fan-out {i}", aux=bytes(32))
        for i in range(n)
    ]


def run(
    port: int, conns: int, procs: int, n_latency: int, burst: int, pid: int | None, profile: str, native: bool
) -> None:
    evs = events(n_latency + burst)
    expect = len(evs)
    queue = _CTX.Queue()
    go = _CTX.Event()
    deadline = 60.0
    workers = []
    for p in range(procs):
        share = len(range(p, conns, procs))
        proc = _CTX.Process(target=_receiver, args=(port, share, expect, queue, go, deadline))
        proc.start()
        workers.append(proc)
    for _ in workers:
        queue.get(timeout=deadline)
    go.set()
    for _ in workers:
        queue.get(timeout=deadline)
    pub = connect(port)
    arrivals: dict[int, list[float]] = {}
    done: list[list[int]] = []

    def wait_for(k: int) -> None:
        while len(arrivals.get(k, [])) < procs:
            item = queue.get(timeout=deadline)
            if item[0] == "event":
                arrivals.setdefault(item[1], []).append(item[2])
            elif item[0] == "done":
                done.append(item[1])

    spy = start_profile(pid, profile, native)
    frames = [client_frame(orjson.dumps(["EVENT", ev.to_dict()])) for ev in evs]
    latencies = []
    for k in range(n_latency):
        t0 = time.perf_counter()
        pub.sendall(frames[k])
        wait_for(k)
        latencies.append(max(arrivals[k]) - t0)
        time.sleep(0.02)
    rate = 0.0
    if burst:
        t0 = time.perf_counter()
        pub.sendall(b"".join(frames[n_latency:]))
        wait_for(expect - 1)
        rate = conns * burst / (max(arrivals[expect - 1]) - t0)
    while len(done) < procs:
        item = queue.get(timeout=deadline)
        if item[0] == "done":
            done.append(item[1])
    for proc in workers:
        proc.join(timeout=10)
    pub.close()
    stop_profile(spy)
    counts = Counter(c for d in done for c in d)
    ms = sorted(1000 * x for x in latencies)
    print(
        f"fan-out to {conns} connections ({procs} receiver processes), load {os.getloadavg()[0]:.2f}: "
        f"last delivery median {statistics.median(ms):.2f} ms (min {ms[0]:.2f}, max {ms[-1]:.2f}; "
        f"{len(ms)} events); burst of {burst}: {rate:,.0f} deliveries/s; "
        f"events per connection {dict(counts)} (expected {expect})"
    )
    if spy is not None:
        summarize(profile)


def start_profile(pid: int | None, profile: str, native: bool) -> subprocess.Popen[bytes] | None:
    """py-spy recording the relay (raw collapsed stacks into ``profile``), if asked."""
    if not profile or pid is None:
        return None
    spy = subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "1000", "-o", profile]
        + (["--native"] if native else []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    return spy


def stop_profile(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(2)
        spy.wait(timeout=30)


def run_fast(
    port: int, conns: int, procs: int, n_latency: int, burst: int, pid: int | None, profile: str, native: bool
) -> None:
    """The same figures with the peer bench's fan-out row and its compiled receivers."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from peerbench import fastload, rows

    generator = fastload.build(Path.home() / ".cache" / "relaysim-bench")
    if generator.binary is None:
        raise SystemExit(f"bench_fanout: no compiled receivers: {generator.description}")
    evs = events(n_latency + burst)
    spy = start_profile(pid, profile, native)
    fan = rows.fanout(
        port,
        evs[:n_latency],
        evs[n_latency:],
        conns=conns,
        procs=procs,
        tag=TAG,
        rss=lambda: 0,
        fast=generator.binary,
    )
    stop_profile(spy)
    ms = sorted(fan["last_delivery_all_ms"])
    print(
        f"fan-out to {conns} connections (compiled receivers), load {os.getloadavg()[0]:.2f}: "
        f"last delivery median {statistics.median(ms):.2f} ms (min {ms[0]:.2f}, max {ms[-1]:.2f}; "
        f"{len(ms)} events); burst of {burst}: {fan['sustained_deliveries_per_s']:,.0f} deliveries/s; "
        f"events per connection {dict(Counter(fan['deliveries']))} (expected {len(evs)})"
    )
    if spy is not None:
        summarize(profile)


def summarize(path: str, top: int = 25) -> None:
    """Own and total samples per function from py-spy's raw (collapsed-stack) output."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    print(f"py-spy: {samples} samples")
    for title, counter in (("own", own), ("total", total)):
        print(f"-- top by {title} samples")
        for frame, n in counter.most_common(top):
            print(f"{100 * n / samples:6.1f}%  {frame}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--events", type=int, default=21, help="published one at a time (latency)")
    parser.add_argument("--burst", type=int, default=50, help="published in one write (deliveries/s)")
    parser.add_argument("--port", type=int, help="a relay already running on this port")
    parser.add_argument("--dataset", help="relaysim serve --dataset (default: an empty store)")
    parser.add_argument("--profile", default="", help="py-spy raw output file (relaysim only)")
    parser.add_argument("--pid", type=int, help="with --port: the relay's process id, for --profile")
    parser.add_argument("--native", action="store_true", help="--profile: native (C) frames too")
    parser.add_argument("--fast", action="store_true", help="the peer bench's compiled receivers")
    args = parser.parse_args(argv)
    relay = None
    pid = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.port:
            port, pid = args.port, args.pid
        else:
            dataset = args.dataset or str(Path(tmp) / "empty.jsonl")
            if not args.dataset:
                Path(dataset).write_bytes(b"")
            relay, port = start_relay(dataset)
            pid = relay.pid
        try:
            runner = run_fast if args.fast else run
            runner(port, args.conns, args.procs, args.events, args.burst, pid, args.profile, args.native)
        finally:
            if relay is not None:
                relay.terminate()
                relay.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
