"""NIP-01 wire messages: parse what clients send, encode what relays send (and the reverse for tests).

Theory of operation: :func:`parse_client_message` turns one WebSocket text frame into a typed,
frozen message, or raises :class:`MessageRejected` whose ``reply`` holds the exact bytes the
relay sends back. It never raises anything else, whatever the input, so the relay's read loop is
``try: msg = parse_client_message(frame) except MessageRejected as exc: send(exc.reply)``.
Which answer a bad message gets (NIP-01 "From relay to client"):

* cannot tell what was asked (not UTF-8, not JSON, not an array, empty, unknown verb, a REQ or
  CLOSE without a usable subscription id, an EVENT whose id cannot be read) -> ``NOTICE``;
* a REQ/COUNT with a usable subscription id but a bad filter -> ``CLOSED`` for that id
  (NIP-01 and NIP-45: a refused REQ/COUNT MUST get CLOSED);
* an EVENT/AUTH whose ``id`` is a string but whose event is bad -> ``OK <id> false``.

Every reason starts with a NIP-01 prefix (``error:``, ``invalid:``, ``unsupported:``).
Subscription id length limits are policy and belong to the relay (``encode_closed``).

Encoders return bytes made with orjson. :func:`encode_event` splices the event's cached wire JSON
(:attr:`Event.json`) between two constant pieces, so serving a stored event never re-encodes it.
:func:`parse_relay_message` and the ``encode_req``/``encode_close``/... helpers are the client side,
for the test harness.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from relaysim.errors import InvalidEvent, InvalidFilter, InvalidMessage, ProtocolError
from relaysim.nostr.event import Event, parse_event, verify_event
from relaysim.nostr.filter import Filter, parse_filter

__all__ = [
    "AuthMessage",
    "ClientMessage",
    "CloseMessage",
    "CountMessage",
    "EventMessage",
    "MessageRejected",
    "RelayAuth",
    "RelayClosed",
    "RelayCount",
    "RelayEose",
    "RelayEvent",
    "RelayMessage",
    "RelayNotice",
    "RelayOk",
    "ReqMessage",
    "encode_auth",
    "encode_auth_response",
    "encode_client_event",
    "encode_close",
    "encode_closed",
    "encode_count",
    "encode_count_request",
    "encode_eose",
    "encode_event",
    "encode_notice",
    "encode_ok",
    "encode_req",
    "parse_client_message",
    "parse_relay_message",
]

_SHOW = 40  # longest piece of peer input quoted back in a NOTICE


# --- client -> relay -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventMessage:
    """``["EVENT", <event>]``: the event has been shape-checked (and verified unless told not to)."""

    event: Event


@dataclass(frozen=True)
class ReqMessage:
    """``["REQ", <sub_id>, <filter>, ...]`` with at least one filter."""

    sub_id: str
    filters: tuple[Filter, ...]


@dataclass(frozen=True)
class CloseMessage:
    """``["CLOSE", <sub_id>]``."""

    sub_id: str


@dataclass(frozen=True)
class CountMessage:
    """NIP-45 ``["COUNT", <query_id>, <filter>, ...]``."""

    query_id: str
    filters: tuple[Filter, ...]


@dataclass(frozen=True)
class AuthMessage:
    """NIP-42 ``["AUTH", <signed kind-22242 event>]``; the relay checks kind, tags and age."""

    event: Event


ClientMessage = EventMessage | ReqMessage | CloseMessage | CountMessage | AuthMessage


class MessageRejected(ProtocolError):
    """A client message the relay refuses; ``reply`` is the exact wire answer to send back.

    ``verb`` is the message type when it could be read (``"EVENT"``, ``"REQ"``, ...), ``sub_id``
    the subscription/query id a CLOSED answers, ``event_id`` the id an ``OK false`` answers.
    """

    def __init__(
        self,
        reason: str,
        reply: bytes,
        *,
        verb: str | None = None,
        sub_id: str | None = None,
        event_id: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reply = reply
        self.verb = verb
        self.sub_id = sub_id
        self.event_id = event_id


def _notice(reason: str, verb: str | None = None) -> MessageRejected:
    return MessageRejected(reason, encode_notice(reason), verb=verb)


def _closed(verb: str, sub_id: str, reason: str) -> MessageRejected:
    return MessageRejected(reason, encode_closed(sub_id, reason), verb=verb, sub_id=sub_id)


def _quote(text: str) -> str:
    return text if len(text) <= _SHOW else text[:_SHOW] + "..."


def _why_not_json(data: object) -> str:
    """Name the cause of a decode failure; only runs on the error path, so it may be slow."""
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return "error: could not parse message: not valid UTF-8"
    elif isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            return "error: could not parse message: not valid UTF-8"
    else:
        return "error: could not parse message: not text"
    return "error: could not parse message: not JSON"


def parse_client_message(data: str | bytes, *, verify: bool = True) -> ClientMessage:
    """Parse one client frame; raise only :class:`MessageRejected` (carrying the reply).

    With ``verify=True`` (the default) EVENT and AUTH events also get their id and signature
    checked, so a relay that just forwards the result to its store is correct. Pass
    ``verify=False`` to check signatures elsewhere (then answer with :func:`encode_ok`).
    """
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise _notice(_why_not_json(data)) from None
    if not isinstance(msg, list):
        raise _notice("error: could not parse message: not a JSON array")
    if not msg:
        raise _notice("error: could not parse message: empty array")
    verb = msg[0]
    if not isinstance(verb, str):
        raise _notice("error: could not parse message: message type must be a string")
    if verb == "EVENT" or verb == "AUTH":
        return _parse_event_message(verb, msg, verify)
    if verb == "REQ" or verb == "COUNT":
        return _parse_query(verb, msg)
    if verb == "CLOSE":
        if len(msg) != 2:
            raise _notice(f"invalid: CLOSE message must have 2 elements, got {len(msg)}", verb)
        sub_id = msg[1]
        if not isinstance(sub_id, str) or not sub_id:
            raise _notice("invalid: CLOSE subscription id must be a non-empty string", verb)
        return CloseMessage(sub_id)
    raise _notice(f"error: unknown message type '{_quote(verb)}'")


def _parse_event_message(verb: str, msg: list[Any], verify: bool) -> EventMessage | AuthMessage:
    if len(msg) != 2:
        raise _notice(f"invalid: {verb} message must have 2 elements, got {len(msg)}", verb)
    obj = msg[1]
    try:
        event = parse_event(obj)
        if verify:
            verify_event(event)
    except InvalidEvent as exc:
        event_id = obj.get("id") if isinstance(obj, dict) else None
        if isinstance(event_id, str):
            raise MessageRejected(
                exc.reason, encode_ok(event_id, False, exc.reason), verb=verb, event_id=event_id
            ) from None
        raise _notice(exc.reason, verb) from None
    return EventMessage(event) if verb == "EVENT" else AuthMessage(event)


def _parse_query(verb: str, msg: list[Any]) -> ReqMessage | CountMessage:
    what = "subscription id" if verb == "REQ" else "query id"
    if len(msg) < 2:
        raise _notice(f"invalid: {verb} message must have a {what}", verb)
    sub_id = msg[1]
    if not isinstance(sub_id, str) or not sub_id:
        raise _notice(f"invalid: {verb} {what} must be a non-empty string", verb)
    if len(msg) == 2:
        raise _closed(verb, sub_id, f"invalid: {verb} must have at least one filter")
    try:
        filters = tuple(parse_filter(obj) for obj in msg[2:])
    except InvalidFilter as exc:
        raise _closed(verb, sub_id, exc.reason) from None
    return ReqMessage(sub_id, filters) if verb == "REQ" else CountMessage(sub_id, filters)


# --- relay -> client encoders --------------------------------------------------------------------


def encode_event(sub_id: str, event_json: bytes) -> bytes:
    """``["EVENT",<sub_id>,<event>]`` around already-serialised event JSON (no re-encode).

    One ``join`` copies the event's JSON once; chained ``+`` copied it twice (~40% of the cost).
    """
    return b"".join((b'["EVENT",', orjson.dumps(sub_id), b",", event_json, b"]"))


def encode_ok(event_id: str, ok: bool, message: str = "") -> bytes:
    """``["OK",<id>,<bool>,<message>]``; ``message`` is ``prefix: text`` when refused."""
    return orjson.dumps(["OK", event_id, ok, message])


def encode_eose(sub_id: str) -> bytes:
    return orjson.dumps(["EOSE", sub_id])


def encode_closed(sub_id: str, message: str) -> bytes:
    """``["CLOSED",<sub_id>,<prefix: text>]``: a refused REQ/COUNT, or a sub the relay ends."""
    return orjson.dumps(["CLOSED", sub_id, message])


def encode_notice(message: str) -> bytes:
    return orjson.dumps(["NOTICE", message])


def encode_count(query_id: str, count: int, approximate: bool | None = None) -> bytes:
    """NIP-45 ``["COUNT",<query_id>,{"count":n}]`` (``approximate`` only when given)."""
    body: dict[str, Any] = {"count": count}
    if approximate is not None:
        body["approximate"] = approximate
    return orjson.dumps(["COUNT", query_id, body])


def encode_auth(challenge: str) -> bytes:
    """NIP-42 ``["AUTH",<challenge>]``."""
    return orjson.dumps(["AUTH", challenge])


# --- client side, for the harness and tests ------------------------------------------------------


def _filter_json(f: Filter | Mapping[str, Any]) -> Any:
    return f.to_dict() if isinstance(f, Filter) else f


def encode_req(sub_id: str, *filters: Filter | Mapping[str, Any]) -> bytes:
    """``["REQ",<sub_id>,<filter>...]``; filters as :class:`Filter` or plain dicts (sent as given)."""
    return orjson.dumps(["REQ", sub_id, *(_filter_json(f) for f in filters)])


def encode_count_request(query_id: str, *filters: Filter | Mapping[str, Any]) -> bytes:
    return orjson.dumps(["COUNT", query_id, *(_filter_json(f) for f in filters)])


def encode_close(sub_id: str) -> bytes:
    return orjson.dumps(["CLOSE", sub_id])


def encode_client_event(event: Event) -> bytes:
    return b'["EVENT",' + event.json + b"]"


def encode_auth_response(event: Event) -> bytes:
    """NIP-42 client answer ``["AUTH",<signed kind-22242 event>]``."""
    return b'["AUTH",' + event.json + b"]"


@dataclass(frozen=True)
class RelayEvent:
    sub_id: str
    event: Event


@dataclass(frozen=True)
class RelayOk:
    event_id: str
    ok: bool
    message: str


@dataclass(frozen=True)
class RelayEose:
    sub_id: str


@dataclass(frozen=True)
class RelayClosed:
    sub_id: str
    message: str


@dataclass(frozen=True)
class RelayNotice:
    message: str


@dataclass(frozen=True)
class RelayCount:
    query_id: str
    count: int
    approximate: bool | None = None


@dataclass(frozen=True)
class RelayAuth:
    challenge: str


RelayMessage = RelayEvent | RelayOk | RelayEose | RelayClosed | RelayNotice | RelayCount | RelayAuth

# verb -> element types after the verb ("event" and "count" are checked separately).
_RELAY_SHAPES: dict[str, tuple[type | str, ...]] = {
    "EVENT": (str, "event"),
    "OK": (str, bool, str),
    "EOSE": (str,),
    "CLOSED": (str, str),
    "NOTICE": (str,),
    "COUNT": (str, "count"),
    "AUTH": (str,),
}


def parse_relay_message(data: str | bytes, *, verify: bool = False) -> RelayMessage:
    """Parse one relay frame (harness side); raise :class:`InvalidMessage` if the relay broke NIP-01.

    EVENT payloads are shape-checked with :func:`parse_event`; pass ``verify=True`` to also check
    id and signature (the relay under test should only ever serve verified events).
    """
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise InvalidMessage(_why_not_json(data)) from None
    if not isinstance(msg, list) or not msg or not isinstance(msg[0], str):
        raise InvalidMessage("invalid: relay message must be a JSON array starting with a string")
    verb = msg[0]
    shape = _RELAY_SHAPES.get(verb)
    if shape is None:
        raise InvalidMessage(f"invalid: unknown relay message type '{_quote(verb)}'")
    if len(msg) != len(shape) + 1:
        raise InvalidMessage(f"invalid: relay {verb} must have {len(shape) + 1} elements, got {len(msg)}")
    for index, expected in enumerate(shape, start=1):
        if isinstance(expected, type) and not isinstance(msg[index], expected):
            raise InvalidMessage(f"invalid: relay {verb} element {index} must be a {expected.__name__}")
    if verb == "EVENT":
        try:
            event = parse_event(msg[2])
            if verify:
                verify_event(event)
        except InvalidEvent as exc:
            raise InvalidMessage(f"invalid: relay EVENT carries a bad event ({exc.reason})") from None
        return RelayEvent(msg[1], event)
    if verb == "OK":
        return RelayOk(msg[1], msg[2], msg[3])
    if verb == "EOSE":
        return RelayEose(msg[1])
    if verb == "CLOSED":
        return RelayClosed(msg[1], msg[2])
    if verb == "NOTICE":
        return RelayNotice(msg[1])
    if verb == "COUNT":
        body = msg[2]
        count = body.get("count") if isinstance(body, dict) else None
        approximate = body.get("approximate") if isinstance(body, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise InvalidMessage('invalid: relay COUNT must carry {"count": <non-negative integer>}')
        if approximate is not None and not isinstance(approximate, bool):
            raise InvalidMessage("invalid: relay COUNT 'approximate' must be a boolean")
        return RelayCount(msg[1], count, approximate)
    return RelayAuth(msg[1])
