"""EventStore: the indexes, the write path (add/load/evict) and the query planner.

See the package docstring (``relaysim.store``) for the theory of operation, and ``_record`` for
how one event is held.
"""

from __future__ import annotations

import heapq
import math
import time
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import filterfalse, islice
from operator import itemgetter
from typing import TYPE_CHECKING, Any, overload

import orjson

from relaysim.errors import UsageError
from relaysim.nostr.event import Event, EventId
from relaysim.store._keys import MAX_TIME, bounds, dedupe, list_remove
from relaysim.store._record import (
    HEADER,
    KEY,
    Record,
    created_at_of,
    decode,
    id_of,
    is_pinned,
    kind_bytes,
    make_record,
    pubkey_slice,
    raw_id,
    raw_id_of,
    sort_key,
    wire,
)
from relaysim.store._rules import (
    DELETION_KIND,
    INDEXED_TAGS,
    MSG_DELETED,
    MSG_DUPLICATE,
    MSG_HAVE_NEWER,
    AddResult,
    Facts,
    LoadResult,
    deletion_targets,
    facts_from,
    facts_of,
)

if TYPE_CHECKING:
    from relaysim.nostr.filter import Filter

__all__ = ["EventStore", "StoreSnapshot"]

# Above this many (author, kind) pairs the pair index costs more look-ups than it saves.
_MAX_PAIRS = 4096
# A tag condition is checked by set membership when its index holds at most this many records per
# candidate walked, else by decoding the candidate (tuned with bench/bench_store.py; see _plan).
_SET_FACTOR = 8
# The eviction queue is rebuilt without the records that left by other ways (replaced, deleted,
# expired) once those outnumber a quarter of the live ones and this many.
_FIFO_SLACK = 1024
_HEX = frozenset("0123456789abcdef")
# record[HEADER:] in C, no Python frame per item (a REQ of 500 costs ~15 µs less).
_WIRE = itemgetter(slice(HEADER, None))


