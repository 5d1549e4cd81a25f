"""The Nostr protocol core: pure functions and values, no I/O."""

from relaysim.nostr.event import (
    Event,
    EventId,
    KindClass,
    PubKey,
    Tags,
    compute_id,
    event_from_json,
    kind_class,
    parse_event,
    pubkey_of,
    serialize_for_id,
    sign_event,
    verify_event,
)

__all__ = [
    "Event",
    "EventId",
    "KindClass",
    "PubKey",
    "Tags",
    "compute_id",
    "event_from_json",
    "kind_class",
    "parse_event",
    "pubkey_of",
    "serialize_for_id",
    "sign_event",
    "verify_event",
]
