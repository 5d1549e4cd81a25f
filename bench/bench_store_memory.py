"""RSS of a ``relaysim serve`` relay per stored event: empty, with seed1, and with its store at the cap.

Run: ``python bench/bench_store_memory.py [--dataset seed1] [--cap 100000]``

* empty: ``relaysim serve`` on an empty JSONL file: the interpreter, the imports, the app's files;
* dataset: ``relaysim serve --dataset seed1``: RSS, and (RSS - empty) / stored events, minus the
  average JSON line, = what each stored event costs beyond its JSON;
* cap: the same relay after live clients published signed events over websockets until the store
  evicts (``--cap`` live events, the default ``--max-events``, on top of the pinned dataset): RSS,
  and (RSS - dataset RSS) / cap, minus the live events' average JSON, per live event.

RSS is read from /proc/PID/status after the clients have gone and the relay has settled; the
relay runs in its own process, as a user runs it. Linux only (/proc). ``bench/bench_relay_flat.py``
reuses the relay and publishing helpers below for its hour under load.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from relay_client import connect, http_request

from relaysim.dataset import ensure_built, load_spec
from relaysim.nostr import Event, Keypair, sign_event
from relaysim.nostr.messages import encode_client_event

MB = 1024 * 1024
AUX = bytes(32)


# ------------------------------------------------------------------------------------ the relay


class RelayProcess:
    """``relaysim serve ... --port 0`` in a child process; ``url``/``http_url`` once it is ready."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relaysim", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        self.url = ""
        self.ready_line = ""
        while True:
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise SystemExit(f"relaysim serve failed: {err}")
            if line.startswith("relaysim: relay"):
                self.url = line.split()[2]
            if line.startswith("relaysim: ready"):
                self.ready_line = line.strip()
                break
        self.http_url = self.url.replace("ws://", "http://", 1)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss(self) -> int:
        """Resident set size in bytes (VmRSS)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise KeyError("VmRSS")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stats(self) -> dict:
        status, _, body = await http_request(self.http_url, path="/stats")
        assert status == 200, status
        return orjson.loads(body)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


async def settled_rss(relay: RelayProcess, seconds: float = 2.0) -> int:
    """RSS once nothing has happened for ``seconds`` (closed connections' memory is freed)."""
    await trio.sleep(seconds)
    return relay.rss()


# ------------------------------------------------------------------------------------ live events

WORDS = ["nostr", "relay", "soak", "heap", "leak", "worker", "wasm", "bump", "feed", "zap", "idle"]


class LiveEvents:
    """Signed events shaped like a live feed, from ``authors`` keys, deterministic per ``seed``.

    Notes (some replying to a recent note, mentioning people), reactions and reposts of recent
    notes, and now and then a profile update (replaceable), a deletion of the author's own note,
    a note that expires in a minute (NIP-40) and an ephemeral event: every storage rule is
    exercised. ``created_at`` is the wall clock (``now``), so a long run keeps moving forward.
    """

    def __init__(self, authors: int = 50, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.keys = [Keypair(hashlib.sha256(f"live-{seed}-{i}".encode()).digest()) for i in range(authors)]
        self.pubkeys = [key.pubkey for key in self.keys]
        self.recent: list[Event] = []
        self.made = 0

    def _note_tags(self) -> list[list[str]]:
        rng = self.rng
        tags = [["p", rng.choice(self.pubkeys)] for _ in range(rng.randint(0, 3))]
        if self.recent and rng.random() < 0.4:
            parent = rng.choice(self.recent)
            tags += [["e", parent.id, "", "reply"], ["p", parent.pubkey]]
        if rng.random() < 0.2:
            tags.append(["t", rng.choice(WORDS)])
        return tags

    def make(self, now: int | None = None) -> Event:
        rng = self.rng
        created_at = int(time.time()) if now is None else now
        index = min(int(rng.paretovariate(1.2)) - 1, len(self.keys) - 1)  # a few authors write most
        key = self.keys[index]
        roll = rng.random()
        kind, content, tags = 1, "", []
        if roll < 0.45 or not self.recent:
            content = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60)))
            tags = self._note_tags()
        elif roll < 0.80:
            target = self.recent[-1 - min(int(rng.paretovariate(0.8)) - 1, len(self.recent) - 1)]
            kind, content = 7, rng.choice(["+", "🤙", "❤️"])
            tags = [["e", target.id], ["p", target.pubkey], ["k", str(target.kind)]]
        elif roll < 0.88:
            target = rng.choice(self.recent)
            kind, content = 6, target.json.decode()
            tags = [["e", target.id, ""], ["p", target.pubkey]]
        elif roll < 0.92:
            kind, content = 0, orjson.dumps({"name": f"live{index}", "about": f"update {self.made}"}).decode()
        elif roll < 0.94:
            own = [e for e in self.recent[-50:] if e.pubkey == key.pubkey and e.kind == 1]
            if own:
                kind, tags = 5, [["e", own[-1].id], ["k", "1"]]
            else:
                content = "nothing to delete"
        elif roll < 0.97:
            content = "this note expires in a minute"
            tags = [["expiration", str(created_at + 60)]]
        else:
            kind, content = 20001, "typing…"
            tags = [["p", rng.choice(self.pubkeys)]]
        event = sign_event(key, created_at=created_at, kind=kind, tags=tags, content=content, aux=AUX)
        self.made += 1
        if kind == 1:
            self.recent.append(event)
            if len(self.recent) > 500:
                del self.recent[:250]
        return event

    def batch(self, n: int) -> list[Event]:
        return [self.make() for _ in range(n)]


