"""Tests of relaysim.store against real signed events.

The property test drives :class:`EventStore` and a brute-force model written here from the NIP
text (a list of live events, sorted and filtered in full for every question) with the same
sequences of loads and adds, and compares every answer. The model derives deletion tombstones
from the kind-5 events it currently holds instead of keeping side tables, so it is an
independent formulation of the store's rules, not a copy of its code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.errors import UsageError
from relaysim.nostr import Event, pubkey_of, sign_event
from relaysim.nostr.filter import Filter
from relaysim.store import MSG_DELETED, MSG_DUPLICATE, MSG_HAVE_NEWER, EventStore, _store, sort_key
from relaysim.store._record import decode, is_pinned, raw_id_of, wire
from relaysim.store._rules import deletion_targets

AUX = bytes(32)
SECRETS = [(i + 1).to_bytes(32, "big") for i in range(3)]
PUBKEYS = [pubkey_of(secret) for secret in SECRETS]
T0 = 1_700_000_000


def sign(secret: bytes, created_at: int, kind: int, tags=(), content: str = "") -> Event:
    return sign_event(secret, created_at=created_at, kind=kind, tags=tags, content=content, aux=AUX)


# ---------------------------------------------------------------------------------------- pool


def _build_pool() -> list[Event]:
    """About 80 real signed events from three keys, created_at clustered so ties are common.

    Deletions mostly name their own author's events so that sampled sequences often contain a
    deletion together with its target (in either order).
    """
    rng = random.Random(20261126)
    pool: list[Event] = []
    times = [100, 101, 101, 102, 102, 102, 103]

    def t() -> int:
        return rng.choice(times)

    for a, secret in enumerate(SECRETS):
        other = PUBKEYS[(a + 1) % 3]
        for n in range(8):
            tags: list[list[str]] = []
            if rng.random() < 0.5:
                tags.append(["p", rng.choice(PUBKEYS)])
            if rng.random() < 0.3:
                # Only tag[1] is indexed: the pubkey in position 2 must never match #p.
                tags.append(["p", other, PUBKEYS[a]])
            if rng.random() < 0.4:
                tags.append(["t", rng.choice(["nostr", "bench", "x"])])
            if pool and rng.random() < 0.4:
                tags.append(["e", rng.choice(pool).id])
            if rng.random() < 0.2:
                tags.append(["expiration", rng.choice(["102", "200", "bogus", " 102", "1_0"])])
            pool.append(sign(secret, t(), 1, tags, f"note {a}.{n}"))
        for n in range(4):
            pool.append(sign(secret, t(), 0, [], f'{{"name":"user{a} v{n}"}}'))
        for n in range(2):
            pool.append(sign(secret, t(), 10002, [["r", "ws://127.0.0.1:7447/"]], str(n)))
        for d in ("a", "a", "b", ""):
            pool.append(sign(secret, t(), 30023, [["d", d]], f"article {d} {rng.random()}"))
        pool.append(sign(secret, t(), 30023, [], "no d tag at all"))
        for _ in range(2):
            target = rng.choice(pool)
            pool.append(sign(secret, t(), 7, [["e", target.id], ["p", target.pubkey]], "+"))
        pool.append(sign(secret, t(), 20001, [["p", other]], "ephemeral"))
    first_deletions = []
    for secret in SECRETS:
        own = [e for e in pool if e.pubkey == pubkey_of(secret) and e.kind != 20001]
        for _ in range(4):
            tags = [
                ["e", rng.choice(own if rng.random() < 0.7 else pool).id] for _ in range(rng.randint(1, 3))
            ]
            if rng.random() < 0.6:
                owner = pubkey_of(secret) if rng.random() < 0.7 else rng.choice(PUBKEYS)
                tags.append(["a", rng.choice([f"30023:{owner}:a", f"30023:{owner}:", f"0:{owner}:"])])
            first_deletions.append(sign(secret, t(), 5, tags, "delete"))
    pool.extend(first_deletions)
    for secret in SECRETS:
        # Deleting a deletion has no effect (NIP-09).
        pool.append(sign(secret, t(), 5, [["e", rng.choice(first_deletions).id]], "undelete?"))
    return pool


POOL = _build_pool()
POOL_IDS = sorted(event.id for event in POOL)
TAG_VALUES = {
    "p": sorted(PUBKEYS),
    "e": POOL_IDS,
    "t": ["nostr", "bench", "x", "absent"],
    "d": ["a", "b", "", "c"],
}
KINDS = [*sorted({event.kind for event in POOL}), 42]


# ---------------------------------------------------------------------------------------- model


def _address(event: Event) -> str | None:
    if event.kind in (0, 3) or 10000 <= event.kind < 20000:
        return f"{event.kind}:{event.pubkey}:"
    if 30000 <= event.kind < 40000:
        d = next((tag[1] for tag in event.tags if len(tag) >= 2 and tag[0] == "d"), "")
        return f"{event.kind}:{event.pubkey}:{d}"
    return None


def _expired(event: Event, now: float) -> bool:
    for tag in event.tags:
        if len(tag) >= 2 and tag[0] == "expiration":
            # NIP-40: a unix timestamp; anything but plain digits is no expiration at all.
            value = tag[1]
            return value.isascii() and value.isdigit() and int(value) <= now
    return False


def _deletes(deletion: Event, target: Event) -> bool:
    """NIP-09 read literally: same author, not a deletion, named by e, or by a up to its time."""
    if deletion.kind != 5 or target.kind == 5 or deletion.pubkey != target.pubkey:
        return False
    for tag in deletion.tags:
        if len(tag) < 2:
            continue
        if tag[0] == "e" and tag[1] == target.id:
            return True
        if tag[0] == "a" and tag[1] == _address(target) and target.created_at <= deletion.created_at:
            return True
    return False


def _newest_first(event: Event) -> tuple[int, str]:
    return (-event.created_at, event.id)


def _matches(flt: Filter, event: Event) -> bool:
    if flt.ids is not None and event.id not in flt.ids:
        return False
    if flt.authors is not None and event.pubkey not in flt.authors:
        return False
    if flt.kinds is not None and event.kind not in flt.kinds:
        return False
    if flt.since is not None and event.created_at < flt.since:
        return False
    if flt.until is not None and event.created_at > flt.until:
        return False
    for name, values in flt.tags.items():
        if not any(len(tag) >= 2 and tag[0] == name and tag[1] in values for tag in event.tags):
            return False
    return True


@dataclass
class Model:
    capacity: int | None = None
    events: dict[str, Event] = field(default_factory=dict)  # insertion order
    pinned: set[str] = field(default_factory=set)

    def add(self, event: Event, pinned: bool) -> tuple[bool, str, set[str], set[str]]:
        if 20000 <= event.kind < 30000:
            return False, "", set(), set()
        if event.id in self.events:
            return False, MSG_DUPLICATE, set(), set()
        if any(_deletes(d, event) for d in self.events.values()):
            return False, MSG_DELETED, set(), set()
        replaced = set()
        address = _address(event)
        if address is not None:
            for old in list(self.events.values()):
                if _address(old) == address:
                    if _newest_first(old) < _newest_first(event):
                        return False, MSG_HAVE_NEWER, set(), set()
                    replaced.add(old.id)
                    del self.events[old.id]  # keep its pin in self.pinned until the new one takes it
        self.events[event.id] = event
        if pinned or replaced & self.pinned:
            self.pinned.add(event.id)
        self.pinned -= replaced
        deleted = {old.id for old in self.events.values() if _deletes(event, old)}
        for event_id in deleted:
            self._drop(event_id)
        if self.capacity is not None:
            while True:
                unpinned = [event_id for event_id in self.events if event_id not in self.pinned]
                if len(unpinned) <= self.capacity:
                    break
                self._drop(unpinned[0])
        return True, "", replaced, deleted

    def _drop(self, event_id: str) -> None:
        del self.events[event_id]
        self.pinned.discard(event_id)

    def query(self, filters, now, default_limit=None, max_limit=None) -> list[Event]:
        live = sorted((e for e in self.events.values() if not _expired(e, now)), key=_newest_first)
        chosen: dict[str, Event] = {}
        for flt in filters:
            limit = flt.limit if flt.limit is not None else default_limit
            if max_limit is not None:
                limit = max_limit if limit is None else min(limit, max_limit)
            hits = [e for e in live if _matches(flt, e)]
            for event in hits if limit is None else hits[:limit]:
                chosen[event.id] = event
        return sorted(chosen.values(), key=_newest_first)


def by_id(store: EventStore) -> dict[bytes, bytes]:
    """The id index's shards as one dict (white-box)."""
    merged = {raw: record for shard in store._by_id for raw, record in shard.items()}
    assert len(merged) == len(store)
    return merged


