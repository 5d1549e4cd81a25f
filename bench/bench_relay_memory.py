"""The relay's memory per connection, measured as RSS of a ``relaysim serve`` process.

Run: ``python bench/bench_relay_memory.py [--dataset seed1] [--idle 1000] [--reqs 200] [--limit 5000]``

Each figure gets a fresh relay (memory one leaves behind would be reused by the next).

* idle connections: RSS after opening ``--idle`` websockets that send nothing, minus RSS before,
  per connection;
* the slow client: one websocket sends ``--reqs`` REQs of ``{"limit": --limit}`` and never
  reads (``--rcvbuf`` shrinks its socket's receive buffer; then it reads so slowly afterwards
  that the relay cuts it off before the NOTICE and close frame reach it). The figure is the
  relay's peak RSS (``VmHWM``, reset with ``/proc/PID/clear_refs`` just before: the kernel's
  exact peak, not a sample) minus its RSS before the client connected; then how long until the
  relay dropped it, and what the client reads when it finally reads (NOTICE, close code, reason).

The relay runs in its own process, as a user runs it; the clients are the tests' trio client in
this process. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from relay_client import WsClient, connect, http_request

from relaysim.nostr.messages import encode_req

MB = 1024 * 1024


def start_relay(dataset: str) -> tuple[subprocess.Popen[str], str]:
    """``relaysim serve --dataset DATASET --port 0``; returns (process, ws url) once it is ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "relaysim", "serve", "--dataset", dataset, "--port", "0"],
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
            return proc, url


def status_kb(pid: int, field: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/PID/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> bool:
    """Make ``VmHWM`` start again from the current RSS (Linux >= 4.0); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def stats(http_url: str) -> dict:
    status, _, body = await http_request(http_url, path="/stats")
    assert status == 200
    return orjson.loads(body)


async def bench_idle(url: str, pid: int, count: int) -> str:
    await trio.sleep(0.5)
    before = status_kb(pid, "VmRSS")
    clients: list[WsClient] = []
    for _ in range(count):
        clients.append(await connect(url))
    await trio.sleep(0.5)
    after = status_kb(pid, "VmRSS")
    for client in clients:
        await client.stream.aclose()
    per = (after - before) * 1024 / count
    return f"idle connections: {count} add {(after - before) / 1024:.1f} MB RSS = {per / 1024:.1f} KiB each"


async def bench_slow(url: str, pid: int, reqs: int, limit: int, rcvbuf: int | None) -> str:
    http_url = url.replace("ws://", "http://", 1)
    await trio.sleep(0.5)
    before = status_kb(pid, "VmRSS")
    exact = reset_peak(pid)
    peak = before
    drops_before = (await stats(http_url))["totals"]["slow_client_disconnects"]
    client = await connect(url, rcvbuf=rcvbuf)
    t0 = time.perf_counter()
    for i in range(reqs):
        await client.send(encode_req(f"s{i}", {"limit": limit}))
    dropped_after = None
    with trio.move_on_after(120):
        while True:
            peak = max(peak, status_kb(pid, "VmRSS"))
            doc = await stats(http_url)
            if doc["totals"]["slow_client_disconnects"] > drops_before:
                dropped_after = time.perf_counter() - t0
                break
            await trio.sleep(0.05)
    # Now read: what is still in flight, then the relay's reason.
    notices: list[str] = []
    with trio.move_on_after(30):
        while True:
            try:
                msg = await client.recv()
            except (ConnectionError, trio.BrokenResourceError):
                break
            if msg.startswith(b'["NOTICE"'):
                notices.append(orjson.loads(msg)[1])
    rcvd = client.proto.close_rcvd
    await client.stream.aclose()
    if exact:
        peak = max(peak, status_kb(pid, "VmHWM"))
    after = status_kb(pid, "VmRSS")
    told = f"close {rcvd.code} {rcvd.reason!r}" if rcvd is not None else "no close frame"
    when = f"dropped after {dropped_after:.1f} s" if dropped_after is not None else "NOT dropped in 120 s"
    return (
        f"slow client ({reqs} REQs of limit {limit}, never reads): RSS {before / 1024:.0f} MB before, "
        f"peak +{(peak - before) / 1024:.1f} MB ({'VmHWM' if exact else 'sampled'}), "
        f"+{(after - before) / 1024:.1f} MB after; {when}; told: {notices} {told}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="seed1")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections to open")
    parser.add_argument("--reqs", type=int, default=200, help="REQs the slow client sends")
    parser.add_argument("--limit", type=int, default=5000, help="each REQ's limit")
    parser.add_argument("--rcvbuf", type=int, default=None, help="the slow client's SO_RCVBUF")
    args = parser.parse_args()
    # A fresh relay for each figure: memory freed by one would be reused by the next.
    for name, bench, extra in (
        ("idle", bench_idle, (args.idle,)),
        ("slow", bench_slow, (args.reqs, args.limit, args.rcvbuf)),
    ):
        proc, url = start_relay(args.dataset)
        try:
            if name == "idle":
                print(f"relay ({args.dataset}) ready: RSS {status_kb(proc.pid, 'VmRSS') / 1024:.0f} MB")
            print(trio.run(bench, url, proc.pid, *extra))
        finally:
            proc.terminate()
            proc.wait(20)


if __name__ == "__main__":
    main()
