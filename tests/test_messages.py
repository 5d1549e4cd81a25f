"""Tests of relaysim.nostr.messages: client parsing with exact wire replies, relay encoders."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.errors import InvalidMessage, ProtocolError
from relaysim.nostr import (
    AuthMessage,
    CloseMessage,
    CountMessage,
    Event,
    EventMessage,
    Filter,
    MessageRejected,
    RelayAuth,
    RelayClosed,
    RelayCount,
    RelayEose,
    RelayEvent,
    RelayNotice,
    RelayOk,
    ReqMessage,
    encode_auth,
    encode_auth_response,
    encode_client_event,
    encode_close,
    encode_closed,
    encode_count,
    encode_count_request,
    encode_eose,
    encode_event,
    encode_notice,
    encode_ok,
    encode_req,
    parse_client_message,
    parse_filter,
    parse_relay_message,
    sign_event,
)

SECRET = bytes(31) + b"\x05"
EVENT = sign_event(
    SECRET, created_at=1700000000, kind=1, tags=[["t", "x"]], content='hi "there"', aux=bytes(32)
)
AUTH_EVENT = sign_event(
    SECRET, created_at=1700000000, kind=22242, tags=[["relay", "ws://x/"], ["challenge", "c"]], aux=bytes(32)
)
PK = EVENT.pubkey


def _event_with(**changes) -> dict:
    obj = EVENT.to_dict()
    obj.update(changes)
    return obj


def _raw(obj) -> bytes:
    return orjson.dumps(obj)


# --- accepted messages --------------------------------------------------------------------------


def test_parse_event_message_from_bytes_and_str():
    raw = encode_client_event(EVENT)
    assert raw == b'["EVENT",' + EVENT.json + b"]"
    assert parse_client_message(raw) == EventMessage(EVENT)
    assert parse_client_message(raw.decode()) == EventMessage(EVENT)
    assert parse_client_message(bytearray(raw)) == EventMessage(EVENT)


def test_parse_auth_message():
    raw = encode_auth_response(AUTH_EVENT)
    assert raw == b'["AUTH",' + AUTH_EVENT.json + b"]"
    assert parse_client_message(raw) == AuthMessage(AUTH_EVENT)


def test_parse_req_count_close():
    raw = b'["REQ","feed",{"kinds":[1],"limit":20},{"#p":["' + PK.encode() + b'"]}]'
    assert parse_client_message(raw) == ReqMessage(
        "feed", (Filter(kinds=[1], limit=20), Filter(tags={"p": [PK]}))
    )
    assert parse_client_message(b'["COUNT","q1",{}]') == CountMessage("q1", (Filter(),))
    assert parse_client_message(b'["CLOSE","feed"]') == CloseMessage("feed")
    # Sub ids are opaque: any non-empty string, length limits are the relay's policy.
    assert parse_client_message(b'["CLOSE","' + b"x" * 500 + b'"]') == CloseMessage("x" * 500)


def test_verify_false_leaves_signature_checks_to_the_caller():
    raw = _raw(["EVENT", _event_with(content="tampered")])
    assert parse_client_message(raw, verify=False).event.content == "tampered"
    with pytest.raises(MessageRejected):
        parse_client_message(raw)


@settings(max_examples=100)
@given(
    sub_id=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20),
    filters=st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "kinds": st.lists(st.integers(0, 65535), max_size=3),
                "authors": st.lists(st.just(PK), max_size=1),
                "#t": st.lists(st.text(max_size=5), max_size=3),
                "since": st.integers(0, 2**40),
                "limit": st.integers(0, 500),
            },
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_req_and_count_round_trip(sub_id, filters):
    parsed = tuple(parse_filter(f) for f in filters)
    assert parse_client_message(encode_req(sub_id, *filters)) == ReqMessage(sub_id, parsed)
    assert parse_client_message(encode_req(sub_id, *parsed)) == ReqMessage(sub_id, parsed)
    assert parse_client_message(encode_count_request(sub_id, *parsed)) == CountMessage(sub_id, parsed)
    assert parse_client_message(encode_close(sub_id)) == CloseMessage(sub_id)


# --- rejected messages: the exact reply bytes ---------------------------------------------------

LONG_VERB = "V" * 100
BAD_EVENT_ID = "ab" * 32

REJECTIONS = [
    # Cannot be understood at all -> NOTICE.
    (b"\xff\xfe[]", b'["NOTICE","error: could not parse message: not valid UTF-8"]'),
    (b'["REQ","\xc3"]', b'["NOTICE","error: could not parse message: not valid UTF-8"]'),
    ('["CLOSE","\ud800"]', b'["NOTICE","error: could not parse message: not valid UTF-8"]'),
    (b"", b'["NOTICE","error: could not parse message: not JSON"]'),
    (b"not json", b'["NOTICE","error: could not parse message: not JSON"]'),
    (b'["REQ","s",{}', b'["NOTICE","error: could not parse message: not JSON"]'),
    (b'["CLOSE","\\ud800"]', b'["NOTICE","error: could not parse message: not JSON"]'),
    (b"[NaN]", b'["NOTICE","error: could not parse message: not JSON"]'),
    (12, b'["NOTICE","error: could not parse message: not text"]'),
    (None, b'["NOTICE","error: could not parse message: not text"]'),
    (b'{"EVENT":1}', b'["NOTICE","error: could not parse message: not a JSON array"]'),
    (b'"REQ"', b'["NOTICE","error: could not parse message: not a JSON array"]'),
    (b"[]", b'["NOTICE","error: could not parse message: empty array"]'),
    (b"[1]", b'["NOTICE","error: could not parse message: message type must be a string"]'),
    (b"[null,{}]", b'["NOTICE","error: could not parse message: message type must be a string"]'),
    (b'["FOO"]', b'["NOTICE","error: unknown message type \'FOO\'"]'),
    (b'["event",{}]', b'["NOTICE","error: unknown message type \'event\'"]'),
    (
        _raw([LONG_VERB]),
        b'["NOTICE","error: unknown message type \'' + b"V" * 40 + b"...'\"]",
    ),
    (b'["EVENT"]', b'["NOTICE","invalid: EVENT message must have 2 elements, got 1"]'),
    (b'["EVENT",{},{}]', b'["NOTICE","invalid: EVENT message must have 2 elements, got 3"]'),
    (b'["EVENT",[]]', b'["NOTICE","invalid: event must be a JSON object"]'),
    (b'["EVENT",{}]', b'["NOTICE","invalid: event is missing field \'id\'"]'),
    (_raw(["EVENT", _event_with(id=5)]), b'["NOTICE","invalid: id must be 64 lowercase hex characters"]'),
    (b'["AUTH","challenge"]', b'["NOTICE","invalid: event must be a JSON object"]'),
    (b'["AUTH"]', b'["NOTICE","invalid: AUTH message must have 2 elements, got 1"]'),
    (b'["REQ"]', b'["NOTICE","invalid: REQ message must have a subscription id"]'),
    (b'["REQ",1,{}]', b'["NOTICE","invalid: REQ subscription id must be a non-empty string"]'),
    (b'["REQ","",{}]', b'["NOTICE","invalid: REQ subscription id must be a non-empty string"]'),
    (b'["REQ",null]', b'["NOTICE","invalid: REQ subscription id must be a non-empty string"]'),
    (b'["COUNT"]', b'["NOTICE","invalid: COUNT message must have a query id"]'),
    (b'["COUNT",["q"],{}]', b'["NOTICE","invalid: COUNT query id must be a non-empty string"]'),
    (b'["CLOSE"]', b'["NOTICE","invalid: CLOSE message must have 2 elements, got 1"]'),
    (b'["CLOSE","a","b"]', b'["NOTICE","invalid: CLOSE message must have 2 elements, got 3"]'),
    (b'["CLOSE",""]', b'["NOTICE","invalid: CLOSE subscription id must be a non-empty string"]'),
    (b'["CLOSE",7]', b'["NOTICE","invalid: CLOSE subscription id must be a non-empty string"]'),
    # An event whose id string can be read -> OK false for that id.
    (
        b'["EVENT",{"id":"abc"}]',
        b'["OK","abc",false,"invalid: event is missing field \'pubkey\'"]',
    ),
    (
        _raw(["EVENT", _event_with(id="AB" * 32)]),
        b'["OK","' + b"AB" * 32 + b'",false,"invalid: id must be 64 lowercase hex characters"]',
    ),
    (
        _raw(["EVENT", _event_with(kind=70000)]),
        b'["OK","' + EVENT.id.encode() + b'",false,"invalid: kind must be between 0 and 65535"]',
    ),
    (
        _raw(["EVENT", _event_with(tags=[["t", 1]])]),
        b'["OK","' + EVENT.id.encode() + b'",false,"invalid: tag 0 must be an array of strings"]',
    ),
    (
        _raw(["EVENT", _event_with(content="changed")]),
        b'["OK","' + EVENT.id.encode() + b'",false,"invalid: event id does not match its content"]',
    ),
    (
        _raw(["EVENT", _event_with(sig="00" * 64)]),
        b'["OK","' + EVENT.id.encode() + b'",false,"invalid: signature does not verify"]',
    ),
    (
        _raw(["AUTH", {**AUTH_EVENT.to_dict(), "sig": "11" * 64}]),
        b'["OK","' + AUTH_EVENT.id.encode() + b'",false,"invalid: signature does not verify"]',
    ),
    # A REQ/COUNT with a usable id but bad filters -> CLOSED for that id.
    (b'["REQ","s"]', b'["CLOSED","s","invalid: REQ must have at least one filter"]'),
    (b'["COUNT","q"]', b'["CLOSED","q","invalid: COUNT must have at least one filter"]'),
    (b'["REQ","s",[]]', b'["CLOSED","s","invalid: filter must be a JSON object"]'),
    (b'["REQ","s",{"kinds":"1"}]', b'["CLOSED","s","invalid: filter \'kinds\' must be an array"]'),
    (
        b'["REQ","s",{},{"ids":["abc"]}]',
        b'["CLOSED","s","invalid: filter \'ids\' item 0 must be 64 lowercase hex characters"]',
    ),
    (
        b'["REQ","s \\"q\\"",{"search":"x"}]',
        b'["CLOSED","s \\"q\\"","unsupported: filter contains unknown element \'search\'"]',
    ),
    (b'["COUNT","q",{"limit":-1}]', b'["CLOSED","q","invalid: filter \'limit\' must not be negative"]'),
]


@pytest.mark.parametrize(("data", "reply"), REJECTIONS)
def test_rejections_carry_the_exact_reply(data, reply):
    with pytest.raises(MessageRejected) as info:
        parse_client_message(data)
    assert info.value.reply == reply
    # The reason is the message inside the reply and starts with a NIP-01 prefix.
    assert orjson.loads(reply)[-1] == info.value.reason
    assert info.value.reason.split(":")[0] in {"error", "invalid", "unsupported"}
    assert isinstance(info.value, ProtocolError)


def test_rejection_fields():
    with pytest.raises(MessageRejected) as info:
        parse_client_message(b'["REQ","s",{"kinds":"1"}]')
    assert (info.value.verb, info.value.sub_id, info.value.event_id) == ("REQ", "s", None)
    with pytest.raises(MessageRejected) as info:
        parse_client_message(_raw(["EVENT", _event_with(content="changed")]))
    assert (info.value.verb, info.value.sub_id, info.value.event_id) == ("EVENT", None, EVENT.id)
    with pytest.raises(MessageRejected) as info:
        parse_client_message(b"[]")
    assert (info.value.verb, info.value.sub_id, info.value.event_id) == (None, None, None)


# --- the total-function property ----------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
event_field_values = st.sampled_from(
    [None, 1, -1, 2**53, 70000, "", "AB" * 32, "ab" * 32, "00" * 64, [], [["t"]], [[1]], {}, "x", 1.5, True]
)
mutated_events = st.builds(
    lambda key, value, drop: {k: v for k, v in {**EVENT.to_dict(), key: value}.items() if k != drop},
    st.sampled_from(["id", "pubkey", "created_at", "kind", "tags", "content", "sig", "extra"]),
    event_field_values,
    st.sampled_from([None, "id", "sig", "tags"]),
)
frames = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40),
    json_values.map(orjson.dumps),
    st.tuples(
        st.sampled_from(["EVENT", "REQ", "CLOSE", "COUNT", "AUTH", "OK", ""]),
        st.lists(st.one_of(json_values, mutated_events), max_size=3),
    ).map(lambda parts: orjson.dumps([parts[0], *parts[1]])),
)


@settings(max_examples=300)
@given(frame=frames)
def test_arbitrary_input_raises_only_message_rejected_with_a_valid_reply(frame):
    try:
        message = parse_client_message(frame)
    except MessageRejected as exc:
        reply = parse_relay_message(exc.reply)
        assert isinstance(reply, RelayNotice | RelayClosed | RelayOk)
        assert exc.reason.split(":")[0] in {"error", "invalid", "unsupported"}
        if isinstance(reply, RelayOk):
            assert reply.ok is False and reply.message == exc.reason
    else:
        assert isinstance(message, EventMessage | ReqMessage | CloseMessage | CountMessage | AuthMessage)


# --- relay encoders -----------------------------------------------------------------------------


def test_encode_event_splices_the_cached_json():
    raw = encode_event("sub", EVENT.json)
    assert raw == b'["EVENT","sub",' + EVENT.json + b"]"
    assert json.loads(raw) == ["EVENT", "sub", EVENT.to_dict()]
    assert encode_event('a"b\\ü', b"{}") == b'["EVENT","a\\"b\\\\\xc3\xbc",{}]'


def test_relay_encoders_exact_bytes():
    assert encode_ok(EVENT.id, True) == b'["OK","' + EVENT.id.encode() + b'",true,""]'
    assert encode_ok("x", True, "duplicate: already have this event") == (
        b'["OK","x",true,"duplicate: already have this event"]'
    )
    assert encode_ok("x", False, "blocked: no") == b'["OK","x",false,"blocked: no"]'
    assert encode_eose("s") == b'["EOSE","s"]'
    assert encode_closed("s", "error: shutting down idle subscription") == (
        b'["CLOSED","s","error: shutting down idle subscription"]'
    )
    assert encode_notice("error: slow down") == b'["NOTICE","error: slow down"]'
    assert encode_count("q", 42) == b'["COUNT","q",{"count":42}]'
    assert encode_count("q", 3, approximate=True) == b'["COUNT","q",{"count":3,"approximate":true}]'
    assert encode_auth("challenge-1") == b'["AUTH","challenge-1"]'
    assert encode_close("s") == b'["CLOSE","s"]'
    assert encode_req("s", {"kinds": [1]}, Filter(kinds=[7, 6], limit=5)) == (
        b'["REQ","s",{"kinds":[1]},{"kinds":[6,7],"limit":5}]'
    )
    assert encode_count_request("q", {}) == b'["COUNT","q",{}]'


# --- relay message parsing (harness side) -------------------------------------------------------


def test_parse_relay_messages():
    assert parse_relay_message(encode_event("s", EVENT.json)) == RelayEvent("s", EVENT)
    assert parse_relay_message(encode_event("s", EVENT.json), verify=True).event == EVENT
    assert parse_relay_message(encode_ok("x", False, "invalid: no")) == RelayOk("x", False, "invalid: no")
    assert parse_relay_message(encode_eose("s")) == RelayEose("s")
    assert parse_relay_message(encode_closed("s", "error: bye")) == RelayClosed("s", "error: bye")
    assert parse_relay_message(encode_notice("hello")) == RelayNotice("hello")
    assert parse_relay_message(encode_count("q", 7)) == RelayCount("q", 7, None)
    assert parse_relay_message(encode_count("q", 7, False)) == RelayCount("q", 7, False)
    assert parse_relay_message('["AUTH","c"]') == RelayAuth("c")


BAD_RELAY_MESSAGES = [
    (b"nope", "error: could not parse message: not JSON"),
    (b"\xff", "error: could not parse message: not valid UTF-8"),
    (b"{}", "invalid: relay message must be a JSON array starting with a string"),
    (b"[]", "invalid: relay message must be a JSON array starting with a string"),
    (b'["HELLO"]', "invalid: unknown relay message type 'HELLO'"),
    (b'["EOSE"]', "invalid: relay EOSE must have 2 elements, got 1"),
    (b'["OK","x","true",""]', "invalid: relay OK element 2 must be a bool"),
    (b'["OK","x",true]', "invalid: relay OK must have 4 elements, got 3"),
    (b'["NOTICE",5]', "invalid: relay NOTICE element 1 must be a str"),
    (b'["EVENT","s",{}]', "invalid: relay EVENT carries a bad event (invalid: event is missing field 'id')"),
    (b'["COUNT","q",{"count":"1"}]', 'invalid: relay COUNT must carry {"count": <non-negative integer>}'),
    (b'["COUNT","q",5]', 'invalid: relay COUNT must carry {"count": <non-negative integer>}'),
    (b'["COUNT","q",{"count":1,"approximate":1}]', "invalid: relay COUNT 'approximate' must be a boolean"),
]


@pytest.mark.parametrize(("data", "reason"), BAD_RELAY_MESSAGES)
def test_parse_relay_message_rejects_broken_relays(data, reason):
    with pytest.raises(InvalidMessage) as info:
        parse_relay_message(data)
    assert info.value.reason == reason


def test_parse_relay_message_verify_catches_a_corrupted_event():
    corrupted = Event(EVENT.id, EVENT.pubkey, EVENT.created_at, EVENT.kind, EVENT.tags, "x", EVENT.sig)
    raw = encode_event("s", corrupted.json)
    assert parse_relay_message(raw).event.content == "x"
    with pytest.raises(InvalidMessage) as info:
        parse_relay_message(raw, verify=True)
    assert (
        info.value.reason
        == "invalid: relay EVENT carries a bad event (invalid: event id does not match its content)"
    )
