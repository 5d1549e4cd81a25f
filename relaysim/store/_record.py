"""How the store holds one event: a single ``bytes`` object, a 43-byte header and the wire JSON.

Theory of operation
-------------------
A parsed :class:`~relaysim.nostr.event.Event` costs ~2-10 KB of Python objects (a ``__dict__``,
a string per field, a tuple and strings per tag: a kind-3 follow list with 50 ``p`` tags is
~9 KB), although a relay only ever *sends* its JSON. So the store keeps, per event, one record::

    [0:8]    created_at, unsigned big-endian
    [8:40]   the id's 32 bytes, each inverted (255 - b)
    [40:42]  kind, unsigned big-endian
    [42]     flags (bit 0: pinned)
    [43:]    the event's wire JSON (``Event.json``), byte for byte

The first 40 bytes are the *sort key*: records compare as bytes (``memcmp``, in C), ascending is
oldest first and, within one second, highest id first, so walking a sorted list backwards is
NIP-01's REQ order (newest first, ties lowest id first). No two events share a key, so two records
are always ordered by their first 40 bytes; the JSON behind them never takes part. ``bytes``
caches its hash, so sets of records (expired events, tag membership) hash each record once.

A record is what every index list holds, so an event costs one object (43 bytes of header beyond
its JSON) plus its list slots. The canonical JSON starts ``{"id":"<64 hex>","pubkey":"<64 hex>"``,
so the id and pubkey are read at fixed offsets without decoding; the store refuses events whose id
or pubkey is not 64 lowercase hex (``parse_event`` already does), which keeps those offsets true.
:func:`decode` turns a record back into an :class:`Event` for the Python API (tests, harness);
the relay's REQ path sends :func:`wire` and never decodes.
"""

from __future__ import annotations

import orjson

from relaysim.nostr.event import Event, EventId, PubKey

__all__ = [
    "HEADER",
    "KEY",
    "Record",
    "created_at_of",
    "decode",
    "id_of",
    "is_pinned",
    "kind_bytes",
    "kind_of",
    "make_record",
    "pubkey_slice",
    "raw_id",
    "raw_id_of",
    "sort_key",
    "time_prefix",
    "wire",
]

Record = bytes
KEY = 40  # created_at + inverted id: unique per event, the whole sort order
HEADER = 43
_KIND = slice(40, 42)
_FLAGS = 42
PINNED = 1
# The canonical JSON's fixed prefix: {"id":"<64>","pubkey":"<64>", ...
_ID_AT = HEADER + 7
_PUBKEY_AT = HEADER + 83
pubkey_slice = slice(_PUBKEY_AT, _PUBKEY_AT + 64)
_INVERT = bytes(range(255, -1, -1))


def time_prefix(created_at: int) -> bytes:
    """The 8 bytes every record created at ``created_at`` starts with (and sorts after)."""
    return created_at.to_bytes(8, "big")


def raw_id(event_id: str) -> bytes | None:
    """The 32 bytes of a 64-lowercase-hex id, or None for anything else (no event has that id)."""
    try:
        raw = bytes.fromhex(event_id)
    except ValueError:
        return None
    # fromhex also takes upper case and spaces; an id is exactly 64 lowercase hex digits.
    return raw if len(raw) == 32 and raw.hex() == event_id else None


def sort_key(event: Event) -> bytes:
    """The first :data:`KEY` bytes of ``event``'s record (its id must be 64 lowercase hex)."""
    return time_prefix(event.created_at) + bytes.fromhex(event.id).translate(_INVERT)


def make_record(event: Event, pinned: bool) -> Record:
    """The record of a checked event: created_at in 0..2**53-1, kind in 0..65535, hex id/pubkey."""
    flags = b"\x01" if pinned else b"\x00"
    return b"".join((sort_key(event), event.kind.to_bytes(2, "big"), flags, event.json))


def wire(record: Record) -> bytes:
    """The event's wire JSON, exactly as :attr:`Event.json` encoded it when it was stored."""
    return record[HEADER:]


def created_at_of(record: Record) -> int:
    return int.from_bytes(record[:8], "big")


def kind_of(record: Record) -> int:
    return int.from_bytes(record[_KIND], "big")


def kind_bytes(kind: int) -> bytes | None:
    """How ``kind`` appears in a record header (None: no record has it)."""
    return kind.to_bytes(2, "big") if 0 <= kind <= 0xFFFF else None


def raw_id_of(record: Record) -> bytes:
    """The 32-byte id (the key of the store's id index)."""
    return record[8:KEY].translate(_INVERT)


def id_of(record: Record) -> EventId:
    return EventId(record[_ID_AT : _ID_AT + 64].decode("ascii"))


def is_pinned(record: Record) -> bool:
    return bool(record[_FLAGS] & PINNED)


def decode(record: Record) -> Event:
    """The :class:`Event` back from its record; its ``json`` is the stored bytes themselves.

    Trusted: the record was made from a checked event, so nothing is validated again.
    """
    data = record[HEADER:]
    obj = orjson.loads(data)
    event = Event(
        EventId(obj["id"]),
        PubKey(obj["pubkey"]),
        obj["created_at"],
        obj["kind"],
        tuple(tuple(tag) for tag in obj["tags"]),
        obj["content"],
        obj["sig"],
    )
    # Seed the cached_property: the Event serves the very bytes the store holds.
    event.__dict__["json"] = data
    return event
