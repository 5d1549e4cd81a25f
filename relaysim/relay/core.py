"""The relay's NIP-01 logic, Sans-I/O: messages in, bytes out, no sockets and no trio.

Theory of operation. A :class:`RelayCore` owns the :class:`~relaysim.store.EventStore` and one
:class:`Session` per open websocket. The I/O layer (``relaysim.relay.websocket``) feeds every
complete text message of a connection to :meth:`RelayCore.receive`, which answers with a
:class:`Reply`:

* ``messages`` -- bytes to send to that client now (OK, NOTICE, CLOSED, COUNT);
* ``query`` -- for an accepted REQ, the stored events to stream; the I/O layer encodes and sends
  them in batches, checking :attr:`Subscription.active` between batches (that is how a CLOSE that
  arrives mid-query cancels it), then calls :meth:`RelayCore.finish_query` for the EOSE;
* ``deliveries`` -- for an accepted EVENT, the live fan-out: ``(subscription, EVENT bytes)`` for
  every open subscription, of every connection, that the event matches.

A subscription is live from the moment its REQ is accepted, so an event published while its stored
events are still being sent reaches it too (possibly before its EOSE; NIP-01 allows that). Closing or
replacing a subscription sets ``active = False`` at once: nothing queued for it is sent any more,
and no later event is matched against it -- an event published after a CLOSE never reaches it.

Answers (NIP-01 prefixes): a refused REQ gets ``CLOSED`` (``rate-limited:`` too many
subscriptions, ``invalid:`` id too long or bad filter, ``unsupported:`` unknown filter key); a
published event gets ``OK`` (``duplicate:`` is ok=true; ``invalid:`` ...); a message that is not a
NIP-01 message gets ``NOTICE``.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from relaysim.errors import InvalidEvent
from relaysim.nostr.event import Event, verify_event, verify_id
from relaysim.nostr.filter import Filter
from relaysim.nostr.messages import (
    AuthMessage,
    CloseMessage,
    CountMessage,
    EventMessage,
    MessageRejected,
    ReqMessage,
    encode_closed,
    encode_count,
    encode_eose,
    encode_event,
    encode_notice,
    encode_ok,
    parse_client_message,
)
from relaysim.nostr.signatures import Signed, check_signatures
from relaysim.relay.limits import Limits
from relaysim.store import EventStore

__all__ = ["Delivery", "Query", "RelayCore", "Reply", "Session", "Signed", "Subscription", "check_signatures"]

# How many closed connections /stats keeps for a harness that looks after the tab is gone.
CLOSED_HISTORY = 50
# What one connection's open subscriptions may hold in filters, as :func:`filter_weight` counts:
# with 200 subscriptions of 256 KiB REQs a client could otherwise make the relay hold ~100 MB of
# parsed ids and authors. 8 MiB is ~60,000 ids or authors: a feed of 1,000 follows takes ~130 KB.
MAX_FILTER_BYTES = 8 * 1024 * 1024


def filter_weight(filters: Iterable[Filter]) -> int:
    """Roughly what ``filters`` hold in memory: each id, author and tag value a str in a frozenset
    (its length + 64 bytes), each kind 8 bytes, each filter 256."""
    total = 0
    for flt in filters:
        total += 256 + 8 * len(flt.kinds or ())
        for values in (flt.ids, flt.authors, *flt.tags.values()):
            if values:
                total += sum(map(len, values)) + 64 * len(values)
    return total


@dataclass(eq=False)
class Subscription:
    """One open REQ of one connection. ``active`` turns False on CLOSE, replacement or drop."""

    sub_id: str
    filters: tuple[Filter, ...]
    session: Session
    opened_at: float
    active: bool = True
    eose_at: float | None = None
    events_sent: int = 0
    #: Creation order across the relay: a fan-out that several distinct filters match sends in it.
    seq: int = 0
    weight: int = 0  # filter_weight(filters), counted against the connection's MAX_FILTER_BYTES


@dataclass(eq=False)
class Session:
    """What the relay knows about one websocket connection; the rows of ``/stats``."""

    conn_id: int
    remote: str
    opened_at: float
    subs: dict[str, Subscription] = field(default_factory=dict)
    closed_at: float | None = None
    messages_received: int = 0
    events_sent: int = 0
    live_events_sent: int = 0
    bytes_sent: int = 0
    writes: int = 0
    subs_opened: int = 0
    subs_closed: int = 0
    last_eose_at: float | None = None
    close_code: int | None = None
    filter_bytes: int = 0  # the open subscriptions' filter_weight, all together
    #: The I/O layer's handle on this connection (opaque here; None when it has none or is gone):
    #: a fan-out finds each subscriber's connection through it.
    transport: Any = None

    def restart_counters(self) -> None:
        """The harness reset the relay: this connection's figures count from zero again."""
        self.messages_received = self.events_sent = self.live_events_sent = 0
        self.bytes_sent = self.writes = self.subs_opened = self.subs_closed = 0
        self.last_eose_at = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.conn_id,
            "remote": self.remote,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "subscriptions": {sid: [f.to_dict() for f in sub.filters] for sid, sub in self.subs.items()},
            "messages_received": self.messages_received,
            "events_sent": self.events_sent,
            "live_events_sent": self.live_events_sent,
            "bytes_sent": self.bytes_sent,
            "writes": self.writes,
            "subs_opened": self.subs_opened,
            "subs_closed": self.subs_closed,
            "last_eose_at": self.last_eose_at,
            "close_code": self.close_code,
        }