async def publish(url: str, events: Sequence[Event], *, window: int = 100) -> int:
    """Send ``events`` over one connection, ``window`` EVENTs before reading their OKs; OK trues."""
    client = await connect(url)
    accepted = 0
    try:
        for start in range(0, len(events), window):
            chunk = events[start : start + window]
            for event in chunk:
                client.proto.send_text(encode_client_event(event))
            await client._flush()
            seen = 0
            while seen < len(chunk):
                msg = await client.recv()
                if msg.startswith(b'["OK"'):
                    seen += 1
                    accepted += msg.split(b",")[2] == b"true"
    finally:
        await client.close()
    return accepted


async def publish_spread(url: str, events: Sequence[Event], clients: int) -> None:
    """Publish ``events`` over ``clients`` connections at once, a slice each."""
    async with trio.open_nursery() as nursery:
        share = (len(events) + clients - 1) // clients
        for i in range(clients):
            nursery.start_soon(publish, url, events[i * share : (i + 1) * share])


async def fill_to_cap(relay: RelayProcess, cap: int, source: LiveEvents, *, clients: int = 4) -> dict:
    """Publish until the store evicts (it holds ``cap`` live events); returns the last /stats."""
    chunk = 2_000
    t0 = time.perf_counter()
    sent = 0
    while True:
        doc = await relay.stats()
        store = doc["store"]
        if store["evicted"] > 0:
            break
        live = store["events"] - store["pinned"]
        need = max(chunk, min(cap - live + 100, 20_000))
        events = source.batch(need)
        await publish_spread(relay.url, events, clients)
        sent += len(events)
        store = (await relay.stats())["store"]
        print(
            f"  filling: {sent:,} published, {store['events']:,} stored, "
            f"{time.perf_counter() - t0:.0f} s, RSS {relay.rss() / MB:.0f} MB",
            file=sys.stderr,
            flush=True,
        )
    return doc


def dataset_json_average(name: str) -> float:
    """The average wire JSON length of a dataset's events (its JSONL lines, less the newline)."""
    path = ensure_built(load_spec(name))
    with path.open("rb") as handle:
        lines = sum(1 for _ in handle)
    return (path.stat().st_size - lines) / max(lines, 1)


def per_event(rss_delta: int, events: int, json_average: float) -> str:
    total = rss_delta / max(events, 1)
    return f"{total:,.0f} B RSS per event = {json_average:,.0f} B JSON + {total - json_average:,.0f} B beyond"


# ------------------------------------------------------------------------------------ main


async def bench_cap(relay: RelayProcess, cap: int, base: int) -> list[str]:
    source = LiveEvents()
    doc = await fill_to_cap(relay, cap, source)
    rss = await settled_rss(relay, 3.0)
    store = doc["store"]
    sample = source.batch(2000)
    json_average = sum(len(e.json) for e in sample if not 20000 <= e.kind < 30000) / len(sample)
    return [
        f"cap: {store['events']:,} events stored ({store['pinned']:,} pinned + {store['capacity']:,} live, "
        f"{store['evicted']:,} evicted): RSS {rss / MB:.1f} MB",
        f"  live events: {per_event(rss - base, store['capacity'], json_average)}",
    ]


async def after_resets(relay: RelayProcess) -> int:
    for _ in range(2):
        status, _, _ = await http_request(relay.http_url, method="POST", path="/control/reset")
        assert status == 200, status
        await trio.sleep(1.0)  # the spare store is built in a worker thread meanwhile
    return await settled_rss(relay)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="seed1")
    parser.add_argument("--cap", type=int, default=100_000, help="the relay's --max-events (default 100000)")
    parser.add_argument("--no-cap", action="store_true", help="skip the (slower) fill to the cap")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        empty_file = Path(tmp) / "empty.jsonl"
        empty_file.write_bytes(b"")
        empty = RelayProcess("--dataset", str(empty_file))
        try:
            empty_rss = trio.run(settled_rss, empty)
        finally:
            empty.stop()
    print(f"empty relay: RSS {empty_rss / MB:.1f} MB (interpreter, imports, the app's files)")

    relay = RelayProcess("--dataset", args.dataset, "--max-events", str(args.cap))
    try:
        stored = trio.run(relay.stats)["totals"]["events_stored"]
        dataset_rss = trio.run(settled_rss, relay)
        print(f"{args.dataset}: RSS {dataset_rss / MB:.1f} MB for {stored:,} events ({relay.ready_line})")
        print(f"  {per_event(dataset_rss - empty_rss, stored, dataset_json_average(args.dataset))}")
        reset_rss = trio.run(after_resets, relay)
        print(f"  after two resets (a fresh store, a spare built for the next): RSS {reset_rss / MB:.1f} MB")
        if not args.no_cap:
            for line in trio.run(bench_cap, relay, args.cap, reset_rss):
                print(line)
    finally:
        relay.stop()


if __name__ == "__main__":
    main()
