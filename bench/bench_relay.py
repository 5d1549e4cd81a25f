"""Figures for the test relay, measured over real loopback sockets against ``relaysim serve``.

Run: ``python bench/bench_relay.py [--rounds 200] [--clients 50] [--subs 1000]``

* serve ready time: ``relaysim serve --dataset seed1`` from process start to the "ready" line
  (and the relay's own figure, which leaves out interpreter start-up and imports);
* REQ -> EOSE for ``{"kinds":[1],"limit":500}`` on seed1: latency p50/p99 and events/s, with one
  client and with ``--clients`` concurrent clients (each sends REQ, reads to EOSE, CLOSEs, repeats);
* live fan-out: one EVENT published to ``--subs`` subscriptions (spread over connections of 10
  subscriptions each): time from sending the EVENT to the last delivery, p50 over a few events;
* ``POST /control/reset`` with 100 subscriptions on 10 connections and a few live events: the first
  reset (builds the store) and later ones (a spare store was built meanwhile), as the relay reports
  them and as the HTTP client sees them.

The relay runs in its own process (as a user runs it); the clients are the tests' small trio
client on websockets' Sans-I/O protocol, in this process. The machine is shared: figures vary
from run to run; the client's own cost is included in every figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import orjson
from relay_client import SK2, connect, http_request, signed_note

from relaysim.nostr.messages import encode_client_event, encode_close, encode_req

REQ_FILTER = {"kinds": [1], "limit": 500}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def start_relay() -> tuple[subprocess.Popen, str, float, str]:
    """Start ``relaysim serve`` (seed1, port 0); returns (process, ws url, wall ready s, its line)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "relaysim", "serve", "--dataset", "seed1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    url = ""
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"relaysim serve failed: {proc.stderr.read() if proc.stderr else ''}")
        if line.startswith("relaysim: relay"):
            url = line.split()[2]
        if line.startswith("relaysim: ready"):
            cpu = cpu_seconds(proc.pid)
            return proc, url, time.perf_counter() - start, f"{line.strip()}; {cpu:.2f} CPU-s incl. imports"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), to report the relay's own CPU cost."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def req_loop(url: str, rounds: int, latencies: list[float], counts: list[int]) -> None:
    client = await connect(url)
    for i in range(rounds):
        sub = f"b{i}"
        eose = b'["EOSE","' + sub.encode() + b'"]'
        t0 = time.perf_counter()
        await client.send(encode_req(sub, REQ_FILTER))
        n = 0
        while True:  # count, do not parse: the figure is the relay's, not the client's JSON decoder
            msg = await client.recv()
            if msg == eose:
                break
            n += msg.startswith(b'["EVENT","' + sub.encode() + b'",')
        latencies.append(time.perf_counter() - t0)
        counts.append(n)
        await client.send(encode_close(sub))
    await client.close()


async def bench_req(url: str, clients: int, rounds: int, pid: int) -> str:
    latencies: list[float] = []
    counts: list[int] = []
    cpu0 = cpu_seconds(pid)
    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(clients):
            nursery.start_soon(req_loop, url, rounds, latencies, counts)
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    assert set(counts) == {500}, set(counts)
    return (
        f"REQ->EOSE {{kinds:[1],limit:500}} x{clients} client(s), {len(latencies)} queries: "
        f"p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms, "
        f"{sum(counts) / wall:,.0f} events/s, {len(latencies) / wall:,.1f} queries/s; "
        f"relay CPU {cpu / len(latencies) * 1000:.1f} ms/query = "
        f"{sum(counts) / cpu if cpu else 0:,.0f} events per CPU-s"
    )


async def bench_fanout(url: str, subs: int, events: int) -> str:
    per_conn = 10
    conns = []
    author = signed_note(0, sk=SK2).pubkey
    for c in range((subs + per_conn - 1) // per_conn):
        client = await connect(url)
        count = min(per_conn, subs - c * per_conn)
        for s in range(count):
            await client.send(encode_req(f"f{s}", {"kinds": [1], "authors": [author], "limit": 0}))
        for s in range(count):
            await client.recv_until_eose(f"f{s}")
        conns.append((client, count))
    publisher = await connect(url)
    times = []
    for n in range(events):
        event = signed_note(int(time.time()) + n, f"fan-out {n}", sk=SK2)
        done: list[float] = []

        async def receive(client, expected: int, event=event, done=done) -> None:
            for _ in range(expected):
                msg = await client.recv_json()
                assert msg[0] == "EVENT" and msg[2]["id"] == event.id
            done.append(time.perf_counter())

        async with trio.open_nursery() as nursery:
            for client, expected in conns:
                nursery.start_soon(receive, client, expected)
            await trio.sleep(0.05)
            t0 = time.perf_counter()
            await publisher.send(encode_client_event(event))
        times.append(max(done) - t0)
        await publisher.recv_json()  # OK
    for client, _ in conns:
        await client.close()
    await publisher.close()
    return (
        f"fan-out of one event to {subs} subscriptions on {len(conns)} connections: "
        f"p50 {statistics.median(times) * 1000:.1f} ms, best {min(times) * 1000:.1f} ms to the last delivery"
    )


async def bench_reset(url: str, http_url: str, rounds: int) -> str:
    relay_s, wall_s = [], []
    conns = [await connect(url) for _ in range(10)]
    for _ in range(rounds):
        for client in conns:
            for s in range(10):
                await client.send(encode_req(f"r{s}", {"kinds": [1], "limit": 0}))
            for s in range(10):
                await client.recv_until_eose(f"r{s}")
        for n in range(5):
            await conns[0].send(encode_client_event(signed_note(int(time.time()) + n, f"reset {n}", sk=SK2)))
        await trio.sleep(0.5)  # what a test example does between resets; the spare is built meanwhile
        t0 = time.perf_counter()
        status, _, body = await http_request(http_url, method="POST", path="/control/reset")
        wall_s.append(time.perf_counter() - t0)
        report = orjson.loads(body)
        assert status == 200 and report["subscriptions_closed"] == 100, report
        relay_s.append(report["seconds"])
        for client in conns:
            closed = 0
            while closed < 10:
                closed += (await client.recv_json())[0] == "CLOSED"
    for client in conns:
        await client.close()
    later = relay_s[1:] or relay_s
    return (
        f"reset (seed1, 100 subscriptions): first {relay_s[0] * 1000:.0f} ms in the relay "
        f"({wall_s[0] * 1000:.0f} ms over HTTP), then p50 {statistics.median(later) * 1000:.1f} ms "
        f"({statistics.median(wall_s[1:] or wall_s) * 1000:.1f} ms over HTTP) over {len(later)} resets"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200, help="REQs by the single client")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--concurrent-rounds", type=int, default=10, help="REQs per concurrent client")
    parser.add_argument("--subs", type=int, default=1000)
    parser.add_argument("--fanout-events", type=int, default=5)
    parser.add_argument("--resets", type=int, default=10)
    args = parser.parse_args()

    proc, url, wall_ready, line = start_relay()
    try:
        print(f"serve ready: {wall_ready:.2f} s from process start ({line.removeprefix('relaysim: ')})")
        print(trio.run(bench_req, url, 1, args.rounds, proc.pid))
        print(trio.run(bench_req, url, args.clients, args.concurrent_rounds, proc.pid))
        print(trio.run(bench_fanout, url, args.subs, args.fanout_events))
        print(trio.run(bench_reset, url, url.replace("ws://", "http://", 1), args.resets))
    finally:
        proc.terminate()
        proc.wait(20)


if __name__ == "__main__":
    main()
