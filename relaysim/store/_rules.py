"""The storage rules that do not need the indexes: answers, per-event facts, NIP-09 targets.

Pure functions of one event, kept apart from the indexes. :func:`facts_of` reads an event's
indexed tags, address and expiration in one pass over its tags; it must agree with
:class:`~relaysim.nostr.event.Event`'s own ``address`` and ``expiration`` (a test checks it).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

from relaysim.nostr.event import Event, EventId, KindClass, kind_class

__all__ = [
    "DELETION_KIND",
    "INDEXED_TAGS",
    "MSG_DELETED",
    "MSG_DUPLICATE",
    "MSG_HAVE_NEWER",
    "AddResult",
    "Facts",
    "LoadResult",
    "deletion_targets",
    "facts_from",
    "facts_of",
]

MSG_DUPLICATE = "duplicate: already have this event"
MSG_HAVE_NEWER = "duplicate: have a newer version of this event"
MSG_DELETED = "blocked: this event was deleted"

INDEXED_TAGS = frozenset(string.ascii_letters)
DELETION_KIND = 5


@dataclass(frozen=True, slots=True)
class AddResult:
    """What :meth:`EventStore.add` did with one event.

    ``message`` is ``""`` when the event was taken, else a NIP-01 prefixed reason ready for OK.
    ``replaced``/``deleted`` name the events this one removed (older versions, NIP-09 targets).
    """

    stored: bool
    duplicate: bool = False
    message: str = ""
    replaced: tuple[EventId, ...] = ()
    deleted: tuple[EventId, ...] = ()
    ephemeral: bool = False

    @property
    def ok(self) -> bool:
        """The boolean of the OK answer: true when stored, ephemeral, or a ``duplicate:``."""
        return self.stored or self.ephemeral or self.message.startswith("duplicate:")

    @property
    def broadcast(self) -> bool:
        """Whether live subscriptions should receive the event (stored or ephemeral)."""
        return self.stored or self.ephemeral


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Totals of one :meth:`EventStore.load` call."""

    stored: int
    duplicates: int
    refused: int
    ephemeral: int
    replaced: int
    deleted: int


@dataclass(frozen=True, slots=True)
class Facts:
    """What the store's indexes need from an event: its author and kind, and its tags read in one pass."""

    pubkey: str
    kind: int
    index_tags: frozenset[tuple[str, str]]
    address: str | None
    expiration: int | None


def facts_of(event: Event) -> Facts:
    """Indexed (name, value) tag pairs, NIP-01 address and NIP-40 expiration of ``event``."""
    return facts_from(event.pubkey, event.kind, event.tags)


def facts_from(pubkey: str, kind: int, tags: Sequence[Sequence[str]]) -> Facts:
    """:func:`facts_of` from the fields alone (the store reads them from a record's JSON)."""
    pairs: set[tuple[str, str]] = set()
    d_value: str | None = None
    expiration: int | None = None
    seen_expiration = False
    for tag in tags:
        if len(tag) < 2:
            continue
        name = tag[0]
        if name in INDEXED_TAGS:
            pairs.add((name, tag[1]))
            if name == "d" and d_value is None:
                d_value = tag[1]
        elif name == "expiration" and not seen_expiration:
            # Same rule as Event.expiration: the first expiration tag decides, ASCII digits only.
            seen_expiration = True
            value = tag[1]
            if value.isascii() and value.isdigit():
                expiration = int(value)
    cls = kind_class(kind)
    if cls is KindClass.ADDRESSABLE:
        address: str | None = f"{kind}:{pubkey}:{d_value or ''}"
    elif cls is KindClass.REPLACEABLE:
        address = f"{kind}:{pubkey}:"
    else:
        address = None
    return Facts(pubkey, kind, frozenset(pairs), address, expiration)


def deletion_targets(deletion: Event) -> tuple[list[EventId], list[str]]:
    """The ids (``e``) and normalised addresses (``a``) a kind-5 event names for its own author.

    ``a`` values naming another pubkey or a kind that is neither replaceable nor addressable are
    dropped here: NIP-09 lets an author delete only their own events.
    """
    ids: list[EventId] = []
    addresses: list[str] = []
    for tag in deletion.tags:
        if len(tag) < 2:
            continue
        if tag[0] == "e":
            ids.append(EventId(tag[1]))
        elif tag[0] == "a":
            parts = tag[1].split(":", 2)
            if len(parts) != 3 or parts[1] != deletion.pubkey:
                continue
            try:
                kind = int(parts[0])
            except ValueError:
                continue
            cls = kind_class(kind)
            if cls is KindClass.REPLACEABLE:
                addresses.append(f"{kind}:{parts[1]}:")
            elif cls is KindClass.ADDRESSABLE:
                addresses.append(f"{kind}:{parts[1]}:{parts[2]}")
    return ids, addresses