def check_indexes(store: EventStore) -> None:
    """White-box: every index list is sorted and holds exactly the stored events' records."""
    records = list(by_id(store).values())
    events = {record: decode(record) for record in records}
    for raw, record in by_id(store).items():
        event = events[record]
        assert raw == bytes.fromhex(event.id) == raw_id_of(record)
        assert record in store._by_id[raw[0]].values()
        # The record is the header and the event's own wire JSON, nothing re-encoded.
        assert record[:40] == sort_key(event) and wire(record) == orjson.dumps(event.to_dict())
    assert store._time == sorted(records)
    expected: dict[str, dict] = {"author": {}, "kind": {}, "author_kind": {}}
    tags: dict[str, dict] = {}
    for record, e in events.items():
        expected["author"].setdefault(e.pubkey, []).append(record)
        expected["kind"].setdefault(e.kind, []).append(record)
        expected["author_kind"].setdefault((e.pubkey, e.kind), []).append(record)
        indexed = {(t[0], t[1]) for t in e.tags if len(t) >= 2 and len(t[0]) == 1 and t[0].isalpha()}
        for name, value in indexed:
            tags.setdefault(name, {}).setdefault(value, []).append(record)
    for name, index in expected.items():
        assert getattr(store, "_" + name) == {entry: sorted(rs) for entry, rs in index.items()}, name
    assert store._tag == {name: {v: sorted(rs) for v, rs in values.items()} for name, values in tags.items()}
    assert set(store._latest.values()) == {r for r, e in events.items() if _address(e) is not None}
    pinned = [r for r in records if is_pinned(r)]
    unpinned = [r for r in records if not is_pinned(r)]
    assert (store._pinned, store._unpinned) == (len(pinned), len(unpinned))
    # The eviction queue holds every unpinned record in insertion order, plus a bounded few that left.
    live_in_queue = [r for r in store._fifo if by_id(store).get(raw_id_of(r)) is r]
    assert sorted(live_in_queue) == sorted(unpinned) and len(set(map(id, live_in_queue))) == len(unpinned)
    assert len(store._fifo) <= len(unpinned) + max(_store._FIFO_SLACK, len(unpinned) // 4)
    assert store._expiry_order == sorted((expiration, r) for r, expiration in store._expiry.items())
    # Tombstones are exactly those of the kind-5 events still stored.
    tomb_ids: dict = {}
    tomb_addresses: dict = {}
    for e in events.values():
        if e.kind == 5:
            ids, addresses = deletion_targets(e)
            for target in ids:
                tomb_ids[(target, e.pubkey)] = tomb_ids.get((target, e.pubkey), 0) + 1
            for address in addresses:
                tomb_addresses.setdefault(address, {})[e.id] = e.created_at
    assert store._tomb_ids == tomb_ids
    assert store._tomb_addresses == tomb_addresses


# ---------------------------------------------------------------------------------------- property


def _set(values: list) -> st.SearchStrategy:
    # None twice: most filters leave most fields out, as real ones do.
    return st.none() | st.none() | st.frozensets(st.sampled_from(values), max_size=3)


filters_st = st.builds(
    Filter,
    ids=st.none() | st.none() | st.none() | st.frozensets(st.sampled_from(POOL_IDS), max_size=12),
    authors=_set(PUBKEYS),
    kinds=_set(KINDS),
    tags=st.lists(
        st.sampled_from(sorted(TAG_VALUES)).flatmap(
            lambda name: st.tuples(
                st.just(name), st.frozensets(st.sampled_from(TAG_VALUES[name]), min_size=1, max_size=3)
            )
        ),
        max_size=2,
    ).map(dict),
    since=st.none() | st.integers(99, 104),
    until=st.none() | st.integers(99, 104),
    limit=st.none() | st.integers(0, 8),
)


# A prefix of a shuffled pool (so deletions meet their targets in both orders) plus repeats.
sequences_st = st.tuples(
    st.permutations(range(len(POOL))),
    st.integers(5, len(POOL)),
    st.lists(st.integers(0, len(POOL) - 1), max_size=10),
).map(lambda t: list(t[0][: t[1]]) + t[2])


@settings(max_examples=250)
@given(
    sequence=sequences_st,
    split=st.integers(0, 100),
    pin=st.booleans(),
    capacity=st.none() | st.integers(1, 12),
    queries=st.lists(st.lists(filters_st, min_size=1, max_size=3), min_size=1, max_size=4),
    now=st.sampled_from([50, 102, 150, 300]),
    default_limit=st.none() | st.integers(1, 5),
    max_limit=st.none() | st.integers(1, 6),
)
def test_store_agrees_with_brute_force_model(
    sequence, split, pin, capacity, queries, now, default_limit, max_limit
):
    store = EventStore(capacity=capacity)
    model = Model(capacity=capacity)
    loaded = [POOL[i] for i in sequence[:split]]
    added = [POOL[i] for i in sequence[split:]]
    result = store.load(loaded, pinned=pin)
    stored = sum(model.add(event, pinned=pin)[0] for event in loaded)
    assert result.stored == stored
    for event in added:
        got = store.add(event)
        want_stored, want_message, want_replaced, want_deleted = model.add(event, pinned=False)
        assert (got.stored, got.message) == (want_stored, want_message), event.to_dict()
        assert set(got.replaced) == want_replaced
        assert set(got.deleted) == want_deleted
        assert got.duplicate == (want_message == MSG_DUPLICATE)
    assert len(store) == len(model.events)
    assert {e.id for e in store} == set(model.events)
    check_indexes(store)
    for filters in queries:
        want = model.query(filters, now, default_limit, max_limit)
        got = store.query(filters, now=now, default_limit=default_limit, max_limit=max_limit)
        assert [e.id for e in got] == [e.id for e in want], [f.to_dict() for f in filters]
        assert got == want  # every field decoded back exactly
        wire_json = store.query_json(filters, now=now, default_limit=default_limit, max_limit=max_limit)
        assert wire_json == [e.json for e in want]
        unlimited = [Filter(f.ids, f.authors, f.kinds, f.tags, f.since, f.until) for f in filters]
        assert store.count(filters, now=now) == len(model.query(unlimited, now))
    # A store built from a snapshot holds the same and answers the same, sharing the records.
    copy = EventStore.from_snapshot(store.snapshot(), capacity=capacity)
    check_indexes(copy)
    assert copy.statistics() == store.statistics()
    assert all(by_id(copy)[raw] is record for raw, record in by_id(store).items())
    for filters in queries:
        assert copy.query_json(filters, now=now) == store.query_json(filters, now=now)


# ---------------------------------------------------------------------------------------- rules

ALICE, BOB = SECRETS[0], SECRETS[1]
ALICE_PK, BOB_PK = PUBKEYS[0], PUBKEYS[1]


def test_order_is_newest_first_then_lowest_id():
    store = EventStore()
    events = [sign(ALICE, T0 + i % 2, 1, content=str(i)) for i in range(8)]
    store.load(events)
    got = store.query([Filter(kinds=[1])])
    assert [e.id for e in got] == [e.id for e in sorted(events, key=lambda e: (-e.created_at, e.id))]
    assert [e.id for e in store.query([Filter(limit=3)])] == [e.id for e in got[:3]]


def test_since_and_until_are_inclusive():
    store = EventStore()
    store.load(sign(ALICE, T0 + i, 1, content=str(i)) for i in range(5))
    got = store.query([Filter(since=T0 + 1, until=T0 + 3)])
    assert [e.created_at for e in got] == [T0 + 3, T0 + 2, T0 + 1]


def test_duplicate_is_reported_and_ok():
    store = EventStore()
    note = sign(ALICE, T0, 1, content="hi")
    assert store.add(note).stored
    again = store.add(note)
    assert (again.stored, again.duplicate, again.message, again.ok) == (False, True, MSG_DUPLICATE, True)
    assert MSG_DUPLICATE == "duplicate: already have this event"


def test_replaceable_keeps_latest_and_refuses_older():
    store = EventStore()
    old = sign(ALICE, T0, 0, content="old")
    new = sign(ALICE, T0 + 1, 0, content="new")
    assert store.add(old).stored
    result = store.add(new)
    assert result.stored and result.replaced == (old.id,)
    refused = store.add(old)
    assert (refused.stored, refused.duplicate, refused.message) == (False, False, MSG_HAVE_NEWER)
    assert refused.message == "duplicate: have a newer version of this event"
    assert refused.ok
    assert [e.id for e in store.query([Filter(kinds=[0], authors=[ALICE_PK])])] == [new.id]
    assert store.get(old.id) is None


@pytest.mark.parametrize("lower_first", [True, False])
def test_replaceable_tie_keeps_lowest_id(lower_first):
    a, b = sign(ALICE, T0, 3, content="a"), sign(ALICE, T0, 3, content="b")
    low, high = sorted([a, b], key=lambda e: e.id)
    store = EventStore()
    first, second = (low, high) if lower_first else (high, low)
    store.add(first)
    result = store.add(second)
    if lower_first:
        assert result.message == MSG_HAVE_NEWER
    else:
        assert result.stored and result.replaced == (high.id,)
    assert [e.id for e in store.query([Filter(kinds=[3])])] == [low.id]


def test_addressable_is_keyed_by_d_tag():
    store = EventStore()
    a1 = sign(ALICE, T0, 30023, [["d", "x"]], "x1")
    a2 = sign(ALICE, T0 + 1, 30023, [["d", "x"]], "x2")
    b1 = sign(ALICE, T0, 30023, [["d", "y"]], "y1")
    bare = sign(ALICE, T0, 30023, [], "no d")
    empty = sign(ALICE, T0 + 1, 30023, [["d", ""]], "empty d")
    other = sign(BOB, T0, 30023, [["d", "x"]], "bob's x")
    for event in (a1, b1, bare, other):
        assert store.add(event).stored
    assert store.add(a2).replaced == (a1.id,)
    assert store.add(empty).replaced == (bare.id,)  # a missing d tag is the same address as d=""
    assert {e.id for e in store.query([Filter(kinds=[30023])])} == {a2.id, b1.id, empty.id, other.id}


def test_deletion_by_id_removes_own_event_only_and_is_served():
    store = EventStore()
    mine = sign(ALICE, T0, 1, content="mine")
    theirs = sign(BOB, T0, 1, content="theirs")
    store.load([mine, theirs])
    deletion = sign(ALICE, T0 + 5, 5, [["e", mine.id], ["e", theirs.id], ["k", "1"]], "oops")
    result = store.add(deletion)
    assert result.stored and result.deleted == (mine.id,)
    assert [e.id for e in store.query([Filter()])] == [deletion.id, theirs.id]
    refused = store.add(mine)
    assert (refused.stored, refused.message, refused.ok) == (False, MSG_DELETED, False)
    assert refused.message == "blocked: this event was deleted"


def test_deletion_before_target_blocks_the_target():
    store = EventStore()
    target = sign(ALICE, T0, 1, content="late")
    assert store.add(sign(ALICE, T0 + 1, 5, [["e", target.id]])).stored
    assert store.add(target).message == MSG_DELETED
    # A deletion naming someone else's event blocks nothing.
    bobs = sign(BOB, T0, 1, content="bob")
    store.add(sign(ALICE, T0 + 1, 5, [["e", bobs.id]]))
    assert store.add(bobs).stored


def test_deleting_a_deletion_has_no_effect():
    store = EventStore()
    note = sign(ALICE, T0, 1, content="n")
    first = sign(ALICE, T0 + 1, 5, [["e", note.id]])
    second = sign(ALICE, T0 + 2, 5, [["e", first.id]])
    store.load([note, first, second])
    assert {e.id for e in store.query([Filter(kinds=[5])])} == {first.id, second.id}
    assert store.get(note.id) is None


def test_deletion_by_address_up_to_its_created_at():
    store = EventStore()
    old = sign(ALICE, T0, 30023, [["d", "x"]], "old")
    store.add(old)
    deletion = sign(ALICE, T0 + 10, 5, [["a", f"30023:{ALICE_PK}:x"]])
    assert store.add(deletion).deleted == (old.id,)
    assert store.add(sign(ALICE, T0 + 10, 30023, [["d", "x"]], "same second")).message == MSG_DELETED
    newer = sign(ALICE, T0 + 11, 30023, [["d", "x"]], "newer")
    assert store.add(newer).stored
    # Another author's address is untouched; so is another d value.
    bobs = sign(BOB, T0, 30023, [["d", "x"]], "bob")
    other_d = sign(ALICE, T0, 30023, [["d", "y"]], "y")
    store.load([bobs, other_d])
    store.add(sign(ALICE, T0 + 20, 5, [["a", f"30023:{BOB_PK}:x"]]))
    assert store.get(bobs.id) is not None and store.get(other_d.id) is not None


def test_replaceable_address_deletion():
    store = EventStore()
    profile = sign(ALICE, T0, 0, content="{}")
    store.add(profile)
    assert store.add(sign(ALICE, T0 + 1, 5, [["a", f"0:{ALICE_PK}:"]])).deleted == (profile.id,)
    assert store.query([Filter(kinds=[0])]) == []


def test_expired_events_are_stored_but_never_served():
    store = EventStore()
    expiring = sign(ALICE, T0, 1, [["expiration", str(T0 + 100)]], "soon gone")
    forever = sign(ALICE, T0, 1, [], "stays")
    assert store.add(expiring).stored
    store.add(forever)
    assert len(store) == 2
    assert {e.id for e in store.query([Filter()], now=T0 + 99)} == {expiring.id, forever.id}
    assert [e.id for e in store.query([Filter()], now=T0 + 100)] == [forever.id]
    assert store.count([Filter(kinds=[1])], now=T0 + 100) == 1
    assert store.count([Filter(kinds=[1])], now=T0) == 2
    assert store.purge_expired(now=T0 + 100) == 1
    assert len(store) == 1 and store.statistics()["purged"] == 1


def test_ephemeral_is_never_stored():
    store = EventStore()
    result = store.add(sign(ALICE, T0, 20001, content="typing"))
    assert (result.stored, result.duplicate, result.message, result.ok, result.broadcast) == (
        False,
        False,
        "",
        True,
        True,
    )
    assert len(store) == 0


def test_limits_per_filter_or_without_duplicates():
    store = EventStore()
    notes = [sign(ALICE, T0 + i, 1, [["t", "a" if i % 2 else "b"]], str(i)) for i in range(10)]
    store.load(notes)
    newest = sorted(notes, key=lambda e: -e.created_at)
    got = store.query([Filter(tags={"t": ["b"]}, limit=2), Filter(authors=[ALICE_PK], limit=3)])
    # Filter 1: the two newest "b" (8, 6); filter 2: the three newest overall; merged, deduplicated.
    assert [e.created_at - T0 for e in got] == [9, 8, 7, 6]
    assert store.query([Filter(kinds=[1], limit=0)]) == []
    assert len(store.query([Filter()], default_limit=4)) == 4
    assert len(store.query([Filter(limit=9)], max_limit=5)) == 5
    assert len(store.query([Filter()], max_limit=6)) == 6
    assert [e.id for e in store.query(Filter(limit=1))] == [newest[0].id]


def test_tag_index_uses_first_value_only():
    store = EventStore()
    note = sign(ALICE, T0, 1, [["p", BOB_PK, ALICE_PK]])
    store.add(note)
    assert store.query([Filter(tags={"p": [BOB_PK]})]) == [note]
    assert store.query([Filter(tags={"p": [ALICE_PK]})]) == []


def test_stored_event_comes_back_byte_for_byte():
    store = EventStore()
    tricky = sign(ALICE, T0, 1, [["t", "ünï"], ["e", "x" * 3, "", "reply"], []], 'quote " \\ \n \u2028 😀')
    plain = sign(BOB, T0 + 1, 30023, [["d", "a:b"]], "x")
    sent = {tricky.id: tricky.json, plain.id: plain.json}
    store.load([tricky])
    store.add(plain)
    # query_json gives the bytes Event.json gave at add time; query() decodes an equal Event
    # whose json is those very bytes.
    assert store.query_json([Filter()]) == [sent[plain.id], sent[tricky.id]]
    assert store.query([Filter()]) == [plain, tricky]
    assert store.get_json(tricky.id) == sent[tricky.id]
    again = store.get(tricky.id)
    assert again == tricky and again.json == sent[tricky.id]
    assert store.get_json("0" * 64) is None and store.get(tricky.id.upper()) is None
    assert tricky.id in store and tricky.id.upper() not in store and 42 not in store


def test_record_holds_only_the_wire_json_and_a_header():
    store = EventStore()
    follows = sign(ALICE, T0, 3, [["p", pk] for pk in PUBKEYS * 20], "")
    store.add(follows)
    (record,) = by_id(store).values()
    assert isinstance(record, bytes) and len(record) == 43 + len(follows.json)
    assert record.endswith(follows.json)
    # Author and tag values live once per distinct value, as index keys, not per event.
    assert set(store._tag["p"]) == set(PUBKEYS) and list(store._author) == [ALICE_PK]


def test_hand_built_events_that_would_break_the_record_are_refused():
    good = sign(ALICE, T0, 1, content="x")
    cases = {
        "invalid: id must be 64 lowercase hex characters": Event(
            good.id.upper(), good.pubkey, T0, 1, (), "x", good.sig
        ),
        "invalid: pubkey must be 64 lowercase hex characters": Event(
            good.id, good.pubkey[:-1], T0, 1, (), "x", good.sig
        ),
        "invalid: kind must be between 0 and 65535": Event(
            good.id, good.pubkey, T0, 70000, (), "x", good.sig
        ),
    }
    for message, event in cases.items():
        result = EventStore().add(event)
        assert (result.stored, result.message) == (False, message)


def test_snapshot_store_shares_records_and_counts_from_the_snapshot():
    store = EventStore(capacity=2)
    dataset = [sign(ALICE, T0, 0, content="v1"), sign(ALICE, T0 + 1, 0, content="v2")]
    note = sign(BOB, T0, 1, content="n")
    deletion = sign(BOB, T0 + 2, 5, [["e", note.id]])
    store.load([*dataset, note, deletion])
    snapshot = store.snapshot()
    live = [sign(BOB, T0 + 10 + i, 1, content=f"live {i}") for i in range(4)]
    for event in live:
        store.add(event)
    fresh = EventStore.from_snapshot(snapshot, capacity=2)
    assert [e.id for e in fresh.query([Filter()])] == [deletion.id, dataset[1].id]
    assert fresh.statistics()["replaced"] == 1 and fresh.statistics()["deleted"] == 1
    assert fresh.add(note).message == MSG_DELETED  # the deletion's tombstone came back too
    assert fresh.is_pinned(dataset[1].id)
    check_indexes(fresh)
    check_indexes(store)
    # Eviction order survives the snapshot: both stores drop the same live events next.
    live_copy = EventStore.from_snapshot(store.snapshot(), capacity=2)
    for i in range(3):
        event = sign(ALICE, T0 + 20 + i, 1, content=f"later {i}")
        assert live_copy.add(event) == store.add(event)
        assert live_copy.query_json([Filter()]) == store.query_json([Filter()])


def test_capacity_evicts_oldest_unpinned_and_keeps_indexes_consistent():
    store = EventStore(capacity=3)
    pinned = [sign(BOB, T0 - i, 1, [["p", ALICE_PK]], f"dataset {i}") for i in range(3)]
    store.load(pinned)
    live = [sign(ALICE, T0 + 10 - i, 1, [["p", BOB_PK], ["t", "soak"]], f"live {i}") for i in range(6)]
    for event in live:
        assert store.add(event).stored
    check_indexes(store)
    stats = store.statistics()
    assert (stats["events"], stats["pinned"], stats["evicted"]) == (6, 3, 3)
    assert stats["kinds"] == {"1": 6}
    assert orjson.loads(orjson.dumps(stats)) == stats
    # Insertion order decides, not created_at: the first three live events went.
    assert {e.id for e in store.query([Filter(authors=[ALICE_PK])])} == {e.id for e in live[3:]}
    assert store.count([Filter(tags={"t": ["soak"]})]) == 3
    assert store.count([Filter(tags={"p": [ALICE_PK]})]) == 3
    assert all(store.get(e.id) is None for e in live[:3])


def test_evicting_a_deletion_forgets_its_tombstones():
    store = EventStore(capacity=1)
    target = sign(ALICE, T0, 1, content="t")
    assert store.add(sign(ALICE, T0 + 1, 5, [["e", target.id]])).stored
    assert store.add(target).message == MSG_DELETED
    store.add(sign(BOB, T0, 1, content="pushes the deletion out"))
    assert store.statistics()["tombstones"] == 0
    assert store.add(target).stored


def test_capacity_must_be_positive():
    with pytest.raises(UsageError, match=r"^store capacity must be a positive number of events, not 0$"):
        EventStore(capacity=0)


def test_load_counts():
    store = EventStore()
    note = sign(ALICE, T0, 1)
    result = store.load([note, note, sign(ALICE, T0, 20001), sign(ALICE, T0 + 1, 5, [["e", note.id]]), note])
    counts = (result.stored, result.duplicates, result.ephemeral, result.refused, result.deleted)
    assert counts == (2, 1, 1, 1, 1)
    check_indexes(store)


def test_store_reads_expiration_and_address_like_event():
    from relaysim.store._rules import facts_of as _facts

    odd = [sign(ALICE, T0, 1, [["expiration", value]]) for value in ("12", " 12", "1_2", "١٢", "", "x")]
    for event in [*POOL, *odd]:
        facts = _facts(event)
        assert facts.expiration == event.expiration, event.tags
        assert facts.address == event.address, event.tags


def test_new_version_of_a_pinned_replaceable_stays_pinned():
    store = EventStore(capacity=1)
    store.load([sign(BOB, T0, 0, content='{"name":"bob"}')])
    newer = sign(BOB, T0 + 1, 0, content='{"name":"bob v2"}')
    assert store.add(newer).stored
    for i in range(3):
        store.add(sign(ALICE, T0 + i, 1, content=f"traffic {i}"))
    assert store.is_pinned(newer.id)
    assert store.query([Filter(kinds=[0])]) == [newer]
    check_indexes(store)


@pytest.mark.parametrize("slack", [1024, 3])
def test_side_structures_stay_bounded_under_capacity(slack, monkeypatch):
    """A soak in miniature: fresh tag values, addresses, deletions and expiries, capacity 40.

    With a small slack the eviction queue is compacted often (records deleted or expired before
    their turn), and eviction order must not change.
    """
    monkeypatch.setattr("relaysim.store._store._FIFO_SLACK", slack)
    store = EventStore(capacity=40)
    store.load(POOL[:20])
    pinned = len(store)
    rng = random.Random(5)
    recent: list[Event] = []
    for i in range(1200):
        secret = SECRETS[i % 3]
        roll = i % 6
        if roll == 0:
            event = sign(secret, T0 + i, 30023, [["d", f"article-{i}"]], "fresh address")
        elif roll == 1 and recent:
            targets = [["e", rng.choice(recent).id], ["a", f"30023:{pubkey_of(secret)}:article-{i - 7}"]]
            event = sign(secret, T0 + i, 5, targets, "delete")
        elif roll == 2:
            event = sign(secret, T0 + i, 1, [["expiration", str(T0 + i + 3)], ["t", f"tag{i}"]], "brief")
        else:
            event = sign(secret, T0 + i, 1, [["p", PUBKEYS[i % 3]], ["t", f"tag{i}"], ["x", str(i)]], "n")
        store.add(event)
        recent = [*recent[-30:], event]
    check_indexes(store)
    assert store._unpinned <= 40
    assert len(store) <= 40 + pinned
    held = [decode(record) for record in by_id(store).values()]
    tags_held = {(t[0], t[1]) for e in held for t in e.tags if len(t) >= 2 and len(t[0]) == 1}
    assert {(name, value) for name, values in store._tag.items() for value in values} <= tags_held
    deletions = [e for e in held if e.kind == 5]
    assert len(store._tomb_ids) <= sum(len(e.tags) for e in deletions)
    assert len(store._tomb_addresses) <= len(deletions)
    assert len(store._expiry) <= len(store)
    assert store.statistics()["evicted"] > 1000


def test_since_and_until_beyond_the_key_range():
    store = EventStore()
    events = [sign(ALICE, t, 1, content=str(t)) for t in (0, 1, T0, 2**53 - 1)]
    store.load(events)
    for since, until, want in [
        (-5, None, 4),
        (None, -1, 0),
        (None, 0, 1),
        (0, 0, 1),
        (2**53 - 1, None, 1),
        (2**53, None, 0),
        (None, 10**20, 4),
        (1, 2**53 - 2, 2),
    ]:
        got = store.query([Filter(since=since, until=until)])
        assert len(got) == want, (since, until)
        assert store.count([Filter(since=since, until=until)]) == want, (since, until)
    assert [e.created_at for e in store.query([Filter()])] == [2**53 - 1, T0, 1, 0]


def test_hand_built_event_with_created_at_out_of_range_is_refused():
    good = sign(ALICE, T0, 1, content="x")
    bad = Event(good.id, good.pubkey, 2**53, 1, (), "x", good.sig)
    result = EventStore().add(bad)
    assert (result.stored, result.message) == (
        False,
        "invalid: created_at must be between 0 and 9007199254740991",
    )
