"""Flat under load: a relay whose store is at its cap, churned by simulated clients; RSS over time.

Run: ``python bench/bench_relay_flat.py [--minutes 60] [--cap 100000] [--every 60] [--turnover 1]``

1. ``relaysim serve --dataset seed1 --max-events CAP`` in its own process; live clients publish
   signed events until the store evicts (it holds CAP live events besides the pinned dataset),
   then ``--turnover`` x CAP more at full speed, so every live event has been replaced once and
   the C heap is in the layout churn keeps it in (without it RSS climbs ~6% over the first
   turnover, ~25 minutes of the load below, and then holds);
2. for ``--minutes``: ``--publishers`` clients publish ``--rate`` events/s in all (notes, replies,
   reactions, reposts, profile updates, deletions, expiring and ephemeral events; every eviction,
   replacement and deletion path of the store runs), each reconnecting every 30-120 s; and
   ``--subscribers`` clients each connect, open 1-4 REQs (timelines, mentions, threads, ids,
   profiles, limit 0 live-only), read to EOSE, receive live events for 0.5-6 s, CLOSE some,
   re-REQ (1-4 rounds), then leave (CLOSE + close frame, or a TCP drop with nothing said) and reconnect;
3. RSS every ``--every`` seconds, then the growth from the end of the first minute of load (the
   connections', queries' and allocator's working set is in place by then) and from the moment the
   cap was reached, and a least-squares slope in MB/hour. The issue's target: < 5% growth.

Every loop is bounded by the run's deadline. Linux only (/proc). The figures are the relay
process's; the clients run in this process and cost it nothing.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store_memory import MB, LiveEvents, RelayProcess, fill_to_cap, publish_spread, settled_rss
from relay_client import WsClient, connect

from relaysim.nostr import Event
from relaysim.nostr.messages import encode_client_event, encode_close, encode_req


@dataclass
class Load:
    """What the simulated clients share and count."""

    deadline: float
    source: LiveEvents
    rng: random.Random
    recent: list[Event] = field(default_factory=list)
    published: int = 0
    accepted: int = 0
    reqs: int = 0
    events_received: int = 0
    sessions: int = 0
    drops: int = 0
    errors: int = 0

    def left(self) -> float:
        return self.deadline - time.monotonic()


# ------------------------------------------------------------------------------------ publishers


async def publisher(url: str, load: Load, rate: float, rng: random.Random) -> None:
    """Publish about ``rate`` events/s until the deadline, on a connection renewed every 30-120 s."""
    while load.left() > 0:
        try:
            client = await connect(url)
        except OSError:
            load.errors += 1
            await trio.sleep(1)
            continue
        renew = time.monotonic() + rng.uniform(30, 120)
        try:
            while load.left() > 0 and time.monotonic() < renew:
                t0 = time.monotonic()
                n = max(1, round(rate + rng.uniform(-0.3, 0.3) * rate))
                events = load.source.batch(n)
                for event in events:
                    client.proto.send_text(encode_client_event(event))
                await client._flush()
                for _ in events:
                    while not (msg := await client.recv()).startswith(b'["OK"'):
                        pass
                    load.accepted += msg.split(b",")[2] == b"true"
                load.published += len(events)
                load.recent.extend(e for e in events if e.kind == 1)
                del load.recent[:-300]
                await trio.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
        except (ConnectionError, trio.BrokenResourceError, OSError):
            load.errors += 1
        finally:
            with trio.move_on_after(3):
                await client.close()


# ------------------------------------------------------------------------------------ subscribers


def some_filter(load: Load, rng: random.Random) -> dict:
    """One REQ filter of the kinds a feed client sends."""
    authors = load.source.pubkeys
    roll = rng.random()
    if roll < 0.2:
        return {"kinds": [1], "limit": rng.choice([50, 200, 500])}
    if roll < 0.4:
        return {"authors": rng.sample(authors, rng.randint(3, 20)), "kinds": [1, 6], "limit": 200}
    if roll < 0.55:
        return {"#p": [rng.choice(authors)], "kinds": [1, 6, 7], "limit": 100}
    if roll < 0.65 and load.recent:
        return {"#e": [rng.choice(load.recent).id], "kinds": [1, 7]}
    if roll < 0.75 and load.recent:
        return {"ids": [e.id for e in rng.sample(load.recent, min(len(load.recent), 10))]}
    if roll < 0.85:
        return {"kinds": [0], "authors": rng.sample(authors, 10)}
    return {"kinds": [1, 6, 7], "since": int(time.time()) - 5, "limit": 0}


async def read_until_eose(client: WsClient, load: Load, sub_ids: set[str]) -> None:
    waiting = set(sub_ids)
    while waiting:
        msg = await client.recv()
        if msg.startswith(b'["EVENT"'):
            load.events_received += 1
        elif msg.startswith(b'["EOSE"'):
            waiting.discard(msg[9:].split(b'"', 1)[0].decode())


async def read_for(client: WsClient, load: Load, seconds: float) -> None:
    """Receive live events for ``seconds`` (a client that keeps reading is never a slow one)."""
    with trio.move_on_after(seconds):
        while True:
            msg = await client.recv()
            load.events_received += msg.startswith(b'["EVENT"')


async def subscriber(url: str, load: Load, rng: random.Random) -> None:
    while load.left() > 1:
        try:
            client = await connect(url)
        except OSError:
            load.errors += 1
            await trio.sleep(1)
            continue
        load.sessions += 1
        drop = rng.random() < 0.3
        try:
            with trio.move_on_after(max(0.0, load.left())):
                for round_ in range(rng.randint(1, 4)):
                    subs = {f"s{round_}-{i}": some_filter(load, rng) for i in range(rng.randint(1, 4))}
                    for sub_id, flt in subs.items():
                        client.proto.send_text(encode_req(sub_id, flt))
                    load.reqs += len(subs)
                    await client._flush()
                    await read_until_eose(client, load, set(subs))
                    await read_for(client, load, rng.uniform(0.5, 6))
                    if not drop or round_ == 0:
                        for sub_id in rng.sample(sorted(subs), rng.randint(0, len(subs))):
                            client.proto.send_text(encode_close(sub_id))
                        await client._flush()
        except (ConnectionError, trio.BrokenResourceError, OSError):
            load.errors += 1
        finally:
            if drop:
                load.drops += 1
                await client.stream.aclose()  # TCP gone, no CLOSE, no close frame
            else:
                with trio.move_on_after(3):
                    await client.close()
        await trio.sleep(rng.uniform(0.1, 1.0))


# ------------------------------------------------------------------------------------ the run


@dataclass
class Sample:
    t: float
    rss: int


def slope_mb_per_hour(samples: list[Sample]) -> float:
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(s.t for s in samples) / n
    mean_r = sum(s.rss for s in samples) / n
    var = sum((s.t - mean_t) ** 2 for s in samples)
    cov = sum((s.t - mean_t) * (s.rss - mean_r) for s in samples)
    return (cov / var) * 3600 / MB if var else 0.0


async def sampler(relay: RelayProcess, load: Load, every: float, start: float, samples: list[Sample]) -> None:
    while True:
        t = time.monotonic() - start
        rss = relay.rss()
        samples.append(Sample(t, rss))
        doc = await relay.stats()
        totals, store = doc["totals"], doc["store"]
        print(
            f"{t / 60:6.1f} min  RSS {rss / MB:7.1f} MB  "
            f"stored {store['events']:,} (evicted {store['evicted']:,})  "
            f"conns {totals['connections_open']:3}  subs {totals['subscriptions_active']:3}  "
            f"published {load.published:,}  REQs {load.reqs:,}  events received {load.events_received:,}  "
            f"sessions {load.sessions:,} (dropped {load.drops:,})  relay CPU {relay.cpu_seconds():.0f} s",
            flush=True,
        )
        if load.left() <= 0:
            return
        await trio.sleep(min(every, max(0.5, load.left())))


async def turn_over(relay: RelayProcess, n: int, source: LiveEvents, *, clients: int = 4) -> None:
    """Publish ``n`` more events at full speed: the store at its cap evicts as many.

    Why: until every stored event has been replaced once, the C heap has not reached the layout
    churn keeps it in (records freed in FIFO order, new ones placed in the holes): RSS climbs for
    one turnover of the store (~25 min at the load's 75 events/s), then holds. A turnover before
    the clock starts measures the hour, not the allocator settling.
    """
    chunk = 20_000
    for start in range(0, n, chunk):
        events = source.batch(min(chunk, n - start))
        await publish_spread(relay.url, events, clients)
        store = (await relay.stats())["store"]
        print(
            f"  turning over: {start + len(events):,} of {n:,} published, {store['evicted']:,} evicted, "
            f"RSS {relay.rss() / MB:.0f} MB",
            file=sys.stderr,
            flush=True,
        )


async def run(args: argparse.Namespace, relay: RelayProcess) -> None:
    source = LiveEvents(seed=args.seed)
    t0 = time.perf_counter()
    doc = await fill_to_cap(relay, args.cap, source)
    cap_rss = await settled_rss(relay, 3.0)
    store = doc["store"]
    print(
        f"at the cap after {time.perf_counter() - t0:.0f} s: {store['events']:,} events "
        f"({store['pinned']:,} pinned + {store['capacity']:,} live), RSS {cap_rss / MB:.1f} MB",
        flush=True,
    )
    turned_rss = cap_rss
    if args.turnover > 0:
        await turn_over(relay, round(args.turnover * args.cap), source)
        turned_rss = await settled_rss(relay, 3.0)
        print(
            f"store turned over {args.turnover:g}x in {time.perf_counter() - t0:.0f} s: "
            f"RSS {turned_rss / MB:.1f} MB",
            flush=True,
        )
    load = Load(time.monotonic() + args.minutes * 60, source, random.Random(args.seed))
    samples: list[Sample] = []
    start = time.monotonic()
    async with trio.open_nursery() as nursery:
        for i in range(args.publishers):
            nursery.start_soon(publisher, relay.url, load, args.rate / args.publishers, random.Random(i))
        for i in range(args.subscribers):
            nursery.start_soon(subscriber, relay.url, load, random.Random(1000 + i))
        nursery.start_soon(sampler, relay, load, args.every, start, samples)
    end_rss = await settled_rss(relay, 3.0)
    warm = [s for s in samples if s.t >= 60] or samples
    first = warm[0].rss
    last = samples[-1].rss
    peak = max(s.rss for s in samples)
    print(
        f"load for {args.minutes:g} min: {load.published:,} published ({load.accepted:,} OK true), "
        f"{load.reqs:,} REQs, {load.sessions:,} subscriber sessions ({load.drops:,} dropped without a word), "
        f"{load.errors} client errors"
    )
    print(
        f"RSS: {cap_rss / MB:.1f} MB at the cap, {first / MB:.1f} MB after the first minute of load, "
        f"peak {peak / MB:.1f} MB, {last / MB:.1f} MB at the end "
        f"({end_rss / MB:.1f} MB once the clients left)"
    )
    print(
        f"growth after the first minute: {(last - first) / first * 100:+.1f}% "
        f"(peak {(peak - first) / first * 100:+.1f}%); since the cap was reached: "
        f"{(last - cap_rss) / cap_rss * 100:+.1f}%; since the store turned over: "
        f"{(last - turned_rss) / turned_rss * 100:+.1f}%; slope {slope_mb_per_hour(warm):+.1f} MB/hour "
        "(target: < 5% growth)"
    )


async def run_until_terminated(args: argparse.Namespace, relay: RelayProcess) -> None:
    """:func:`run`, stopped cleanly by SIGTERM (an hour-long bench gets killed; its relay must go too)."""
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def on_term() -> None:
                async for _ in signals:
                    print("bench_relay_flat: SIGTERM: stopping the relay", file=sys.stderr, flush=True)
                    nursery.cancel_scope.cancel()

            nursery.start_soon(on_term)
            await run(args, relay)
            nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=60.0, help="load duration (default 60)")
    parser.add_argument("--cap", type=int, default=100_000, help="the relay's --max-events (default 100000)")
    parser.add_argument("--dataset", default="seed1")
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=75.0, help="events/s published in all (default 75)")
    parser.add_argument("--subscribers", type=int, default=16)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between RSS lines (default 60)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--turnover",
        type=float,
        default=1.0,
        help="replace the store's live events this many times at full speed before the clock (default 1)",
    )
    args = parser.parse_args()
    relay = RelayProcess("--dataset", args.dataset, "--max-events", str(args.cap))
    try:
        print(f"relay pid {relay.pid}: {relay.ready_line}", flush=True)
        trio.run(run_until_terminated, args, relay)
    finally:
        relay.stop()


if __name__ == "__main__":
    main()
