"""An in-memory Nostr event store: NIP-01 storage rules, NIP-09 deletions, NIP-40 expiry.

Theory of operation
-------------------
Every stored event gets one *sort key*, an 80-character string: ``created_at`` as 16 digits, then
the id with each hex digit inverted. Ascending keys are oldest first, and within one second the
*highest* id first, so walking a key list backwards gives exactly the NIP-01 REQ order: newest
first, ties lowest id first. Strings compare in C and cache their hash (see ``_keys``), and
every index shares the same key object.

The indexes are plain Python lists of keys kept sorted with :func:`bisect.insort` (sortedcontainers
is not installed, and a list of shared keys costs 8 bytes an entry): one over everything
(``created_at``), one per author, per kind, per (author, kind) and per single-letter tag value
(``tag[1]`` only, as NIP-01 says). ``since``/``until`` become two bisections; a ``limit`` stops
the walk after ``limit`` hits, so ``{"kinds":[1],"limit":500}`` touches about 500 keys whatever
the store size. Live events have ``created_at`` near "now" and land at the end of the lists, so
an insert is usually an append.

For each filter :meth:`EventStore.query` picks the candidate source with the fewest keys among
``ids`` (direct look-ups, always first), (author, kind) pairs, authors, each single-letter tag,
kinds, and finally the full time index; several lists are merged newest-first with
:func:`heapq.merge`. Conditions the chosen index does not guarantee are checked per candidate
by attribute, by membership in another index's keys, or (rarely) by :meth:`Filter.matches`.

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
Nothing grows without a stored event to account for it. With ``capacity`` the oldest *non-pinned*
events (insertion order) are evicted so live traffic cannot grow the relay without bound; pinned
events (the dataset, already bounded) are never evicted and do not count against ``capacity``;
a newer version of a pinned replaceable or addressable event takes over its pin, so a soak that
keeps updating dataset profiles never evicts a profile down to nothing.
Deletion tombstones (the ids and addresses a kind-5 names, needed to refuse late arrivals) live
exactly as long as the kind-5 event that made them: when that deletion is evicted, its tombstones
go with it, so a deleted event may be accepted again after its deletion has been evicted. Empty
index lists are dropped, so authors and tag values that come and go leave nothing behind.
"""

from relaysim.store._keys import sort_key
from relaysim.store._rules import MSG_DELETED, MSG_DUPLICATE, MSG_HAVE_NEWER, AddResult, LoadResult
from relaysim.store._store import EventStore

__all__ = [
    "MSG_DELETED",
    "MSG_DUPLICATE",
    "MSG_HAVE_NEWER",
    "AddResult",
    "EventStore",
    "LoadResult",
    "sort_key",
]