@dataclass(frozen=True)
class Query:
    """Stored events a REQ must send before its EOSE (newest first, already limited)."""

    sub: Subscription
    events: Sequence[bytes]  # each event's stored wire JSON (EventStore.query_json, a lazy view)

    def batch(self, start: int, size: int, max_bytes: int) -> tuple[list[bytes], int]:
        """EVENT messages from ``events[start]`` on and where the next batch starts.

        At most ``size`` messages, and no more once they hold ``max_bytes`` (always at least one):
        the I/O layer encodes a batch only when the connection has room for it, so a query's
        encoded frames never pile up ahead of the outbox. ``len(events)`` as the next start: done.
        """
        sub_id = self.sub.sub_id
        events = self.events
        end = min(len(events), start + size)
        out: list[bytes] = []
        total = 0
        index = start
        while index < end and total < max_bytes:
            payload = encode_event(sub_id, events[index])
            out.append(payload)
            total += len(payload)
            index += 1
        return out, index

    def batches(self, size: int, max_bytes: int = sys.maxsize) -> Iterator[list[bytes]]:
        """EVENT messages in groups (see :meth:`batch`), encoded lazily: a cancelled query encodes no more."""
        start = 0
        while start < len(self.events):
            out, start = self.batch(start, size, max_bytes)
            yield out


_new_tuple = tuple.__new__


def _creation_order(sub: Subscription) -> int:
    return sub.seq


class Delivery(NamedTuple):
    """One live event for one subscription (a tuple: a fan-out makes one per subscriber)."""

    sub: Subscription
    payload: bytes


@dataclass
class Reply:
    """What :meth:`RelayCore.receive` wants sent; see the module docstring."""

    messages: list[bytes] = field(default_factory=list)
    query: Query | None = None
    deliveries: list[Delivery] = field(default_factory=list)


@dataclass
class Totals:
    """Relay-wide counters, monotonic between two resets (see :meth:`RelayCore.reset`)."""

    connections_opened: int = 0
    messages_received: int = 0
    events_received: int = 0
    events_accepted: int = 0
    events_duplicate: int = 0
    events_rejected: int = 0
    events_published_in_process: int = 0
    events_sent: int = 0
    live_events_sent: int = 0
    live_deliveries: int = 0
    bytes_sent: int = 0
    subs_opened: int = 0
    subs_closed: int = 0
    subs_refused: int = 0
    counts_answered: int = 0
    notices_sent: int = 0
    slow_client_disconnects: int = 0
    connection_errors: int = 0
    # EVENTs written for a subscription already closed or replaced: 0 unless CLOSE stopped winning
    # (the writer drops such units; this counts at the one place EVENTs are recorded as sent).
    events_after_close: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(**{name: value + getattr(other, name) for name, value in vars(self).items()})


