"""EventStore: the indexes, the write path (add/load/evict) and the query planner.

See the package docstring (``relaysim.store``) for the theory of operation.
"""

from __future__ import annotations

import heapq
import math
import time
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import filterfalse, islice
from typing import TYPE_CHECKING, Any

from relaysim.errors import UsageError
from relaysim.nostr.event import Event, EventId, PubKey
from relaysim.store._keys import MAX_TIME, Key, bounds, dedupe, list_remove, sort_key
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
    facts_of,
)

if TYPE_CHECKING:
    from relaysim.nostr.filter import Filter

__all__ = ["EventStore"]

# Above this many (author, kind) pairs the pair index costs more look-ups than it saves.
_MAX_PAIRS = 4096
# A tag condition is checked by set membership when its index holds at most this many keys per
# candidate walked, else by Filter.matches (tuned with bench/bench_store.py; see EventStore._plan).
_SET_FACTOR = 8


class EventStore:
    """Events in memory with the indexes a relay needs to answer REQ and COUNT.

    Call :meth:`load` once with the dataset (pinned), :meth:`add` for every EVENT a client or the
    traffic generator publishes, and :meth:`query` / :meth:`count` for REQ and COUNT. Pure and
    synchronous: no I/O, no clock except ``time.time()`` as the default ``now``.
    """

    def __init__(self, capacity: int | None = None) -> None:
        if capacity is not None and capacity < 1:
            raise UsageError(f"store capacity must be a positive number of events, not {capacity}")
        self.capacity = capacity
        self._by_id: dict[EventId, Event] = {}
        self._by_key: dict[Key, Event] = {}
        self._time: list[Key] = []
        self._author: dict[str, list[Key]] = {}
        self._kind: dict[int, list[Key]] = {}
        self._author_kind: dict[tuple[str, int], list[Key]] = {}
        self._tag: dict[tuple[str, str], list[Key]] = {}
        self._latest: dict[str, EventId] = {}
        self._expiry: dict[Key, int] = {}
        # (expiration, key) sorted, so the keys expired at ``now`` are a prefix found by bisection.
        self._expiry_order: list[tuple[int, Key]] = []
        self._pinned: set[EventId] = set()
        self._fifo: OrderedDict[EventId, None] = OrderedDict()
        # NIP-09 tombstones, reference-counted by the stored kind-5 events that made them.
        self._tomb_ids: dict[tuple[EventId, PubKey], int] = {}
        self._tomb_addresses: dict[str, dict[EventId, int]] = {}
        # During load(): keys stored but not yet in the lists (indexed in one sort at the end).
        self._pending: dict[Key, tuple[Event, Facts]] | None = None
        self._evicted = 0
        self._replaced = 0
        self._deleted = 0
        self._purged = 0

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._by_id

    def get(self, event_id: str) -> Event | None:
        """The stored event with this id, or None. Does not hide expired events (query does)."""
        return self._by_id.get(EventId(event_id))

    def is_pinned(self, event_id: str) -> bool:
        return event_id in self._pinned

    def __iter__(self) -> Iterator[Event]:
        """Every stored event, newest first (expired ones included)."""
        by_key = self._by_key
        return (by_key[key] for key in reversed(self._time))

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
        filters = _as_tuple(filters)
        expired = self._expired_keys(time.time() if now is None else now)
        by_key = self._by_key
        if len(filters) == 1:
            keys = self._run(filters[0], expired, _effective_limit(filters[0], default_limit, max_limit))
            return [by_key[key] for key in keys]
        union: set[Key] = set()
        for flt in filters:
            union.update(self._run(flt, expired, _effective_limit(flt, default_limit, max_limit)))
        return [by_key[key] for key in sorted(union, reverse=True)]

    def count(self, filters: Sequence[Filter] | Filter, now: float | None = None) -> int:
        """How many stored, unexpired events match any filter (NIP-45). ``limit`` is ignored."""
        filters = _as_tuple(filters)
        expired = self._expired_keys(time.time() if now is None else now)
        if len(filters) == 1:
            flt = filters[0]
            if flt.ids is None and not expired:
                plan = self._plan(flt, None)
                if len(plan.lists) == 1 and plan.exact:
                    lo, hi = bounds(plan.lists[0], flt.since, flt.until)
                    return max(0, hi - lo)  # since > until gives hi < lo
            return len(self._run(flt, expired, None))
        union: set[Key] = set()
        for flt in filters:
            union.update(self._run(flt, expired, None))
        return len(union)

    def statistics(self) -> dict[str, Any]:
        """Counters for /stats and the soak report: JSON-able as is (``kinds`` keys are strings)."""
        return {
            "events": len(self._by_id),
            "pinned": len(self._pinned),
            "capacity": self.capacity,
            "kinds": {str(kind): len(keys) for kind, keys in sorted(self._kind.items())},
            "authors": len(self._author),
            "expiring": len(self._expiry),
            "tombstones": len(self._tomb_ids) + len(self._tomb_addresses),
            "evicted": self._evicted,
            "replaced": self._replaced,
            "deleted": self._deleted,
            "purged": self._purged,
        }

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
        """
        stored = duplicates = refused = ephemeral = replaced = deleted = 0
        self._pending = {}
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
            pending, self._pending = self._pending, None
            self._index_bulk(pending)
        return LoadResult(stored, duplicates, refused, ephemeral, replaced, deleted)

    def purge_expired(self, now: float | None = None) -> int:
        """Drop every stored event whose NIP-40 expiration has passed; returns how many."""
        if now is None:
            now = time.time()
        doomed = list(self._expired_keys(now))
        for key in doomed:
            self._remove(self._by_key[key])
        self._purged += len(doomed)
        return len(doomed)

    # ------------------------------------------------------------------ internals: writing

    def _add(self, event: Event, pinned: bool) -> AddResult:
        if 20000 <= event.kind < 30000:
            return AddResult(stored=False, ephemeral=True)
        if event.id in self._by_id:
            return AddResult(stored=False, duplicate=True, message=MSG_DUPLICATE)
        if not 0 <= event.created_at <= MAX_TIME:
            # parse_event already refuses these; a hand-built Event must not corrupt the key order.
            return AddResult(stored=False, message=f"invalid: created_at must be between 0 and {MAX_TIME}")
        facts = facts_of(event)
        if event.kind != DELETION_KIND and self._is_tombstoned(event, facts.address):
            return AddResult(stored=False, message=MSG_DELETED)
        replaced: tuple[EventId, ...] = ()
        if facts.address is not None:
            current_id = self._latest.get(facts.address)
            if current_id is not None:
                current = self._by_id[current_id]
                # A larger sort key is newer, or as new with a lower id: NIP-01 keeps that one.
                if sort_key(current) > sort_key(event):
                    return AddResult(stored=False, message=MSG_HAVE_NEWER)
                # A new version of a dataset profile/follow list stays pinned: eviction must not
                # leave an address with no version at all, and pinned addresses are bounded.
                pinned = pinned or current.id in self._pinned
                self._remove(current)
                self._replaced += 1
                replaced = (current.id,)
        self._insert(event, facts, pinned)
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
        for target_id in ids:
            tomb = (target_id, deletion.pubkey)
            self._tomb_ids[tomb] = self._tomb_ids.get(tomb, 0) + 1
            target = self._by_id.get(target_id)
            if target is not None and target.pubkey == deletion.pubkey and target.kind != DELETION_KIND:
                self._remove(target)
                removed.append(target.id)
        for address in addresses:
            self._tomb_addresses.setdefault(address, {})[deletion.id] = deletion.created_at
            current_id = self._latest.get(address)
            if current_id is not None:
                current = self._by_id[current_id]
                if current.created_at <= deletion.created_at:
                    self._remove(current)
                    removed.append(current.id)
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
        fifo = self._fifo
        while len(fifo) > self.capacity:
            oldest_id, _ = fifo.popitem(last=False)
            self._remove(self._by_id[oldest_id])
            self._evicted += 1

    def _list_slots(self, event: Event, facts: Facts) -> Iterator[tuple[dict[Any, list[Key]], object]]:
        """Every (index dict, entry) pair whose key list holds this event."""
        yield self._author, event.pubkey
        yield self._kind, event.kind
        yield self._author_kind, (event.pubkey, event.kind)
        for pair in facts.index_tags:
            yield self._tag, pair

    def _insert(self, event: Event, facts: Facts, pinned: bool) -> None:
        event.json  # noqa: B018 -- encode the wire JSON once, now, so serving never re-encodes
        key = sort_key(event)
        self._by_id[event.id] = event
        self._by_key[key] = event
        if facts.address is not None:
            self._latest[facts.address] = event.id
        if facts.expiration is not None:
            self._expiry[key] = facts.expiration
            insort(self._expiry_order, (facts.expiration, key))
        if pinned:
            self._pinned.add(event.id)
        else:
            self._fifo[event.id] = None
        if self._pending is not None:
            self._pending[key] = (event, facts)
            return
        insort(self._time, key)
        for index, entry in self._list_slots(event, facts):
            keys = index.get(entry)
            if keys is None:
                index[entry] = [key]
            else:
                insort(keys, key)

    def _remove(self, event: Event) -> None:
        key = sort_key(event)
        facts = facts_of(event)
        del self._by_id[event.id]
        del self._by_key[key]
        if facts.address is not None and self._latest.get(facts.address) == event.id:
            del self._latest[facts.address]
        expiration = self._expiry.pop(key, None)
        if expiration is not None:
            order = self._expiry_order
            del order[bisect_left(order, (expiration, key))]
        self._pinned.discard(event.id)
        self._fifo.pop(event.id, None)
        if event.kind == DELETION_KIND:
            self._forget_deletion(event)
        if self._pending is not None and self._pending.pop(key, None) is not None:
            return
        list_remove(self._time, key)
        for index, entry in self._list_slots(event, facts):
            keys = index[entry]
            list_remove(keys, key)
            if not keys:
                del index[entry]

    def _index_bulk(self, pending: dict[Key, tuple[Event, Facts]] | None) -> None:
        """Append the keys stored during load() to their lists, then sort each touched list once."""
        if not pending:
            return
        touched: dict[int, list[Key]] = {id(self._time): self._time}
        self._time.extend(pending)
        for key, (event, facts) in pending.items():
            for index, entry in self._list_slots(event, facts):
                keys = index.get(entry)
                if keys is None:
                    keys = index[entry] = []
                keys.append(key)
                touched[id(keys)] = keys
        for keys in touched.values():
            # Timsort merges the old sorted run with the appended run in linear time.
            keys.sort()

    # ------------------------------------------------------------------ internals: reading

    def _plan(self, flt: Filter, limit: int | None) -> _Plan:
        """Pick the cheapest key lists that cover ``flt`` and say how to check the rest.

        The cost of an option is the number of keys in its lists. Conditions the chosen lists do
        not guarantee are checked per candidate: authors and kinds by one attribute look-up (about
        0.4 µs); a tag by membership in the set of its own index keys when that set is at most
        ``_SET_FACTOR`` times the walk (building costs ~60 ns a key, testing runs at C speed),
        else by :meth:`Filter.matches` (a few µs a candidate).
        """
        options: list[tuple[int, int, list[list[Key]], str]] = []
        by_condition: dict[str, tuple[int, list[list[Key]]]] = {}

        def option(rank: int, lists: list[list[Key] | None], condition: str) -> None:
            present = [keys for keys in lists if keys is not None]
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
                option(1, [self._tag.get((name, v)) for v in values], "#" + name)
        if kinds is not None:
            option(2, [self._kind.get(k) for k in kinds], "kinds")
        option(3, [self._time], "")
        cost, _, lists, chosen = min(options, key=lambda opt: (opt[0], opt[1]))
        covered = set(chosen.split("+"))
        walk = cost if limit is None else min(cost, limit)
        sets: list[set[Key]] = []
        check_authors = check_kinds = None
        slow = False
        if authors is not None and "authors" not in covered:
            check_authors = authors
        if kinds is not None and "kinds" not in covered:
            check_kinds = kinds
        for name in flt.tags:
            known = by_condition.get("#" + name)
            if "#" + name in covered:
                continue
            if known is not None and known[0] <= _SET_FACTOR * walk:
                members: set[Key] = set()
                for keys in known[1]:
                    lo, hi = bounds(keys, flt.since, flt.until)
                    members.update(keys[lo:hi])
                sets.append(members)
            else:
                slow = True
        return _Plan(lists, check_authors, check_kinds, sets, slow)

    def _expired_keys(self, now: float) -> set[Key]:
        """Keys of the stored events expired at ``now`` (NIP-40); computed once per query."""
        order = self._expiry_order
        if not order or order[0][0] > now:
            return set()
        # "~" sorts after every key character, so ties on expiration == now are included.
        end = bisect_right(order, (math.floor(now), "~"))
        return {key for _, key in islice(order, end)}

    def _run(self, flt: Filter, expired: set[Key], limit: int | None) -> list[Key]:
        """Keys matching one filter, newest first, at most ``limit``, none of ``expired``.

        Candidates flow through a chain of ``filter()`` stages so the common checks (expiry, tag
        membership) run at C speed; only authors/kinds/matches() checks call back into Python.
        """
        if limit is not None and limit <= 0:
            return []
        by_key = self._by_key
        if flt.ids is not None:
            hits = []
            for event_id in flt.ids:
                event = self._by_id.get(EventId(event_id))
                if event is not None and flt.matches(event):
                    key = sort_key(event)
                    if key not in expired:
                        hits.append(key)
            hits.sort(reverse=True)
            return hits if limit is None else hits[:limit]
        plan = self._plan(flt, limit)
        if not plan.lists:
            return []
        if len(plan.lists) == 1:
            keys = plan.lists[0]
            lo, hi = bounds(keys, flt.since, flt.until)
            candidates: Iterator[Key] = islice(reversed(keys), len(keys) - hi, len(keys) - lo)
        else:
            runs = []
            for keys in plan.lists:
                lo, hi = bounds(keys, flt.since, flt.until)
                if hi > lo:
                    runs.append(islice(reversed(keys), len(keys) - hi, len(keys) - lo))
            candidates = dedupe(heapq.merge(*runs, reverse=True))
        if expired:
            candidates = filterfalse(expired.__contains__, candidates)
        for members in plan.sets:
            candidates = filter(members.__contains__, candidates)
        authors, kinds = plan.authors, plan.kinds
        if authors is not None:
            candidates = filter(lambda key: by_key[key].pubkey in authors, candidates)
        if kinds is not None:
            candidates = filter(lambda key: by_key[key].kind in kinds, candidates)
        if plan.slow:
            candidates = filter(lambda key: flt.matches(by_key[key]), candidates)
        return list(candidates if limit is None else islice(candidates, limit))


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one filter is answered: walk ``lists`` newest first, keep keys passing the checks."""

    lists: list[list[Key]]
    authors: frozenset[str] | None  # still to check per candidate, when not None
    kinds: frozenset[int] | None
    sets: list[set[Key]]  # a candidate must be in every one
    slow: bool  # some condition only Filter.matches can check

    @property
    def exact(self) -> bool:
        return self.authors is None and self.kinds is None and not self.sets and not self.slow


def _as_tuple(filters: Sequence[Filter] | Filter) -> Sequence[Filter]:
    return (filters,) if hasattr(filters, "matches") else filters  # type: ignore[return-value]


def _effective_limit(flt: Filter, default_limit: int | None, max_limit: int | None) -> int | None:
    limit = flt.limit if flt.limit is not None else default_limit
    if max_limit is not None:
        limit = max_limit if limit is None else min(limit, max_limit)
    return limit
