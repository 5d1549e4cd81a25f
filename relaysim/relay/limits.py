"""The limits the relay enforces, and the NIP-11 document that advertises them.

One frozen value, :class:`Limits`, is read by both the enforcement code and :func:`nip11_document`,
so what the relay says it enforces (NIP-11 ``limitation``) is by construction what it enforces.

How each limit is enforced (docs/relay.md repeats this for users):

* ``max_message_length`` -- the websocket layer's ``max_size``: a longer message (even split in
  continuation frames) fails the connection with close code 1009 (message too big) before it is
  buffered; RFC 6455 gives no way to skip one message and keep reading the next.
* ``max_subscriptions`` -- a REQ opening one more than this (reusing an open id is a replacement and
  always allowed) gets ``CLOSED`` ``rate-limited: ...``.
* ``max_subid_length`` -- a longer subscription id gets ``CLOSED`` ``invalid: ...``.
* ``max_filters`` -- a REQ or COUNT with more filters gets ``CLOSED`` ``invalid: ...`` (a REQ
  reusing an open id closes that subscription, as any refused REQ does). Each filter is a store
  query: 10,000 of them kept the relay busy for seconds, every other client waiting.
* ``max_limit`` -- each filter's ``limit`` is silently clamped to it (NIP-11 says so).
* ``default_limit`` -- the limit of a filter that has none.
* ``max_event_tags`` / ``max_content_length`` -- a published event beyond them gets ``OK`` false
  ``invalid: ...`` and is not stored. Content length counts characters, as NIP-11 says.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["SUPPORTED_NIPS", "Limits", "nip11_document"]

# 1 basic protocol, 9 deletions, 11 this document, 40 expiration, 45 COUNT (all via the store).
SUPPORTED_NIPS = (1, 9, 11, 40, 45)


@dataclass(frozen=True)
class Limits:
    """Per-connection and per-message limits; all positive integers."""

    max_message_length: int = 262_144
    max_subscriptions: int = 200
    max_limit: int = 5_000
    default_limit: int = 500
    max_subid_length: int = 64
    max_filters: int = 20
    max_event_tags: int = 2_500
    max_content_length: int = 102_400

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive integer, got {value!r}")
        if self.default_limit > self.max_limit:
            raise ValueError("Limits.default_limit must not exceed Limits.max_limit")


def nip11_document(limits: Limits, *, version: str, name: str = "relaysim") -> dict[str, Any]:
    """The NIP-11 relay information document for a relay enforcing ``limits``."""
    return {
        "name": name,
        "description": "relaysim test relay: a deterministic seeded dataset and controlled live traffic",
        "software": "https://github.com/relaysim/relaysim",
        "version": version,
        "supported_nips": list(SUPPORTED_NIPS),
        "limitation": {
            **asdict(limits),
            "auth_required": False,
            "payment_required": False,
            "restricted_writes": False,
        },
    }
