"""The bench's data, the same for every relay: seed1, a 20,000-note publishing set, fan-out events,
the query mix, and the answers a NIP-01 relay gives to each query (the reference).

Everything is deterministic: seed1 is relaysim's dataset build (the JSONL ``relaysim serve
--dataset seed1`` serves); the publishing set is relaysim's traffic generator writing new notes
as seed1's authors, one second apart, signed with pinned randomness, and cached in the scratch
folder; the query mix is picked from the data by fixed rules (the most active authors, the
most-reacted notes, ...).

The reference answers come from ``tests/nip01_model.py``, a brute-force NIP-01 model written from
the NIPs and not from relaysim's store, so the bench checks relaysim by the same rule as its peers.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from nip01_model import Limits, Nip01Model, address_of

from relaysim.dataset import cast_for, ensure_built, load_spec, read_jsonl
from relaysim.nostr.event import Event, Keypair, event_from_json, sign_event
from relaysim.traffic.generator import TrafficGenerator
from relaysim.traffic.rates import Rates

__all__ = ["FANOUT_TAG", "Workload", "build_workload"]

#: Fan-out events carry this ``t`` tag; the fan-out subscriptions ask for it, so they get no stored event.
FANOUT_TAG = "relaysim-bench-fanout"
LIMITS = Limits(
    max_subscriptions=200,
    max_limit=5_000,
    default_limit=500,
    max_subid_length=64,
    max_filters=20,
    max_event_tags=2_500,
    max_content_length=102_400,
    max_message_length=262_144,
)


@dataclass(frozen=True)
class Workload:
    seed_path: Path
    seed: list[Event]
    publish: list[Event]
    fanout: list[Event]
    mix: list[dict[str, Any]]  # limit-50 (and ids) filters, asked one at a time
    big: dict[str, Any]  # one large REQ
    at: float  # the "now" the reference answers were computed at


def _publishing_set(seed_path: Path, n: int, scratch: Path, relay_url: str) -> list[Event]:
    digest = hashlib.sha256(seed_path.name.encode() + str(n).encode()).hexdigest()[:12]
    cached = scratch / f"publish-{n}-{digest}.jsonl"
    if cached.is_file():
        return [event_from_json(line, verify=False) for line in cached.read_bytes().splitlines()]
    spec = load_spec("seed1")
    base = spec.window_end + 86_400  # a day after seed1's window, one note a second
    generator = TrafficGenerator(cast_for(spec, relay_url), "bench-publish", Rates({}), base)
    events = [generator.burst("notes", 1, now=base + i)[0] for i in range(n)]
    scratch.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_bytes(b"".join(ev.json + b"\n" for ev in events))
    tmp.rename(cached)
    return events


def _fanout_events(n: int, created_at: int) -> list[Event]:
    key = Keypair(hashlib.sha256(b"relaysim-bench-fanout-key").digest())
    return [
        sign_event(
            key,
            created_at=created_at + i,
            kind=1,
            tags=[["t", FANOUT_TAG]],
            content=f"fan-out {i}",
            aux=hashlib.sha256(b"fanout" + i.to_bytes(4, "big")).digest(),
        )
        for i in range(n)
    ]


def _mix(events: Sequence[Event], viewer: str) -> list[dict[str, Any]]:
    """limit-50 queries of each shape the issue lists, picked from the data by fixed rules."""
    notes = [ev for ev in events if ev.kind == 1]
    by_author = Counter(ev.pubkey for ev in notes).most_common(4)
    reacted = Counter(ev.first_tag_value("e") for ev in events if ev.kind == 7).most_common(3)
    hashtags = Counter(t for ev in events for t in ev.tag_values("t")).most_common(2)
    times = sorted(ev.created_at for ev in notes)
    mid = times[len(times) // 2]
    ids = [ev.id for ev in events[:: max(1, len(events) // 10)]][:10]
    mix: list[dict[str, Any]] = [
        {"kinds": [1], "limit": 50},
        {"kinds": [7], "limit": 50},
        {"kinds": [0], "limit": 50},
        {"kinds": [1, 6], "limit": 50},
    ]
    mix += [{"authors": [a], "limit": 50} for a, _ in by_author[:2]]
    mix += [{"authors": [a], "kinds": [1], "limit": 50} for a, _ in by_author[2:]]
    mix += [{"#e": [e], "limit": 50} for e, _ in reacted if e]
    mix += [{"#p": [viewer], "limit": 50}, {"#p": [viewer], "kinds": [1], "limit": 50}]
    mix += [{"#t": [t], "limit": 50} for t, _ in hashtags]
    mix += [
        {"kinds": [1], "since": mid - 3_600, "until": mid, "limit": 50},
        {"kinds": [7], "since": mid - 86_400, "until": mid + 86_400, "limit": 50},
        {"ids": ids},
    ]
    return mix


class _Reference(Nip01Model):
    """The NIP-01 model with an address index: loading 37,000 events must not scan them per event."""

    def __init__(self) -> None:
        super().__init__(LIMITS)
        self._addresses: dict[str, str] = {}

    def _current(self, address: str) -> Event | None:
        found = self._addresses.get(address)
        return self.stored.get(found) if found is not None else None

    def commit(self, event: Event, outcome: Any) -> None:
        super().commit(event, outcome)
        address = address_of(event)
        if outcome.action == "store" and address is not None:
            self._addresses[address] = event.id


def reference_answers(
    events: Sequence[Event], queries: Sequence[Mapping[str, Any]], now: float
) -> list[list[str]]:
    """The ids a NIP-01 relay holding ``events`` (published in order) answers to each query, in order."""
    model = _Reference()
    for event in events:
        model.commit(event, model.outcome(event, now))
    return [[ev.id for ev in model.query([dict(q)], now)] for q in queries]


def build_workload(scratch: Path, relay_url: str, *, publish: int, fanout: int, big_limit: int) -> Workload:
    seed_path = ensure_built("seed1", relay_url)
    seed = read_jsonl(seed_path, verify=False).events
    published = _publishing_set(seed_path, publish, scratch, relay_url)
    spec = load_spec("seed1")
    fan = _fanout_events(fanout, spec.window_end + 86_400 + publish + 10)
    viewer = Counter(v for ev in seed for v in ev.tag_values("p")).most_common(1)[0][0]
    return Workload(
        seed_path=seed_path,
        seed=seed,
        publish=published,
        fanout=fan,
        mix=_mix(seed, viewer),
        big={"kinds": [1], "limit": big_limit},
        at=0.0,
    )


def dump_event(event: Event) -> bytes:
    return orjson.dumps(["EVENT", event.to_dict()])
