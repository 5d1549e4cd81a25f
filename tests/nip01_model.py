"""A plain-Python model of a NIP-01 relay, for the socket-level property tests.

Why a second implementation: the property tests in ``test_relay_socket_properties.py`` talk to a real
``relaysim serve`` process and compare every answer with what this model predicts. The model is
written from the NIPs and from the answers ``docs/relay.md`` documents, not from the store: it
keeps a flat dict of stored events and scans it on every question (no indexes, no sort keys, no
``relaysim.store`` or ``relaysim.relay`` import), so a bug in the relay's indexes, planner or
fan-out cannot be copied into the oracle. Events are ``relaysim.nostr.Event`` values (they are only
data here); filters are the plain JSON dicts the tests send.

What it encodes (NIP section, then relaysim's documented choice where the NIP leaves one):

* NIP-01 order: ``created_at`` descending, ties lowest id first; each filter's ``limit`` (or
  ``default_limit``, clamped to ``max_limit``) applies to that filter alone, then the union.
* NIP-01 replaceable (0, 3, 10000-19999) and addressable (30000-39999, ``kind:pubkey:d``, no ``d``
  tag = ``""``): one version per address, the newest, ties to the lowest id; a losing version is
  ``OK true "duplicate: ..."`` and not broadcast.
* NIP-01 ephemeral (20000-29999): ``OK true``, broadcast, never stored.
* NIP-09: a kind 5 removes the events its ``e`` tags name and, for ``a`` tags, the versions of
  that address up to its ``created_at`` -- only its own author's, never a kind 5. A target that
  comes (back) later is ``OK false "blocked: ..."``. Deletion requests are stored like any event.
* NIP-40: an event whose expiration has passed is refused (``invalid:``), and a stored one that
  has expired since is neither returned nor counted.
* NIP-11 limits: ``max_event_tags`` / ``max_content_length`` -> ``invalid:``; ``max_subid_length``
  -> ``CLOSED invalid:``; more filters than ``max_filters`` -> ``CLOSED invalid:`` (the id's old
  subscription closed); one REQ more than ``max_subscriptions`` -> ``CLOSED rate-limited:``
  (replacing an open id is always allowed).

Time: the relay reads its own clock, so an answer is checked against the model at every moment
the relay may have used -- between sending the request and reading the answer. Expiry is the only
thing that changes with time and it is monotone, so the candidate answers are the one at the send
time plus one per expiration that falls inside that window (:meth:`Nip01Model.moments`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from relaysim.nostr.event import Event

__all__ = ["Limits", "Nip01Model", "Outcome", "ReqAnswer", "filter_matches", "nip01_order"]

DELETION = 5


@dataclass(frozen=True)
class Limits:
    """The NIP-11 ``limitation`` fields the model needs (read from the relay's document)."""

    max_subscriptions: int
    max_limit: int
    default_limit: int
    max_subid_length: int
    max_filters: int
    max_event_tags: int
    max_content_length: int
    max_message_length: int

    @classmethod
    def from_nip11(cls, limitation: Mapping[str, Any]) -> Limits:
        return cls(**{name: int(limitation[name]) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Outcome:
    """What publishing one event does: the OK fields (prefix only) and the effect on the store."""

    ok: bool
    prefix: str  # "" (plain acceptance) or the NIP-01 machine-readable prefix, e.g. "duplicate:"
    action: str  # "store", "broadcast" (ephemeral), or "none"

    @property
    def broadcast(self) -> bool:
        return self.action in ("store", "broadcast")


@dataclass(frozen=True)
class ReqAnswer:
    """How the relay answers a REQ: ``"open"`` (stored events then EOSE) or CLOSED with ``prefix``."""

    opens: bool
    prefix: str = ""


def kind_class(kind: int) -> str:
    if kind in (0, 3) or 10000 <= kind < 20000:
        return "replaceable"
    if 20000 <= kind < 30000:
        return "ephemeral"
    if 30000 <= kind < 40000:
        return "addressable"
    return "regular"


def first_value(event: Event, name: str) -> str | None:
    for tag in event.tags:
        if len(tag) >= 2 and tag[0] == name:
            return tag[1]
    return None


def address_of(event: Event) -> str | None:
    cls = kind_class(event.kind)
    if cls == "replaceable":
        return f"{event.kind}:{event.pubkey}:"
    if cls == "addressable":
        return f"{event.kind}:{event.pubkey}:{first_value(event, 'd') or ''}"
    return None


def expiration_of(event: Event) -> int | None:
    value = first_value(event, "expiration")
    return int(value) if value is not None and value.isascii() and value.isdigit() else None


def is_expired(event: Event, now: float) -> bool:
    expiration = expiration_of(event)
    return expiration is not None and expiration <= now


def filter_matches(flt: Mapping[str, Any], event: Event) -> bool:
    """NIP-01 filter semantics on the JSON dict: every condition holds (``limit`` aside)."""
    for key, value in flt.items():
        if key == "ids" and event.id not in value:
            return False
        if key == "authors" and event.pubkey not in value:
            return False
        if key == "kinds" and event.kind not in value:
            return False
        if key == "since" and event.created_at < value:
            return False
        if key == "until" and event.created_at > value:
            return False
        if key.startswith("#"):
            # Only a tag's first value is indexed (NIP-01).
            name = key[1:]
            if not any(len(tag) >= 2 and tag[0] == name and tag[1] in value for tag in event.tags):
                return False
    return True


def nip01_order(events: Iterable[Event]) -> list[Event]:
    """Newest first; same second, lowest id first."""
    return sorted(events, key=lambda ev: (-ev.created_at, ev.id))


def _newer(a: Event, b: Event) -> bool:
    """True when ``a`` wins over ``b`` as the version of one address: newer, or as new with the
    lower id (NIP-01: "the event with the lowest id (first in lexical order) should be retained")."""
    return a.created_at > b.created_at or (a.created_at == b.created_at and a.id < b.id)


@dataclass
class Nip01Model:
    """The relay's observable state: stored events, deletion facts and open subscriptions."""

    limits: Limits
    stored: dict[str, Event] = field(default_factory=dict)
    deleted_ids: set[tuple[str, str]] = field(default_factory=set)  # (target id, deleter pubkey)
    deleted_until: dict[str, int] = field(default_factory=dict)  # address -> latest deletion time
    subs: dict[int, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)  # conn -> id -> filters

    # -- publishing ----------------------------------------------------------------------------

    def outcome(self, event: Event, now: float) -> Outcome:
        """What the relay answers to ``event`` at time ``now`` (no state change)."""
        limits = self.limits
        if len(event.tags) > limits.max_event_tags or len(event.content) > limits.max_content_length:
            return Outcome(False, "invalid:", "none")
        if is_expired(event, now):
            return Outcome(False, "invalid:", "none")
        if kind_class(event.kind) == "ephemeral":
            return Outcome(True, "", "broadcast")
        if event.id in self.stored:
            return Outcome(True, "duplicate:", "none")
        address = address_of(event)
        if event.kind != DELETION:
            if (event.id, event.pubkey) in self.deleted_ids:
                return Outcome(False, "blocked:", "none")
            if address is not None and event.created_at <= self.deleted_until.get(address, -1):
                return Outcome(False, "blocked:", "none")
        if address is not None:
            current = self._current(address)
            if current is not None and _newer(current, event):
                return Outcome(True, "duplicate:", "none")
        return Outcome(True, "", "store")

    def outcomes(self, event: Event, t0: float, t1: float) -> list[Outcome]:
        """Every answer the relay may give when it decided at some moment in ``[t0, t1]``."""
        first, last = self.outcome(event, t0), self.outcome(event, t1)
        return [first] if first == last else [first, last]

    def commit(self, event: Event, outcome: Outcome) -> None:
        """Apply what the relay answered (one of :meth:`outcomes`)."""
        if outcome.action != "store":
            return
        address = address_of(event)
        if address is not None:
            current = self._current(address)
            if current is not None:
                del self.stored[current.id]
        self.stored[event.id] = event
        if event.kind == DELETION:
            self._delete(event)

    def _current(self, address: str) -> Event | None:
        for event in self.stored.values():
            if address_of(event) == address:
                return event
        return None

    def _delete(self, deletion: Event) -> None:
        author = deletion.pubkey
        for tag in deletion.tags:
            if len(tag) < 2:
                continue
            if tag[0] == "e":
                self.deleted_ids.add((tag[1], author))
                target = self.stored.get(tag[1])
                if target is not None and target.pubkey == author and target.kind != DELETION:
                    del self.stored[target.id]
            elif tag[0] == "a":
                address = _own_address(tag[1], author)
                if address is None:
                    continue
                self.deleted_until[address] = max(self.deleted_until.get(address, -1), deletion.created_at)
                current = self._current(address)
                if current is not None and current.created_at <= deletion.created_at:
                    del self.stored[current.id]

    # -- reading -------------------------------------------------------------------------------

    def moments(self, t0: float, t1: float) -> list[float]:
        """The relay's possible clocks in ``[t0, t1]`` that give different answers (see module doc)."""
        flips = {
            exp for ev in self.stored.values() if (exp := expiration_of(ev)) is not None and t0 < exp <= t1
        }
        return [t0, *sorted(flips)]

    def query(self, filters: Sequence[Mapping[str, Any]], now: float) -> list[Event]:
        """The stored events a REQ with ``filters`` gets before its EOSE, in order."""
        visible = [ev for ev in self.stored.values() if not is_expired(ev, now)]
        chosen: dict[str, Event] = {}
        for flt in filters:
            limit = flt.get("limit", self.limits.default_limit)
            limit = min(limit, self.limits.max_limit)
            for event in nip01_order(ev for ev in visible if filter_matches(flt, ev))[:limit]:
                chosen[event.id] = event
        return nip01_order(chosen.values())

    def count(self, filters: Sequence[Mapping[str, Any]], now: float) -> int:
        """NIP-45: matching stored, unexpired events; ``limit`` does not apply."""
        return sum(
            1
            for ev in self.stored.values()
            if not is_expired(ev, now) and any(filter_matches(flt, ev) for flt in filters)
        )

    # -- subscriptions -------------------------------------------------------------------------

    def connect(self, conn: int) -> None:
        self.subs[conn] = {}

    def disconnect(self, conn: int) -> None:
        del self.subs[conn]

    def req(self, conn: int, sub_id: str, filters: list[dict[str, Any]]) -> ReqAnswer:
        """Open (or replace) a subscription, or say how the relay refuses it."""
        subs = self.subs[conn]
        if len(sub_id) > self.limits.max_subid_length:
            subs.pop(sub_id, None)
            return ReqAnswer(False, "invalid:")
        if len(filters) > self.limits.max_filters:
            subs.pop(sub_id, None)
            return ReqAnswer(False, "invalid:")
        if sub_id not in subs and len(subs) >= self.limits.max_subscriptions:
            return ReqAnswer(False, "rate-limited:")
        subs[sub_id] = filters
        return ReqAnswer(True)

    def close(self, conn: int, sub_id: str) -> None:
        self.subs[conn].pop(sub_id, None)

    def live_targets(self, event: Event) -> dict[int, list[str]]:
        """conn -> the ids of its open subscriptions that a newly broadcast ``event`` reaches."""
        return {
            conn: sorted(
                sub_id for sub_id, filters in subs.items() if any(filter_matches(f, event) for f in filters)
            )
            for conn, subs in self.subs.items()
        }


def _own_address(value: str, author: str) -> str | None:
    """The address an ``a`` tag names, normalised, if it is the deleter's own replaceable or
    addressable event (NIP-09: only the author may delete)."""
    parts = value.split(":", 2)
    if len(parts) != 3 or parts[1] != author or not parts[0].isdigit():
        return None
    kind = int(parts[0])
    cls = kind_class(kind)
    if cls == "replaceable":
        return f"{kind}:{author}:"
    if cls == "addressable":
        return f"{kind}:{author}:{parts[2]}"
    return None
