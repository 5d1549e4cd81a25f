"""Figures for relaysim.store: bulk load time and queries per second on synthetic signed events.

Run: ``python bench/bench_store.py [--events 20000] [--seconds 1.0]`` (after ``scripts/install``, or
with ``PYTHONPATH=.`` from the repository root).

The events are real BIP-340 signed events (pinned aux, so the set is the same on every run) from
200 authors, shaped like a Twitter-like timeline: notes with p/e tags, reactions heavy on a few
notes, reposts, one kind 0 and kind 3 per author, created_at in same-second clusters. Signing is
timed separately; "load" is ``EventStore.load`` alone (indexing plus encoding the wire JSON once).

Query figures are for ``EventStore.query_json``, what a REQ costs the relay: the stored wire JSON
of each result, all cut out (``[:]``) as sending them does; one line gives ``EventStore.query``
too (results decoded back into ``Event`` objects, the Python API). The memory line is what the
store holds beyond the events' JSON, per event, as tracemalloc sees it;
``bench/bench_store_memory.py`` measures the relay process's RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

from relaysim.nostr import Event, pubkey_of, sign_event
from relaysim.nostr.filter import Filter
from relaysim.store import EventStore

AUX = bytes(32)
T = TypeVar("T")
END = 1_750_000_000  # a fixed epoch: the set never depends on "now"


def make_events(count: int, authors: int = 200, seed: int = 1) -> tuple[list[Event], list[str]]:
    """``count`` signed events and the author pubkeys (index 0 is the "viewer")."""
    rng = random.Random(seed)
    secrets = [hashlib.sha256(f"bench-{seed}-{i}".encode()).digest() for i in range(authors)]
    pubkeys = [pubkey_of(s) for s in secrets]
    events: list[Event] = []
    notes: list[Event] = []
    start = END - 30 * 86400

    def when() -> int:
        # Same-second clusters: a quarter of the events share a second with the previous one.
        if events and rng.random() < 0.25:
            return events[-1].created_at
        return rng.randint(start, END)

    for i, secret in enumerate(secrets):
        events.append(sign_event(secret, created_at=when(), kind=0, content=f'{{"name":"user{i}"}}', aux=AUX))
        follows = rng.sample(pubkeys, 50)
        events.append(
            sign_event(secret, created_at=when(), kind=3, tags=[["p", p] for p in follows], aux=AUX)
        )
    while len(events) < count:
        a = min(int(rng.paretovariate(1.2)) - 1, authors - 1)  # a few authors write most
        secret, roll = secrets[a], rng.random()
        if roll < 0.6 or not notes:
            tags = [["p", rng.choice(pubkeys)] for _ in range(rng.randint(0, 3))]
            if rng.random() < 0.3:
                tags.append(["p", pubkeys[0]])  # mentions of the viewer: the notifications feed
            if notes and rng.random() < 0.3:
                parent = rng.choice(notes)
                tags += [["e", parent.id, "", "reply"], ["p", parent.pubkey]]
            event = sign_event(
                secret, created_at=when(), kind=1, tags=tags, content=f"note {len(events)}", aux=AUX
            )
            notes.append(event)
        elif roll < 0.95:
            target = notes[min(int(rng.paretovariate(0.8)) - 1, len(notes) - 1)]  # heavy-tailed
            tags = [["e", target.id], ["p", target.pubkey], ["k", "1"]]
            event = sign_event(secret, created_at=when(), kind=7, tags=tags, content="+", aux=AUX)
        else:
            target = rng.choice(notes)
            tags = [["e", target.id, ""], ["p", target.pubkey]]
            event = sign_event(secret, created_at=when(), kind=6, tags=tags, aux=AUX)
        events.append(event)
    return events, pubkeys


def rate(label: str, fn: Callable[[], object], seconds: float) -> None:
    """Call ``fn`` repeatedly for about ``seconds``; print calls per wall second and per CPU second.

    The CPU figure (``time.process_time``) is the steadier one on a shared machine.
    """
    result = fn()
    size = len(result) if isinstance(result, list) else result
    calls, begin, cpu_begin = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - begin) < seconds:
        fn()
        calls += 1
    cpu = time.process_time() - cpu_begin
    print(
        f"  {label:<52} {calls / elapsed:>8,.0f} /s wall {calls / cpu:>8,.0f} /s cpu"
        f"  ({size} results, {cpu / calls * 1e6:,.0f} µs cpu each)"
    )


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """``fn()``, its wall time and its CPU time (the steadier figure on a shared machine)."""
    begin, cpu_begin = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - begin, time.process_time() - cpu_begin


def bench_dataset(name: str, seconds: float) -> None:
    """Load a built dataset (e.g. seed1) the way the relay does, and time two queries on it."""
    from relaysim.dataset import ensure_built, load_spec, read_jsonl

    path = ensure_built(load_spec(name))
    events = read_jsonl(path, verify=False).events
    store = EventStore()
    result, wall, cpu = timed(lambda: store.load(events))
    print(
        f"{name}: load {len(events)} events ({result.stored} stored, {result.refused} refused) "
        f"in {wall:.3f} s wall, {cpu:.3f} s cpu (wire JSON encoded during the load)"
    )
    viewer = max(store.query([Filter(kinds=[3])]), key=lambda e: len(e.tags)).pubkey
    rate(
        f'{name} {{"kinds":[1],"limit":500}}',
        lambda: store.query_json([Filter(kinds=[1], limit=500)])[:],
        seconds,
    )
    rate(
        f'{name} {{"#p":[viewer],"kinds":[1,6,7,9735],"limit":100}}',
        lambda: store.query_json([Filter(tags={"p": [viewer]}, kinds=[1, 6, 7, 9735], limit=100)])[:],
        seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="how many synthetic events (default 20000)")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per query figure (default 1.0)")
    parser.add_argument("--dataset", default="seed1", help="also time loading this dataset ('' to skip)")
    args = parser.parse_args()

    begin = time.perf_counter()
    events, pubkeys = make_events(args.events)
    print(f"signed {len(events)} events in {time.perf_counter() - begin:.2f} s (not part of the load figure)")

    store = EventStore()
    result, wall, cpu = timed(lambda: store.load(events))
    print(
        f"load: {result.stored} stored in {wall:.3f} s wall, {cpu:.3f} s cpu "
        f"({len(events) / cpu:,.0f} events per cpu second, wire JSON encoded during the load)"
    )
    print(f"  {store.statistics()}")

    extra, _ = make_events(2000, seed=2)
    live = EventStore(capacity=1000)
    live.load(events)
    _, wall, cpu = timed(lambda: [live.add(event) for event in extra])
    print(
        f"add: {len(extra)} live events one by one into {len(events)} (capacity 1000, evicting): "
        f"{len(extra) / wall:,.0f} /s wall, {len(extra) / cpu:,.0f} /s cpu"
    )

    viewer = pubkeys[0]
    busy = max(pubkeys, key=lambda pk: len(store.query([Filter(authors=[pk])])))
    mentioner = max(pubkeys[1:], key=lambda pk: store.count([Filter(authors=[pk], tags={"p": [viewer]})]))
    popular = max(
        (e for e in events if e.kind == 1), key=lambda n: store.count([Filter(kinds=[7], tags={"e": [n.id]})])
    )
    follows = pubkeys[1:101]
    now = END

    def sent(filters: list[Filter]) -> list[bytes]:
        """The wire JSON a REQ with ``filters`` sends, every item cut out of its record."""
        return store.query_json(filters, now=now)[:]

    print("queries, wire JSON as a REQ sends it (now fixed at the window end):")
    rate(
        '{"kinds":[1],"limit":500}',
        lambda: sent([Filter(kinds=[1], limit=500)]),
        args.seconds,
    )
    rate(
        '{"authors":[A],"#p":[viewer]}',
        lambda: sent([Filter(authors=[mentioner], tags={"p": [viewer]})]),
        args.seconds,
    )
    rate(
        '{"authors":[busiest],"#p":[viewer],"limit":500}',
        lambda: sent([Filter(authors=[busy], tags={"p": [viewer]}, limit=500)]),
        args.seconds,
    )
    rate(
        '{"authors":[100 follows],"kinds":[1,6],"limit":500}',
        lambda: sent([Filter(authors=follows, kinds=[1, 6], limit=500)]),
        args.seconds,
    )
    rate(
        '{"#p":[viewer],"kinds":[1,6,7,9735],"limit":100}',
        lambda: sent([Filter(tags={"p": [viewer]}, kinds=[1, 6, 7, 9735], limit=100)]),
        args.seconds,
    )
    rate(
        'COUNT {"#e":[popular note],"kinds":[7]}',
        lambda: store.count([Filter(kinds=[7], tags={"e": [popular.id]})], now=now),
        args.seconds,
    )
    rate(
        '{"limit":500} (full time index)',
        lambda: sent([Filter(limit=500)]),
        args.seconds,
    )
    rate(
        '{"kinds":[1],"limit":500} as Event objects (query)',
        lambda: store.query([Filter(kinds=[1], limit=500)], now=now),
        args.seconds,
    )

    if args.dataset:
        bench_dataset(args.dataset, args.seconds)

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    measured = EventStore()
    measured.load(events)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    json_bytes = sum(len(json) for json in measured.query_json([Filter()]))
    beyond = after - before - json_bytes
    print(
        f"memory: the store holds {(after - before) / 1e6:.1f} MB for {len(measured)} events, "
        f"{json_bytes / 1e6:.1f} MB of it their wire JSON: {beyond / len(measured):,.0f} B/event "
        "beyond the JSON (records, indexes; no Event objects are kept)"
    )


if __name__ == "__main__":
    main()
