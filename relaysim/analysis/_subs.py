"""Subscriptions a client holds on the relay, named with their filters, as the assertions report them.

The relay's ``/stats`` lists every connection with its open subscriptions and their NIP-01 filters;
:class:`HeldSubscription` is one of them, kept typed from the harness's reading to the report so a
failing verdict can say *which* subscription was held (``"feed" {"kinds":[1,6],"limit":50}``), not
only how many. :func:`filter_text` shortens a filter for a sentence: long lists (a follow list of 500
pubkeys) are cut to their first items and a count. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["HeldSubscription", "SubscriptionCount", "describe_held", "filter_text", "held_from_rows"]

_LIST_SHOWN = 2
_HEX_SHOWN = 8


@dataclass(frozen=True, slots=True)
class HeldSubscription:
    """One open subscription: the connection it is on, its id and its filters (as the relay holds them)."""

    conn: int
    sub_id: str
    filters: tuple[Mapping[str, Any], ...] = ()

    def describe(self) -> str:
        shown = ", ".join(filter_text(f) for f in self.filters) or "no filter"
        return f"{self.sub_id!r} {shown}"


@dataclass(frozen=True, slots=True)
class SubscriptionCount:
    """The subscriptions held at one moment (``t``), with what the run was doing then (``at``)."""

    t: float
    at: str
    held: tuple[HeldSubscription, ...]

    @property
    def n(self) -> int:
        return len(self.held)


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:_HEX_SHOWN] + "…"
    return value


def filter_text(f: Mapping[str, Any]) -> str:
    """A filter as compact JSON with long lists cut: ``{"authors":["3bf0c63f…","…+498"],"kinds":[1]}``."""
    out: dict[str, Any] = {}
    for key in sorted(f):
        value = f[key]
        if isinstance(value, list):
            shown = [_short(v) for v in value[:_LIST_SHOWN]]
            if len(value) > _LIST_SHOWN:
                shown.append(f"…+{len(value) - _LIST_SHOWN}")
            out[key] = shown
        else:
            out[key] = _short(value)
    return orjson.dumps(out).decode()


def describe_held(held: Sequence[HeldSubscription], most: int = 10) -> str:
    """``'feed' {...}; 'thread-3' {...}`` (the first ``most``, then how many more), per connection when
    the subscriptions are on more than one."""
    conns = {h.conn for h in held}
    parts = [(f"connection {h.conn}: " if len(conns) > 1 else "") + h.describe() for h in held[:most]]
    if len(held) > most:
        parts.append(f"and {len(held) - most} more")
    return "; ".join(parts)


def held_from_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[HeldSubscription, ...]:
    """The open subscriptions of ``/stats`` connection rows, by connection then id."""
    out = []
    for row in rows:
        subs = row.get("subscriptions") or {}
        for sub_id in sorted(subs):
            filters = subs[sub_id] if isinstance(subs[sub_id], list) else []
            out.append(HeldSubscription(int(row["id"]), str(sub_id), tuple(filters)))
    return tuple(sorted(out, key=lambda h: (h.conn, h.sub_id)))