class WireView(Sequence[bytes]):
    """Records seen as their wire JSON, cut out one at a time when read (see ``query_json``)."""

    __slots__ = ("_records",)

    def __init__(self, records: list[Record]) -> None:
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        if isinstance(index, slice):
            return list(map(_WIRE, self._records[index]))
        return self._records[index][HEADER:]

    def __iter__(self) -> Iterator[bytes]:
        return map(_WIRE, self._records)

    def __eq__(self, other: object) -> bool:
        """Equal to a list (or view) of the same bytes, as the list it stands for would be."""
        if isinstance(other, WireView | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # like a list


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """What a store held at one moment, to build equal stores from (:meth:`EventStore.from_snapshot`).

    The records are immutable and shared, so a snapshot costs a pointer per event, and a store
    built from it costs only its indexes. The relay takes one after loading its dataset and
    builds a fresh store from it on every reset.
    """

    records: tuple[Record, ...]  # the pinned ones, then the live ones in eviction order
    counters: tuple[int, int, int, int]  # evicted, replaced, deleted, purged


class EventStore:
    """Events in memory with the indexes a relay needs to answer REQ and COUNT.

    Call :meth:`load` once with the dataset (pinned), :meth:`add` for every EVENT a client or the
    traffic generator publishes, and :meth:`query_json` / :meth:`count` for REQ and COUNT
    (:meth:`query` gives :class:`Event` objects, for the Python API). Pure and synchronous: no
    I/O, no clock except ``time.time()`` as the default ``now``.
    """

    def __init__(self, capacity: int | None = None) -> None:
        if capacity is not None and capacity < 1:
            raise UsageError(f"store capacity must be a positive number of events, not {capacity}")
        self.capacity = capacity
        # 32-byte id -> record, in 256 shards by the id's first byte. Under churn a dict's table
        # settles at ~3x its live entries (twice what growing by insertion gave it); one dict of
        # the cap's 117k events makes that step at once, some minutes after the cap is reached,
        # holding the old 5 MB table and the new 10 MB one together (and the freed one mostly
        # stays in RSS); 256 small ones make it one at a time.
        self._by_id: list[dict[bytes, Record]] = [{} for _ in range(256)]
        self._count = 0
        self._time: list[Record] = []
        self._author: dict[str, list[Record]] = {}
        self._kind: dict[int, list[Record]] = {}
        self._author_kind: dict[tuple[str, int], list[Record]] = {}
        self._tag: dict[str, dict[str, list[Record]]] = {}  # letter -> first value -> records
        self._latest: dict[str, Record] = {}  # NIP-01 address -> its one stored version
        self._expiry: dict[Record, int] = {}
        # (expiration, record) sorted, so the records expired at ``now`` are a prefix.
        self._expiry_order: list[tuple[int, Record]] = []
        self._pinned = 0
        # Unpinned records in insertion order, for eviction. Records that left another way stay
        # until popped or compacted (see _FIFO_SLACK): a deque slot is 8 bytes, an OrderedDict's ~100.
        self._fifo: deque[Record] = deque()
        self._unpinned = 0
        # NIP-09 tombstones, reference-counted by the stored kind-5 events that made them.
        self._tomb_ids: dict[tuple[str, str], int] = {}
        self._tomb_addresses: dict[str, dict[EventId, int]] = {}
        # During load(): lists appended to unsorted, sorted once at the end (see _Bulk).
        self._bulk: _Bulk | None = None
        self._evicted = 0
        self._replaced = 0
        self._deleted = 0
        self._purged = 0

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return self._count

    def __contains__(self, event_id: object) -> bool:
        return self._record(event_id) is not None

    def get(self, event_id: str) -> Event | None:
        """The stored event with this id, or None. Does not hide expired events (query does)."""
        record = self._record(event_id)
        return None if record is None else decode(record)

    def get_json(self, event_id: str) -> bytes | None:
        """The stored event's wire JSON, exactly the bytes :meth:`query_json` sends, or None."""
        record = self._record(event_id)
        return None if record is None else wire(record)

    def is_pinned(self, event_id: str) -> bool:
        record = self._record(event_id)
        return record is not None and is_pinned(record)

    def __iter__(self) -> Iterator[Event]:
        """Every stored event, newest first (expired ones included)."""
        return map(decode, reversed(self._time))

    def query(
        self,
        filters: Sequence[Filter] | Filter,
        now: float | None = None,
        default_limit: int | None = None,
        max_limit: int | None = None,
    ) -> list[Event]:
        """Events matching any filter: newest first, ties lowest id first, no duplicates.

        Each filter's ``limit`` (or ``default_limit`` when it has none) applies to that filter
        alone, clamped to ``max_limit`` (NIP-11's silent clamp). Expired events (NIP-40, against
        ``now``, default ``time.time()``) are never returned.
        """
        return [decode(record) for record in self._select(filters, now, default_limit, max_limit)]

    def query_json(
        self,
        filters: Sequence[Filter] | Filter,
        now: float | None = None,
        default_limit: int | None = None,
        max_limit: int | None = None,
    ) -> Sequence[bytes]:
        """What :meth:`query` answers, as each event's wire JSON: what a relay puts in its EVENTs.

        Nothing is decoded or re-encoded: these are the bytes :attr:`Event.json` gave when the
        event was stored. The answer is a lazy view of the stored records: an item's bytes are
        cut out when it is read, so a REQ waiting for a slow client holds one reference per
        event, not a copy of its JSON (relay/websocket.py counts 8 bytes each).
        """
        return WireView(self._select(filters, now, default_limit, max_limit))

    def count(self, filters: Sequence[Filter] | Filter, now: float | None = None) -> int:
        """How many stored, unexpired events match any filter (NIP-45). ``limit`` is ignored."""
        filters = _as_tuple(filters)
        expired = self._expired(time.time() if now is None else now)
        if len(filters) == 1:
            flt = filters[0]
            if flt.ids is None and not expired:
                plan = self._plan(flt, None)
                if len(plan.lists) == 1 and plan.exact:
                    lo, hi = bounds(plan.lists[0], flt.since, flt.until)
                    return max(0, hi - lo)  # since > until gives hi < lo
            return len(self._run(flt, expired, None))
        union: set[Record] = set()
        for flt in filters:
            union.update(self._run(flt, expired, None))
        return len(union)

    def statistics(self) -> dict[str, Any]:
        """Counters for /stats and the soak report: JSON-able as is (``kinds`` keys are strings)."""
        return {
            "events": self._count,
            "pinned": self._pinned,
            "capacity": self.capacity,
            "kinds": {str(kind): len(records) for kind, records in sorted(self._kind.items())},
            "authors": len(self._author),
            "expiring": len(self._expiry),
            "tombstones": len(self._tomb_ids) + len(self._tomb_addresses),
            "evicted": self._evicted,
            "replaced": self._replaced,
            "deleted": self._deleted,
            "purged": self._purged,
        }

    def snapshot(self) -> StoreSnapshot:
        """Everything stored now, to build equal stores from later (cheap: records are shared)."""
        counters = (self._evicted, self._replaced, self._deleted, self._purged)
        pinned = [r for shard in self._by_id for r in shard.values() if is_pinned(r)]
        # Any order rebuilds the same store (see from_snapshot) except eviction order: keep that.
        return StoreSnapshot((*pinned, *filter(self._holds, self._fifo)), counters)

    @classmethod
    def from_snapshot(cls, snapshot: StoreSnapshot, capacity: int | None = None) -> EventStore:
        """A new store holding what ``snapshot`` held (pinned stays pinned), sharing its records.

        A stored set is consistent (one version per address, no deleted target beside its
        deletion), so the records are indexed as they are, without the storage rules; kind-5
        events get their tombstones back. ``capacity`` may differ from the original store's.
        """
        store = cls(capacity)
        store._bulk = _Bulk()
        try:
            for record in snapshot.records:
                event = decode(record)
                store._insert(record, raw_id_of(record), facts_of(event))
                if event.kind == DELETION_KIND:
                    store._apply_deletion(event)
                store._evict()
        finally:
            store._finish_bulk()
        store._evicted, store._replaced, store._deleted, store._purged = snapshot.counters
        return store

    # ------------------------------------------------------------------ writing

    def add(self, event: Event, now: float | None = None, *, pinned: bool = False) -> AddResult:
        """Store one event (already verified by the caller) and say what happened.

        A version that replaces a pinned replaceable/addressable event is pinned in its turn.

        ``now`` is accepted for symmetry with :meth:`query`; expiry is judged when reading, so
        an already-expired event is stored but never served.
        """
        del now
        result = self._add(event, pinned)
        if result.stored:
            self._evict()
        return result

    def load(self, events: Iterable[Event], pinned: bool = True) -> LoadResult:
        """Bulk :meth:`add` with the same rules, indexing everything in one sort at the end.

        Dataset events are loaded pinned: never evicted, not counted against ``capacity``.
        ``events`` may be a generator: nothing of an event but its record is kept.
        """
        stored = duplicates = refused = ephemeral = replaced = deleted = 0
        self._bulk = _Bulk()
        try:
            for event in events:
                result = self._add(event, pinned)
                if result.stored:
                    stored += 1
                    self._evict()
                elif result.duplicate:
                    duplicates += 1
                elif result.ephemeral:
                    ephemeral += 1
                else:
                    refused += 1
                replaced += len(result.replaced)
                deleted += len(result.deleted)
        finally:
            self._finish_bulk()
        return LoadResult(stored, duplicates, refused, ephemeral, replaced, deleted)

    def purge_expired(self, now: float | None = None) -> int:
        """Drop every stored event whose NIP-40 expiration has passed; returns how many."""
        if now is None:
            now = time.time()
        doomed = list(self._expired(now))
        for record in doomed:
            self._remove(record)
        self._purged += len(doomed)
        return len(doomed)

    # ------------------------------------------------------------------ internals: writing

    def _record(self, event_id: object) -> Record | None:
        raw = raw_id(event_id) if isinstance(event_id, str) else None
        return None if raw is None else self._by_id[raw[0]].get(raw)

    def _holds(self, record: Record) -> bool:
        """Whether this very record is stored (the eviction queue keeps some that left)."""
        raw = raw_id_of(record)
        return self._by_id[raw[0]].get(raw) is record

    def _add(self, event: Event, pinned: bool) -> AddResult:
        if 20000 <= event.kind < 30000:
            return AddResult(stored=False, ephemeral=True)
        raw = raw_id(event.id)
        if raw is not None and raw in self._by_id[raw[0]]:
            return AddResult(stored=False, duplicate=True, message=MSG_DUPLICATE)
        refusal = _refusal(event, raw)
        if refusal is not None:
            # parse_event already refuses these; a hand-built Event must not corrupt the records.
            return AddResult(stored=False, message=refusal)
        assert raw is not None
        facts = facts_of(event)
        if event.kind != DELETION_KIND and self._is_tombstoned(event, facts.address):
            return AddResult(stored=False, message=MSG_DELETED)
        replaced: tuple[EventId, ...] = ()
        if facts.address is not None:
            current = self._latest.get(facts.address)
            if current is not None:
                # A larger key is newer, or as new with a lower id: NIP-01 keeps that one.
                if current[:KEY] > sort_key(event):
                    return AddResult(stored=False, message=MSG_HAVE_NEWER)
                # A new version of a dataset profile/follow list stays pinned: eviction must not
                # leave an address with no version at all, and pinned addresses are bounded.
                pinned = pinned or is_pinned(current)
                self._remove(current)
                self._replaced += 1
                replaced = (id_of(current),)
        self._insert(make_record(event, pinned), raw, facts)
        deleted: tuple[EventId, ...] = ()
        if event.kind == DELETION_KIND:
            deleted = self._apply_deletion(event)
        return AddResult(stored=True, replaced=replaced, deleted=deleted)

    def _is_tombstoned(self, event: Event, address: str | None) -> bool:
        if (event.id, event.pubkey) in self._tomb_ids:
            return True
        if address is not None:
            deletions = self._tomb_addresses.get(address)
            if deletions and event.created_at <= max(deletions.values()):
                return True
        return False

    def _apply_deletion(self, deletion: Event) -> tuple[EventId, ...]:
        """NIP-09: remove the author's own targets now and remember them for late arrivals."""
        ids, addresses = deletion_targets(deletion)
        removed: list[EventId] = []
        author = deletion.pubkey.encode()
        for target_id in ids:
            tomb = (target_id, deletion.pubkey)
            self._tomb_ids[tomb] = self._tomb_ids.get(tomb, 0) + 1
            target = self._record(target_id)
            if target is not None and target[pubkey_slice] == author and target[40:42] != b"\x00\x05":
                self._remove(target)
                removed.append(EventId(target_id))
        for address in addresses:
            self._tomb_addresses.setdefault(address, {})[deletion.id] = deletion.created_at
            current = self._latest.get(address)
            if current is not None and created_at_of(current) <= deletion.created_at:
                self._remove(current)
                removed.append(id_of(current))
        self._deleted += len(removed)
        return tuple(removed)

    def _forget_deletion(self, deletion: Event) -> None:
        """Drop the tombstones of a kind-5 that leaves the store (eviction or expiry)."""
        ids, addresses = deletion_targets(deletion)
        for target_id in ids:
            tomb = (target_id, deletion.pubkey)
            left = self._tomb_ids.get(tomb, 0) - 1
            if left > 0:
                self._tomb_ids[tomb] = left
            else:
                self._tomb_ids.pop(tomb, None)
        for address in addresses:
            deletions = self._tomb_addresses.get(address)
            if deletions is not None:
                deletions.pop(deletion.id, None)
                if not deletions:
                    del self._tomb_addresses[address]

    def _evict(self) -> None:
        if self.capacity is None:
            return
        while self._unpinned > self.capacity:
            record = self._fifo.popleft()
            if self._holds(record):
                self._remove(record)
                self._evicted += 1

    def _slots(self, facts: Facts) -> Iterator[tuple[dict[Any, list[Record]], object]]:
        """Every (index dict, entry) pair whose list holds this event."""
        yield self._author, facts.pubkey
        yield self._kind, facts.kind
        yield self._author_kind, (facts.pubkey, facts.kind)
        tags = self._tag
        for name, value in facts.index_tags:
            values = tags.get(name)
            if values is None:
                values = tags[name] = {}
            yield values, value

    def _insert(self, record: Record, raw: bytes, facts: Facts) -> None:
        hash(record)  # bytes cache their hash: pay it now, not in the first query that needs it
        self._by_id[raw[0]][raw] = record
        self._count += 1
        if facts.address is not None:
            self._latest[facts.address] = record
        if facts.expiration is not None:
            self._expiry[record] = facts.expiration
            insort(self._expiry_order, (facts.expiration, record))
        if is_pinned(record):
            self._pinned += 1
        else:
            self._fifo.append(record)
            self._unpinned += 1
        bulk = self._bulk
        if bulk is not None:
            self._time.append(record)
            for index, entry in self._slots(facts):
                records = index.get(entry)
                if records is None:
                    records = index[entry] = []
                records.append(record)
                bulk.touched[id(records)] = (index, entry, records)
            return
        insort(self._time, record)
        for index, entry in self._slots(facts):
            records = index.get(entry)
            if records is None:
                index[entry] = [record]
            else:
                insort(records, record)

    def _remove(self, record: Record) -> None:
        # The tags are only in the JSON: read them (no Event built; an eviction per add at the cap).
        obj = orjson.loads(wire(record))
        facts = facts_from(obj["pubkey"], obj["kind"], obj["tags"])
        raw = raw_id_of(record)
        del self._by_id[raw[0]][raw]
        self._count -= 1
        if facts.address is not None and self._latest.get(facts.address) is record:
            del self._latest[facts.address]
        expiration = self._expiry.pop(record, None)
        if expiration is not None:
            order = self._expiry_order
            del order[bisect_left(order, (expiration, record))]
        if is_pinned(record):
            self._pinned -= 1
        else:
            self._unpinned -= 1
            if len(self._fifo) > self._unpinned + max(_FIFO_SLACK, self._unpinned // 4):
                self._fifo = deque(filter(self._holds, self._fifo))
        if facts.kind == DELETION_KIND:
            self._forget_deletion(decode(record))
        bulk = self._bulk
        if bulk is not None:
            # Its lists may be unsorted now: drop it from them when the load ends.
            bulk.dropped[id(record)] = record
            for index, entry in self._slots(facts):
                records = index[entry]
                bulk.touched[id(records)] = (index, entry, records)
            return
        list_remove(self._time, record)
        for index, entry in self._slots(facts):
            records = index[entry]
            list_remove(records, record)
            if not records:
                del index[entry]
        for name, _ in facts.index_tags:
            if not self._tag.get(name, True):
                del self._tag[name]

    def _finish_bulk(self) -> None:
        """End a load: drop what was removed meanwhile, sort each touched list once."""
        bulk, self._bulk = self._bulk, None
        if bulk is None:
            return
        dropped = bulk.dropped
        lists = [(None, None, self._time), *bulk.touched.values()]
        for index, entry, records in lists:
            if dropped:
                records[:] = [r for r in records if id(r) not in dropped]
            # Timsort merges an old sorted run with the appended run in linear time.
            records.sort()
            if not records and index is not None and index.get(entry) is records:
                del index[entry]
        for name in [name for name, values in self._tag.items() if not values]:
            del self._tag[name]

    # ------------------------------------------------------------------ internals: reading

    def _select(
        self,
        filters: Sequence[Filter] | Filter,
        now: float | None,
        default_limit: int | None,
        max_limit: int | None,
    ) -> list[Record]:
        filters = _as_tuple(filters)
        expired = self._expired(time.time() if now is None else now)
        if len(filters) == 1:
            return self._run(filters[0], expired, _effective_limit(filters[0], default_limit, max_limit))
        union: set[Record] = set()
        for flt in filters:
            union.update(self._run(flt, expired, _effective_limit(flt, default_limit, max_limit)))
        return sorted(union, reverse=True)

    def _plan(self, flt: Filter, limit: int | None) -> _Plan:
        """Pick the cheapest record lists that cover ``flt`` and say how to check the rest.

        The cost of an option is the number of records in its lists. Conditions the chosen lists
        do not guarantee are checked per candidate: authors and kinds by a slice of the record
        (about 0.2 µs); a tag by membership in the set of its own index's records when that set is
        at most ``_SET_FACTOR`` times the walk (building costs ~40 ns a record, testing runs at C
        speed), else by decoding the candidate and :meth:`Filter.matches` (a few µs a candidate).
        """
        options: list[tuple[int, int, list[list[Record]], str]] = []
        by_condition: dict[str, tuple[int, list[list[Record]]]] = {}

        def option(rank: int, lists: list[list[Record] | None], condition: str) -> None:
            present = [records for records in lists if records is not None]
            options.append((sum(map(len, present)), rank, present, condition))
            by_condition[condition] = (options[-1][0], present)

        authors, kinds = flt.authors, flt.kinds
        if authors is not None and kinds is not None and len(authors) * len(kinds) <= _MAX_PAIRS:
            pairs = self._author_kind
            option(0, [pairs.get((a, k)) for a in authors for k in kinds], "authors+kinds")
        if authors is not None:
            option(1, [self._author.get(a) for a in authors], "authors")
        for name, values in flt.tags.items():
            if name in INDEXED_TAGS:
                index = self._tag.get(name, {})
                option(1, [index.get(v) for v in values], "#" + name)
        if kinds is not None:
            option(2, [self._kind.get(k) for k in kinds], "kinds")
        option(3, [self._time], "")
        cost, _, lists, chosen = min(options, key=lambda opt: (opt[0], opt[1]))
        covered = set(chosen.split("+"))
        walk = cost if limit is None else min(cost, limit)
        sets: list[set[Record]] = []
        check_authors: frozenset[bytes] | None = None
        check_kinds: frozenset[bytes] | None = None
        slow = False
        if authors is not None and "authors" not in covered:
            check_authors = frozenset(a.encode() for a in authors)
        if kinds is not None and "kinds" not in covered:
            check_kinds = frozenset(b for b in map(kind_bytes, kinds) if b is not None)
        for name in flt.tags:
            known = by_condition.get("#" + name)
            if "#" + name in covered:
                continue
            if known is not None and known[0] <= _SET_FACTOR * walk:
                members: set[Record] = set()
                for records in known[1]:
                    lo, hi = bounds(records, flt.since, flt.until)
                    members.update(records[lo:hi])
                sets.append(members)
            else:
                slow = True
        return _Plan(lists, check_authors, check_kinds, sets, slow)

    def _expired(self, now: float) -> set[Record]:
        """The stored records expired at ``now`` (NIP-40); computed once per query."""
        order = self._expiry_order
        if not order or order[0][0] > now:
            return set()
        # b"\xff" sorts after every record (created_at < 2**53 starts with a zero byte), so ties on
        # expiration == now are included.
        end = bisect_right(order, (math.floor(now), b"\xff"))
        return {record for _, record in islice(order, end)}

    def _run(self, flt: Filter, expired: set[Record], limit: int | None) -> list[Record]:
        """Records matching one filter, newest first, at most ``limit``, none of ``expired``.

        Candidates flow through a chain of ``filter()`` stages so the common checks (expiry, tag
        membership) run at C speed; only authors/kinds/decoding checks call back into Python.
        """
        if limit is not None and limit <= 0:
            return []
        if flt.ids is not None:
            hits = []
            matches = _matcher(flt)
            for event_id in flt.ids:
                record = self._record(event_id)
                if record is not None and record not in expired and matches(record):
                    hits.append(record)
            hits.sort(reverse=True)
            return hits if limit is None else hits[:limit]
        plan = self._plan(flt, limit)
        if not plan.lists:
            return []
        if len(plan.lists) == 1:
            records = plan.lists[0]
            lo, hi = bounds(records, flt.since, flt.until)
            candidates: Iterator[Record] = islice(reversed(records), len(records) - hi, len(records) - lo)
        else:
            runs = []
            for records in plan.lists:
                lo, hi = bounds(records, flt.since, flt.until)
                if hi > lo:
                    runs.append(islice(reversed(records), len(records) - hi, len(records) - lo))
            candidates = dedupe(heapq.merge(*runs, reverse=True))
        if expired:
            candidates = filterfalse(expired.__contains__, candidates)
        for members in plan.sets:
            candidates = filter(members.__contains__, candidates)
        authors, kinds = plan.authors, plan.kinds
        if authors is not None:
            candidates = filter(lambda record: record[pubkey_slice] in authors, candidates)
        if kinds is not None:
            candidates = filter(lambda record: record[40:42] in kinds, candidates)
        if plan.slow:
            candidates = filter(lambda record: flt.matches(decode(record)), candidates)
        return list(candidates if limit is None else islice(candidates, limit))


@dataclass(slots=True)
class _Bulk:
    """A load in progress: the lists it appended to, and what it removed from them meanwhile.

    Records removed during a load are known by identity (the same event may come back as a new
    record, equal in bytes); holding them here also keeps their ``id()`` from being reused.
    Nothing per event but its record is held: a load's peak memory is the store it builds.
    """

    touched: dict[int, tuple[dict[Any, list[Record]], object, list[Record]]] = field(default_factory=dict)
    dropped: dict[int, Record] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one filter is answered: walk ``lists`` newest first, keep records passing the checks."""

    lists: list[list[Record]]
    authors: frozenset[bytes] | None  # pubkeys (ASCII hex) still to check per candidate
    kinds: frozenset[bytes] | None  # kinds (2 bytes, as in the header) still to check
    sets: list[set[Record]]  # a candidate must be in every one
    slow: bool  # some condition only Filter.matches can check

    @property
    def exact(self) -> bool:
        return self.authors is None and self.kinds is None and not self.sets and not self.slow


def _matcher(flt: Filter) -> Callable[[Record], bool]:
    """``flt.matches`` for a record, decoding it only when a tag condition needs its tags."""
    authors = None if flt.authors is None else frozenset(a.encode() for a in flt.authors)
    kinds = None if flt.kinds is None else frozenset(b for b in map(kind_bytes, flt.kinds) if b is not None)
    since, until = flt.since, flt.until

    def matches(record: Record) -> bool:
        if kinds is not None and record[40:42] not in kinds:
            return False
        if authors is not None and record[pubkey_slice] not in authors:
            return False
        if since is not None or until is not None:
            created_at = created_at_of(record)
            if (since is not None and created_at < since) or (until is not None and created_at > until):
                return False
        return not flt.tags or flt.matches(decode(record))

    return matches


def _refusal(event: Event, raw: bytes | None) -> str | None:
    """Why a hand-built event cannot be stored (its record needs these), or None."""
    if raw is None:
        return "invalid: id must be 64 lowercase hex characters"
    if len(event.pubkey) != 64 or not _HEX.issuperset(event.pubkey):
        return "invalid: pubkey must be 64 lowercase hex characters"
    if not 0 <= event.created_at <= MAX_TIME:
        return f"invalid: created_at must be between 0 and {MAX_TIME}"
    if not 0 <= event.kind <= 0xFFFF:
        return "invalid: kind must be between 0 and 65535"
    return None


def _as_tuple(filters: Sequence[Filter] | Filter) -> Sequence[Filter]:
    return (filters,) if hasattr(filters, "matches") else filters  # type: ignore[return-value]


def _effective_limit(flt: Filter, default_limit: int | None, max_limit: int | None) -> int | None:
    limit = flt.limit if flt.limit is not None else default_limit
    if max_limit is not None:
        limit = max_limit if limit is None else min(limit, max_limit)
    return limit