class RelayCore:
    """NIP-01 state of the whole relay: store, sessions, subscriptions, counters."""

    def __init__(
        self,
        store: EventStore | None = None,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store if store is not None else EventStore()
        self.limits = limits or Limits()
        self.clock = clock
        self.started_at = clock()
        self.sessions: dict[int, Session] = {}
        self.closed_sessions: deque[Session] = deque(maxlen=CLOSED_HISTORY)
        self.totals = Totals()
        self._totals_before_reset = Totals()
        self.resets = 0
        self.reset_at: float | None = None
        self.last_eose_at: float | None = None
        self._next_conn_id = 1
        # Live matching: each distinct filter of the open subscriptions, with the subscriptions
        # that hold it in creation order. A new event is matched once per distinct filter, not
        # once per subscription (1,000 clients with one feed's filter: one match).
        self._watching: dict[Filter, dict[Subscription, None]] = {}
        self.max_filter_bytes = MAX_FILTER_BYTES
        self._next_seq = 1

    # -- connections ---------------------------------------------------------------------------

    def open_session(self, remote: str) -> Session:
        session = Session(self._next_conn_id, remote, self.clock())
        self._next_conn_id += 1
        self.sessions[session.conn_id] = session
        self.totals.connections_opened += 1
        return session

    def close_session(self, session: Session, close_code: int | None = None) -> None:
        """The connection is gone: its subscriptions end (without CLOSED, nobody would read it)."""
        if self.sessions.pop(session.conn_id, None) is None:
            return
        for sub in session.subs.values():
            self._deactivate(sub)
        session.subs.clear()
        session.closed_at = self.clock()
        session.close_code = close_code
        self.closed_sessions.append(session)

    # -- client messages -----------------------------------------------------------------------

    def receive(self, session: Session, data: str | bytes, signed: Signed = frozenset()) -> Reply:
        """Handle one complete text message from ``session``'s client.

        ``signed`` holds events whose signature was already checked (:func:`check_signatures`).
        """
        session.messages_received += 1
        self.totals.messages_received += 1
        try:
            # Signatures are checked after the cheap size limits, in _on_event.
            message = parse_client_message(data, verify=False)
        except MessageRejected as exc:
            return self._rejected(session, exc)
        if isinstance(message, EventMessage):
            return self._on_event(message.event, signed)
        if isinstance(message, ReqMessage):
            return self._on_req(session, message.sub_id, message.filters)
        if isinstance(message, CloseMessage):
            self._close(session, message.sub_id)
            return Reply()
        if isinstance(message, CountMessage):
            return self._on_count(message.query_id, message.filters)
        if isinstance(message, AuthMessage):
            reason = "unsupported: this relay does not use NIP-42 AUTH"
            return Reply([encode_ok(message.event.id, False, reason)])
        return self._notice(f"invalid: unsupported message type {type(message).__name__}")  # pragma: no cover

    def _rejected(self, session: Session, exc: MessageRejected) -> Reply:
        reply = exc.reply
        if reply.startswith(b'["NOTICE"'):
            self.totals.notices_sent += 1
        elif reply.startswith(b'["OK"'):
            self.totals.events_received += 1
            self.totals.events_rejected += 1
        elif reply.startswith(b'["CLOSED"'):
            self.totals.subs_refused += 1
            # The client now believes this id is closed; make it so (a REQ reusing an open id
            # with a bad filter must not leave the old subscription running unseen).
            if exc.verb == "REQ" and exc.sub_id is not None:
                self._close(session, exc.sub_id)
        return Reply([reply])

    def _notice(self, message: str) -> Reply:
        self.totals.notices_sent += 1
        return Reply([encode_notice(message)])

    def _on_event(self, event: Event, signed: Signed = frozenset()) -> Reply:
        self.totals.events_received += 1
        limits = self.limits
        if len(event.tags) > limits.max_event_tags:
            reason = (
                f"invalid: event has {len(event.tags)} tags; "
                f"this relay accepts at most {limits.max_event_tags}"
            )
            return self._refuse_event(event, reason)
        if len(event.content) > limits.max_content_length:
            reason = (
                f"invalid: content is {len(event.content)} characters; "
                f"this relay accepts at most {limits.max_content_length}"
            )
            return self._refuse_event(event, reason)
        try:
            if (event.id, event.pubkey, event.sig) in signed:
                verify_id(event)
            else:
                verify_event(event)
        except InvalidEvent as exc:
            return self._refuse_event(event, exc.reason)
        ok, message, deliveries = self._accept(event)
        return Reply([encode_ok(event.id, ok, message)], deliveries=deliveries)

    def _refuse_event(self, event: Event, reason: str) -> Reply:
        self.totals.events_rejected += 1
        return Reply([encode_ok(event.id, False, reason)])

    def _accept(self, event: Event) -> tuple[bool, str, list[Delivery]]:
        """Store ``event`` (ephemeral kinds are not stored) and fan it out; returns the OK fields."""
        now = self.clock()
        if event.is_expired(now):
            # NIP-40: "Relays SHOULD drop any events that are published to them if they are expired".
            self.totals.events_rejected += 1
            return False, "invalid: event has expired", []
        result = self.store.add(event, now=now)
        if result.duplicate:
            self.totals.events_duplicate += 1
            return True, result.message or "duplicate: already have this event", []
        if not result.broadcast:
            if result.ok:  # "duplicate: have a newer version" -- ok, nothing new to pass on
                self.totals.events_duplicate += 1
            else:
                self.totals.events_rejected += 1
            return result.ok, result.message or "error: not stored", []
        self.totals.events_accepted += 1
        return True, "", self.fan_out(event)

    def publish(self, event: Event, *, verify: bool = False) -> tuple[bool, str, list[Delivery]]:
        """An event from inside the process (traffic, tests): store and fan out like a client's.

        ``verify`` defaults to False because in-process events are signed by relaysim itself.
        Returns ``(ok, message, deliveries)`` as an OK message would carry them.
        """
        self.totals.events_published_in_process += 1
        if verify:
            try:
                verify_event(event)
            except InvalidEvent as exc:
                return False, exc.reason, []
        return self._accept(event)

    def fan_out(self, event: Event) -> list[Delivery]:
        """Every active subscription of every connection that ``event`` matches, in creation order.

        Each distinct filter is matched once (filters are immutable values); a subscription two of
        whose filters match gets the event once. Subscriptions that share an id share one encoded
        EVENT message (the I/O layer then frames it once).
        """
        hits = [subs for flt, subs in self._watching.items() if flt.matches(event)]
        if not hits:
            return []
        matched: Iterable[Subscription]
        if len(hits) == 1:
            matched = hits[0]
        else:
            merged: dict[Subscription, None] = {}
            for subs in hits:
                merged.update(subs)
            matched = sorted(merged, key=_creation_order)
        event_json = event.json
        encoded: dict[str, bytes] = {}
        deliveries: list[Delivery] = []
        append = deliveries.append
        for sub in matched:
            sub_id = sub.sub_id
            payload = encoded.get(sub_id)
            if payload is None:
                payload = encoded[sub_id] = encode_event(sub_id, event_json)
            append(_new_tuple(Delivery, (sub, payload)))  # Delivery(sub, payload), a third cheaper
        self.totals.live_deliveries += len(deliveries)
        return deliveries

    def _watch(self, sub: Subscription) -> None:
        """Match new events against ``sub`` from now on (filters that can never match are left out)."""
        watching = self._watching
        for flt in sub.filters:
            if not flt.never_matches:
                subs = watching.get(flt)
                if subs is None:
                    subs = watching[flt] = {}
                subs[sub] = None

    def _unwatch(self, sub: Subscription) -> None:
        watching = self._watching
        for flt in sub.filters:
            subs = watching.get(flt)
            if subs is not None:
                subs.pop(sub, None)
                if not subs:
                    del watching[flt]

    def _on_req(self, session: Session, sub_id: str, filters: tuple[Filter, ...]) -> Reply:
        limits = self.limits
        if len(sub_id) > limits.max_subid_length:
            self._close(session, sub_id)
            self.totals.subs_refused += 1
            reason = f"invalid: subscription id is longer than {limits.max_subid_length} characters"
            return Reply([encode_closed(sub_id, reason)])
        if len(filters) > limits.max_filters:
            self._close(session, sub_id)
            return self._too_many_filters(sub_id, len(filters))
        replacing = sub_id in session.subs
        if not replacing and len(session.subs) >= limits.max_subscriptions:
            self.totals.subs_refused += 1
            reason = (
                f"rate-limited: too many open subscriptions (at most {limits.max_subscriptions} "
                "per connection); CLOSE one first"
            )
            return Reply([encode_closed(sub_id, reason)])
        weight = filter_weight(filters)
        held = session.filter_bytes - (session.subs[sub_id].weight if replacing else 0)
        if held + weight > self.max_filter_bytes:
            self._close(session, sub_id)  # the client now believes this id closed: make it so
            self.totals.subs_refused += 1
            reason = (
                f"rate-limited: this connection's subscriptions would hold {held + weight:,} bytes of "
                f"filters (at most {self.max_filter_bytes:,}); CLOSE some first"
            )
            return Reply([encode_closed(sub_id, reason)])
        # NIP-01: "a new subscription is created, replacing the old one".
        self._close(session, sub_id)
        now = self.clock()
        sub = Subscription(sub_id, filters, session, now, seq=self._next_seq, weight=weight)
        self._next_seq += 1
        session.subs[sub_id] = sub
        session.filter_bytes += weight
        self._watch(sub)
        session.subs_opened += 1
        self.totals.subs_opened += 1
        events = self.store.query_json(
            filters, now=now, default_limit=limits.default_limit, max_limit=limits.max_limit
        )
        return Reply(query=Query(sub, events))

    def finish_query(self, sub: Subscription) -> bytes | None:
        """The stored events of ``sub`` have all been queued: the EOSE, or None if it was closed."""
        if not sub.active:
            return None
        now = self.clock()
        sub.eose_at = now
        sub.session.last_eose_at = now
        self.last_eose_at = now
        return encode_eose(sub.sub_id)

    def _on_count(self, query_id: str, filters: Iterable[Filter]) -> Reply:
        if len(query_id) > self.limits.max_subid_length:
            self.totals.subs_refused += 1
            reason = f"invalid: query id is longer than {self.limits.max_subid_length} characters"
            return Reply([encode_closed(query_id, reason)])
        filters = tuple(filters)
        if len(filters) > self.limits.max_filters:
            return self._too_many_filters(query_id, len(filters))
        self.totals.counts_answered += 1
        return Reply([encode_count(query_id, self.store.count(tuple(filters), now=self.clock()))])

    def _too_many_filters(self, sub_id: str, count: int) -> Reply:
        self.totals.subs_refused += 1
        reason = f"invalid: {count} filters; this relay accepts at most {self.limits.max_filters} per message"
        return Reply([encode_closed(sub_id, reason)])

    def _close(self, session: Session, sub_id: str) -> bool:
        sub = session.subs.pop(sub_id, None)
        if sub is None:
            return False
        self._deactivate(sub)
        return True

    def _deactivate(self, sub: Subscription) -> None:
        if sub.active:
            sub.active = False
            self._unwatch(sub)
            sub.session.filter_bytes -= sub.weight
            sub.session.subs_closed += 1
            self.totals.subs_closed += 1

    # -- harness control -----------------------------------------------------------------------

    def close_subscriptions(self, session: Session, reason: str) -> list[bytes]:
        """End every subscription of ``session`` from the relay side: the CLOSED messages to send."""
        messages = []
        for sub_id in list(session.subs):
            self._close(session, sub_id)
            messages.append(encode_closed(sub_id, reason))
        return messages

    def reset(self, store: EventStore) -> None:
        """Start over with ``store``: counters from zero, closed-connection history dropped.

        Call it after :meth:`close_subscriptions` for every session (the relay's reset does);
        the connections stay open and keep their ids. ``totals_since_start`` in :meth:`stats`
        keeps counting across resets.
        """
        for session in self.sessions.values():
            for sub_id in list(session.subs):
                self._close(session, sub_id)  # nothing to send: the caller already said CLOSED
            session.restart_counters()
        self.store = store
        self._totals_before_reset += self.totals
        self.totals = Totals()
        self.closed_sessions.clear()
        self.last_eose_at = None
        self.resets += 1
        self.reset_at = self.clock()

    def record_sent(self, session: Session, *, events: int, live: bool, nbytes: int, sub: Any = None) -> None:
        """The I/O layer framed ``events`` EVENTs, or made one socket write of ``nbytes``."""
        if nbytes:
            session.bytes_sent += nbytes
            session.writes += 1
            self.totals.bytes_sent += nbytes
        if events:
            session.events_sent += events
            self.totals.events_sent += events
            if sub is not None:
                sub.events_sent += events
                if not sub.active:
                    self.totals.events_after_close += events
            if live:
                session.live_events_sent += events
                self.totals.live_events_sent += events

    def record_live(self, session: Session, subs: Sequence[Subscription], nbytes: int) -> None:
        """One live event of each of ``subs`` (active) left in one socket write of ``nbytes``.

        :meth:`record_sent` for a fan-out's direct writes, without its branches.
        """
        events = len(subs)
        session.bytes_sent += nbytes
        session.writes += 1
        session.events_sent += events
        session.live_events_sent += events
        for sub in subs:
            sub.events_sent += 1
        totals = self.totals
        totals.bytes_sent += nbytes
        totals.events_sent += events
        totals.live_events_sent += events

    # -- introspection -------------------------------------------------------------------------

    def active_subscriptions(self, conn_id: int | None = None) -> int:
        if conn_id is None:
            return sum(len(s.subs) for s in self.sessions.values())
        session = self.sessions.get(conn_id)
        return len(session.subs) if session else 0

    def idle_state(self, conn_id: int | None = None) -> tuple[int, float | None]:
        """(active subscriptions, last EOSE time) for one connection or for all of them.

        A connection that is gone counts as idle, with its last EOSE time kept.
        """
        if conn_id is None:
            return self.active_subscriptions(), self.last_eose_at
        session = self.sessions.get(conn_id)
        if session is None:
            for old in self.closed_sessions:
                if old.conn_id == conn_id:
                    return 0, old.last_eose_at
            return 0, None
        return len(session.subs), session.last_eose_at

    def stats(self) -> dict[str, Any]:
        """The ``/stats`` document (JSON-ready).

        ``totals`` and the connection rows count from the last reset (from the start if there was
        none); ``totals_since_start`` holds the same counters since the relay started.
        """
        totals = dict(vars(self.totals))
        totals.update(
            connections_open=len(self.sessions),
            subscriptions_active=self.active_subscriptions(),
            events_stored=len(self.store),
            last_eose_at=self.last_eose_at,
        )
        return {
            "now": self.clock(),
            "started_at": self.started_at,
            "resets": self.resets,
            "reset_at": self.reset_at,
            "limits": asdict(self.limits),
            "totals": totals,
            "totals_since_start": vars(self._totals_before_reset + self.totals),
            "connections": [s.to_dict() for s in self.sessions.values()],
            "closed_connections": [s.to_dict() for s in self.closed_sessions],
        }
