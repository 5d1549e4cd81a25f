"""An in-memory Nostr event store: NIP-01 storage rules, NIP-09 deletions, NIP-40 expiry.

Theory of operation
-------------------
Every stored event is one *record* (see ``_record``): a ``bytes`` object holding a 43-byte header
(``created_at``, the inverted id, kind, a pinned flag) followed by the event's wire JSON. The
first 40 bytes are the sort key: ascending records are oldest first, and within one second the
*highest* id first, so walking a list backwards gives exactly the NIP-01 REQ order: newest
first, ties lowest id first. Records compare in C (``memcmp``) and cache their hash, and every
index holds the same record object. Nothing else is kept per event: no parsed :class:`Event`,
no tag tuples, no per-event dict. Pubkeys, kinds and tag values exist once per distinct value,
as the keys of the index that lists their events. A REQ is answered with the stored JSON bytes
(:meth:`EventStore.query_json`); :meth:`EventStore.query` decodes records back into events
for the Python API.

The indexes are plain Python lists of records kept sorted with :func:`bisect.insort`
(sortedcontainers is not installed, and a list slot costs 8 bytes): one over everything
(``created_at``), one per author, per kind, per (author, kind) and per single-letter tag value
(``tag[1]`` only, as NIP-01 says). ``since``/``until`` become two bisections; a ``limit`` stops
the walk after ``limit`` hits, so ``{"kinds":[1],"limit":500}`` touches about 500 records
whatever the store size. Live events have ``created_at`` near "now" and land at the end of the
lists, so an insert is usually an append.

For each filter :meth:`EventStore.query` picks the candidate source with the fewest records among
``ids`` (direct look-ups, always first), (author, kind) pairs, authors, each single-letter tag,
kinds, and finally the full time index; several lists are merged newest-first with
:func:`heapq.merge`. Conditions the chosen index does not guarantee are checked per candidate
by a slice of the record (author, kind), by membership in another index's records, or (rarely)
by decoding the record for :meth:`Filter.matches`.

Storage rules (what :meth:`EventStore.add` answers)
---------------------------------------------------
* ephemeral kinds (20000-29999) are never stored: ``AddResult(stored=False, message="",
  ephemeral=True)``; the relay broadcasts them and answers OK true.
* an event already stored: ``duplicate=True``, ``"duplicate: already have this event"`` (OK true).
* replaceable (0, 3, 10000-19999, per pubkey+kind) and addressable (30000-39999, per
  kind:pubkey:d) keep only the latest version, ties going to the lowest id. An incoming version
  that loses is refused with :data:`MSG_HAVE_NEWER` = ``"duplicate: have a newer version of this
  event"``. strfry says ``replaced: have newer event``, but ``replaced`` is not one of NIP-01's
  prefixes; ``duplicate`` is, and its meaning (the relay already has this data, nothing is wrong
  with your event) fits, so :attr:`AddResult.ok` is true for it as for any ``duplicate:`` answer.
* NIP-09: a kind-5 event deletes the events its ``e`` tags name and, for ``a`` tags, every version
  of that address with ``created_at`` up to the deletion's, but only events by the deletion's own
  author. Kind-5 events are stored and served like any other and can never be deleted. A deleted
  event that is submitted again, or a target that arrives *after* its deletion, is refused with
  :data:`MSG_DELETED` = ``"blocked: this event was deleted"`` (OK false).
* NIP-40: events whose ``expiration`` has passed are stored (the dataset ships some on purpose)
  but never returned by :meth:`~EventStore.query` or counted; :meth:`~EventStore.purge_expired`
  drops them for good.

Memory (the soak runs for hours)
--------------------------------
A stored event costs its JSON plus ~0.3-0.5 KB (record header, id index entry, list slots, its
share of the tag index); ``bench/bench_store_memory.py`` measures it. Nothing grows without a
stored event to account for it. With ``capacity`` the oldest *non-pinned* events (insertion
order) are evicted so live traffic cannot grow the relay without bound; pinned events (the
dataset, already bounded) are never evicted and do not count against ``capacity``; a newer
version of a pinned replaceable or addressable event takes over its pin, so a soak that keeps
updating dataset profiles never evicts a profile down to nothing.
Deletion tombstones (the ids and addresses a kind-5 names, needed to refuse late arrivals) live
exactly as long as the kind-5 event that made them: when that deletion is evicted, its tombstones
go with it, so a deleted event may be accepted again after its deletion has been evicted. Empty
index lists are dropped, so authors and tag values that come and go leave nothing behind.
:meth:`EventStore.snapshot` and :meth:`EventStore.from_snapshot` build an equal store that
shares the records (the relay's reset), so a second store costs only its indexes.
"""

from relaysim.store._record import sort_key
from relaysim.store._rules import MSG_DELETED, MSG_DUPLICATE, MSG_HAVE_NEWER, AddResult, LoadResult
from relaysim.store._store import EventStore, StoreSnapshot

__all__ = [
    "MSG_DELETED",
    "MSG_DUPLICATE",
    "MSG_HAVE_NEWER",
    "AddResult",
    "EventStore",
    "LoadResult",
    "StoreSnapshot",
    "sort_key",
]
