"""RelayCore, the Sans-I/O NIP-01 logic: exact bytes out for messages in, no sockets."""

from __future__ import annotations

import orjson
import pytest

from relaysim.nostr.event import Event, sign_event
from relaysim.nostr.messages import encode_client_event, encode_close, encode_req
from relaysim.relay.core import RelayCore
from relaysim.relay.limits import Limits, nip11_document
from relaysim.store import EventStore

SK1 = bytes(range(1, 33))
SK2 = bytes(range(2, 34))
AUX = bytes(32)


def note(created_at: int, content: str = "hi", sk: bytes = SK1, kind: int = 1, tags=()) -> Event:
    return sign_event(sk, created_at=created_at, kind=kind, tags=tags, content=content, aux=AUX)


STORED = [note(1000 + i, f"note {i}") for i in range(20)]


class Clock:
    def __init__(self, t: float = 5000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_core(limits: Limits | None = None) -> tuple[RelayCore, Clock]:
    store = EventStore()
    store.load(STORED)
    clock = Clock()
    return RelayCore(store, limits, clock=clock), clock


def msgs(reply) -> list:
    return [orjson.loads(m) for m in reply.messages]


def drain(core: RelayCore, reply) -> list:
    """Everything a REQ reply sends: stored events then EOSE (what the I/O layer does)."""
    out = []
    assert reply.query is not None
    for batch in reply.query.batches(7):
        out.extend(orjson.loads(m) for m in batch)
    eose = core.finish_query(reply.query.sub)
    if eose is not None:
        out.append(orjson.loads(eose))
    return out


def test_req_sends_stored_events_newest_first_then_eose():
    core, _ = make_core()
    session = core.open_session("127.0.0.1:1")
    reply = core.receive(session, encode_req("s", {"kinds": [1], "limit": 5}))
    assert reply.messages == []
    out = drain(core, reply)
    assert [m[0] for m in out] == ["EVENT"] * 5 + ["EOSE"]
    assert [m[2]["created_at"] for m in out[:5]] == [1019, 1018, 1017, 1016, 1015]
    assert out[-1] == ["EOSE", "s"]
    assert session.last_eose_at == 5000.0


def test_default_limit_and_max_limit_clamp():
    core, _ = make_core(Limits(default_limit=3, max_limit=4))
    session = core.open_session("x")
    assert len(drain(core, core.receive(session, encode_req("a", {"kinds": [1]})))) == 3 + 1
    assert len(drain(core, core.receive(session, encode_req("b", {"kinds": [1], "limit": 100})))) == 4 + 1


def test_limit_zero_sends_only_eose_and_stays_live():
    core, _ = make_core()
    session = core.open_session("x")
    out = drain(core, core.receive(session, encode_req("z", {"kinds": [1], "limit": 0})))
    assert out == [["EOSE", "z"]]
    deliveries = core.fan_out(note(3000))
    assert [d.sub.sub_id for d in deliveries] == ["z"]


def test_event_ok_then_duplicate_is_ok_true():
    core, _ = make_core()
    session = core.open_session("x")
    ev = note(2000, "new")
    assert msgs(core.receive(session, encode_client_event(ev))) == [["OK", ev.id, True, ""]]
    assert msgs(core.receive(session, encode_client_event(ev))) == [
        ["OK", ev.id, True, "duplicate: already have this event"]
    ]
    assert core.store.get(ev.id) == ev


def test_event_with_bad_signature_is_refused_and_not_stored():
    core, _ = make_core()
    session = core.open_session("x")
    ev = note(2000, "new")
    bad = orjson.loads(ev.json)
    bad["sig"] = ("0" if bad["sig"][0] != "0" else "1") + bad["sig"][1:]
    reply = core.receive(session, orjson.dumps(["EVENT", bad]))
    assert msgs(reply) == [["OK", ev.id, False, "invalid: signature does not verify"]]
    assert core.store.get(ev.id) is None
    assert core.totals.events_rejected == 1


def test_event_with_wrong_id_is_refused():
    core, _ = make_core()
    session = core.open_session("x")
    bad = orjson.loads(note(2000).json)
    bad["content"] = "changed"
    reply = core.receive(session, orjson.dumps(["EVENT", bad]))
    assert msgs(reply) == [["OK", bad["id"], False, "invalid: event id does not match its content"]]


def test_event_limits_tags_and_content():
    core, _ = make_core(Limits(max_event_tags=2, max_content_length=10))
    session = core.open_session("x")
    many = note(2000, tags=[["t", "a"], ["t", "b"], ["t", "c"]])
    assert msgs(core.receive(session, encode_client_event(many))) == [
        ["OK", many.id, False, "invalid: event has 3 tags; this relay accepts at most 2"]
    ]
    long = note(2001, "x" * 11)
    assert msgs(core.receive(session, encode_client_event(long))) == [
        ["OK", long.id, False, "invalid: content is 11 characters; this relay accepts at most 10"]
    ]
    assert core.store.get(many.id) is None and core.store.get(long.id) is None


def test_expired_event_is_refused():
    core, clock = make_core()
    session = core.open_session("x")
    ev = note(2000, tags=[["expiration", str(int(clock.t) - 1)]])
    assert msgs(core.receive(session, encode_client_event(ev))) == [
        ["OK", ev.id, False, "invalid: event has expired"]
    ]


def test_live_fan_out_to_all_matching_subscriptions_of_all_connections():
    core, _ = make_core()
    a, b = core.open_session("a"), core.open_session("b")
    drain(core, core.receive(a, encode_req("feed", {"kinds": [1], "limit": 0})))
    drain(core, core.receive(b, encode_req("mine", {"authors": [STORED[0].pubkey], "limit": 0})))
    drain(core, core.receive(b, encode_req("other", {"kinds": [7], "limit": 0})))
    ev = note(2000, "live")
    reply = core.receive(b, encode_client_event(ev))
    assert msgs(reply) == [["OK", ev.id, True, ""]]
    got = sorted(
        (d.sub.session.remote, d.sub.sub_id, orjson.loads(d.payload)[2]["id"]) for d in reply.deliveries
    )
    assert got == [("a", "feed", ev.id), ("b", "mine", ev.id)]


def test_duplicate_event_is_not_fanned_out_again():
    core, _ = make_core()
    a = core.open_session("a")
    drain(core, core.receive(a, encode_req("feed", {"kinds": [1], "limit": 0})))
    assert core.receive(a, encode_client_event(STORED[3])).deliveries == []


def test_ephemeral_event_is_fanned_out_not_stored():
    core, _ = make_core()
    a = core.open_session("a")
    drain(core, core.receive(a, encode_req("e", {"kinds": [20001], "limit": 0})))
    ev = note(2000, kind=20001)
    reply = core.receive(a, encode_client_event(ev))
    assert msgs(reply) == [["OK", ev.id, True, ""]]
    assert len(reply.deliveries) == 1
    assert core.store.get(ev.id) is None


def test_close_deactivates_at_once_and_later_events_never_reach_it():
    core, _ = make_core()
    session = core.open_session("x")
    reply = core.receive(session, encode_req("s", {"kinds": [1], "limit": 20}))
    sub = reply.query.sub
    assert core.receive(session, encode_close("s")).messages == []
    assert not sub.active
    assert core.finish_query(sub) is None  # mid-query CLOSE: no EOSE either
    assert core.fan_out(note(2000)) == []
    assert session.subs == {} and session.subs_closed == 1


def test_req_with_same_id_replaces_the_subscription():
    core, _ = make_core()
    session = core.open_session("x")
    first = core.receive(session, encode_req("s", {"kinds": [1], "limit": 0})).query.sub
    second = core.receive(session, encode_req("s", {"kinds": [7], "limit": 0})).query.sub
    assert not first.active and second.active
    assert list(session.subs) == ["s"] and session.subs["s"] is second
    assert core.fan_out(note(2000)) == []  # kind 1 no longer wanted
    assert [d.sub for d in core.fan_out(note(2001, kind=7, tags=[["e", STORED[0].id]]))] == [second]


def test_too_many_subscriptions_is_closed_rate_limited_but_replacement_allowed():
    core, _ = make_core(Limits(max_subscriptions=2))
    session = core.open_session("x")
    core.receive(session, encode_req("a", {"limit": 0}))
    core.receive(session, encode_req("b", {"limit": 0}))
    reply = core.receive(session, encode_req("c", {"limit": 0}))
    assert msgs(reply) == [
        [
            "CLOSED",
            "c",
            "rate-limited: too many open subscriptions (at most 2 per connection); CLOSE one first",
        ]
    ]
    assert reply.query is None
    assert core.receive(session, encode_req("b", {"kinds": [1], "limit": 0})).query is not None
    assert sorted(session.subs) == ["a", "b"]


def test_subscription_id_too_long_is_closed():
    core, _ = make_core(Limits(max_subid_length=8))
    session = core.open_session("x")
    reply = core.receive(session, encode_req("123456789", {"limit": 0}))
    assert msgs(reply) == [["CLOSED", "123456789", "invalid: subscription id is longer than 8 characters"]]
    assert session.subs == {}


def test_bad_filter_is_closed_and_drops_an_open_sub_of_that_id():
    core, _ = make_core()
    session = core.open_session("x")
    old = core.receive(session, encode_req("s", {"limit": 0})).query.sub
    reply = core.receive(session, b'["REQ","s",{"kinds":["one"]}]')
    assert msgs(reply) == [
        ["CLOSED", "s", "invalid: filter 'kinds' item 0 must be an integer between 0 and 65535"]
    ]
    assert not old.active and session.subs == {}
    reply = core.receive(session, b'["REQ","t",{"search":"x"}]')
    assert msgs(reply) == [["CLOSED", "t", "unsupported: filter contains unknown element 'search'"]]


@pytest.mark.parametrize(
    ("data", "notice"),
    [
        (b"not json", "error: could not parse message: not JSON"),
        (b'{"a":1}', "error: could not parse message: not a JSON array"),
        (b"[]", "error: could not parse message: empty array"),
        (b'["HELLO"]', "error: unknown message type 'HELLO'"),
        (b"[1]", "error: could not parse message: message type must be a string"),
        (b'["REQ",5,{}]', "invalid: REQ subscription id must be a non-empty string"),
        (b'["CLOSE"]', "invalid: CLOSE message must have 2 elements, got 1"),
        (b'["EVENT",{"kind":1}]', "invalid: event is missing field 'id'"),
    ],
)
def test_unparseable_messages_get_notice_and_change_nothing(data, notice):
    core, _ = make_core()
    session = core.open_session("x")
    before = len(core.store)
    assert msgs(core.receive(session, data)) == [["NOTICE", notice]]
    assert len(core.store) == before and session.subs == {}


def test_count_nip45():
    core, _ = make_core()
    session = core.open_session("x")
    reply = core.receive(session, b'["COUNT","q",{"kinds":[1]},{"ids":["' + STORED[0].id.encode() + b'"]}]')
    assert msgs(reply) == [["COUNT", "q", {"count": 20}]]
    assert session.subs == {}
    reply = core.receive(session, b'["COUNT","q",{"kinds":[-1]}]')
    assert msgs(reply)[0][:2] == ["CLOSED", "q"]


def test_auth_is_answered_unsupported():
    core, _ = make_core()
    session = core.open_session("x")
    ev = note(2000, kind=22242)
    reply = core.receive(session, b'["AUTH",' + ev.json + b"]")
    assert msgs(reply) == [["OK", ev.id, False, "unsupported: this relay does not use NIP-42 AUTH"]]


def test_close_subscriptions_from_harness_and_idle_state():
    core, _clock = make_core()
    session = core.open_session("x")
    drain(core, core.receive(session, encode_req("a", {"limit": 1})))
    core.receive(session, encode_req("b", {"limit": 0}))
    assert core.idle_state() == (2, 5000.0)
    closed = core.close_subscriptions(session, "error: closed by test harness")
    assert [orjson.loads(m) for m in closed] == [
        ["CLOSED", "a", "error: closed by test harness"],
        ["CLOSED", "b", "error: closed by test harness"],
    ]
    assert core.idle_state() == (0, 5000.0)
    assert core.idle_state(session.conn_id) == (0, 5000.0)
    core.close_session(session, 1000)
    assert core.idle_state(session.conn_id) == (0, 5000.0)
    stats = core.stats()
    assert stats["connections"] == []
    assert stats["closed_connections"][0]["close_code"] == 1000
    assert stats["totals"]["subs_opened"] == 2 and stats["totals"]["subs_closed"] == 2


def test_reset_swaps_the_store_and_counts_from_zero_keeping_totals_since_start():
    core, clock = make_core()
    gone = core.open_session("gone")
    core.close_session(gone, 1000)
    session = core.open_session("x")
    drain(core, core.receive(session, encode_req("a", {"limit": 2})))
    core.receive(session, encode_client_event(note(3000, "live")))
    core.record_sent(session, events=2, live=False, nbytes=500)
    fresh = EventStore()
    fresh.load(STORED[:3])
    clock.t = 6000.0
    core.reset(fresh)
    assert core.store is fresh and core.resets == 1 and core.reset_at == 6000.0
    assert not session.subs and core.idle_state() == (0, None)
    stats = core.stats()
    assert (stats["resets"], stats["reset_at"]) == (1, 6000.0)
    assert stats["closed_connections"] == []
    [row] = stats["connections"]
    assert row["id"] == session.conn_id  # the connection stays, its figures restart
    restarted = ("messages_received", "events_sent", "bytes_sent", "subs_opened", "last_eose_at")
    assert [row[name] for name in restarted] == [0, 0, 0, 0, None]
    totals, since_start = stats["totals"], stats["totals_since_start"]
    assert totals["events_stored"] == 3 and totals["connections_open"] == 1
    assert (totals["subs_opened"], totals["events_accepted"], totals["bytes_sent"]) == (0, 0, 0)
    assert since_start["subs_opened"] == 1 and since_start["subs_closed"] == 1
    assert [since_start[n] for n in ("events_accepted", "bytes_sent", "connections_opened")] == [1, 500, 2]
    core.receive(session, encode_req("b", {"limit": 0}))
    stats = core.stats()
    assert stats["totals"]["subs_opened"] == 1 and stats["totals_since_start"]["subs_opened"] == 2


def test_stats_lists_connections_with_subscription_filters():
    core, _ = make_core()
    session = core.open_session("127.0.0.1:9")
    core.receive(session, encode_req("feed", {"kinds": [1], "limit": 10}, {"#p": [STORED[0].pubkey]}))
    row = core.stats()["connections"][0]
    assert row["id"] == session.conn_id and row["remote"] == "127.0.0.1:9"
    assert row["subscriptions"] == {"feed": [{"kinds": [1], "limit": 10}, {"#p": [STORED[0].pubkey]}]}


def test_limits_validate_and_nip11_advertises_them():
    with pytest.raises(ValueError, match="max_limit must be a positive integer"):
        Limits(max_limit=0)
    with pytest.raises(ValueError, match="default_limit must not exceed"):
        Limits(default_limit=10, max_limit=5)
    doc = nip11_document(Limits(max_subscriptions=7), version="9")
    assert doc["limitation"]["max_subscriptions"] == 7
    assert doc["limitation"]["max_message_length"] == Limits().max_message_length
    assert 11 in doc["supported_nips"] and 45 in doc["supported_nips"]


def test_older_replaceable_version_is_ok_duplicate_and_deleted_event_is_blocked():
    core, _ = make_core()
    session = core.open_session("x")
    drain(core, core.receive(session, encode_req("profiles", {"kinds": [0], "limit": 0})))
    newer, older = note(3000, '{"name":"new"}', kind=0), note(2000, '{"name":"old"}', kind=0)
    reply = core.receive(session, encode_client_event(newer))
    assert msgs(reply) == [["OK", newer.id, True, ""]] and len(reply.deliveries) == 1
    reply = core.receive(session, encode_client_event(older))
    assert msgs(reply) == [["OK", older.id, True, "duplicate: have a newer version of this event"]]
    assert reply.deliveries == []
    target = note(4000, "to be deleted")
    deletion = note(4001, "", kind=5, tags=[["e", target.id]])
    assert msgs(core.receive(session, encode_client_event(deletion)))[0][2] is True
    assert msgs(core.receive(session, encode_client_event(target))) == [
        ["OK", target.id, False, "blocked: this event was deleted"]
    ]


# -- properties ----------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule  # noqa: E402

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
VERBS = ("EVENT", "REQ", "CLOSE", "COUNT", "AUTH", "NOTICE", "")
client_messages = (
    st.binary(max_size=64)
    | st.lists(json_values, max_size=4).map(orjson.dumps)
    | st.tuples(st.sampled_from(VERBS), st.lists(json_values, max_size=3)).map(
        lambda t: orjson.dumps([t[0], *t[1]])
    )
)


@settings(max_examples=200, deadline=None)
@given(client_messages)
def test_any_input_gets_a_nip01_answer_and_never_raises(data):
    core, _ = make_core()
    session = core.open_session("x")
    before = len(core.store)
    reply = core.receive(session, data)
    for message in reply.messages:
        decoded = orjson.loads(message)
        assert decoded[0] in ("NOTICE", "OK", "CLOSED", "COUNT")
        if decoded[0] in ("NOTICE", "CLOSED") or (decoded[0] == "OK" and decoded[2] is False):
            reason = decoded[-1]
            assert reason.split(":", 1)[0] in ("error", "invalid", "unsupported", "rate-limited", "blocked")
    assert len(core.store) == before  # nothing random is ever a valid signed event


KINDS = (1, 7)


class SubscriptionModel(RuleBasedStateMachine):
    """REQ/CLOSE/replace/harness-close on two connections against a plain dict of open subs:
    a live event reaches exactly the open subscriptions whose filters match it."""

    def __init__(self) -> None:
        super().__init__()
        self.core = RelayCore(EventStore(), Limits(max_subscriptions=4), clock=Clock())
        self.sessions = [self.core.open_session("a"), self.core.open_session("b")]
        self.model: dict[tuple[int, str], int] = {}  # (session index, sub id) -> kind
        self.t = 10_000

    @rule(s=st.integers(0, 1), sub=st.sampled_from("pqrst"), kind=st.sampled_from(KINDS))
    def req(self, s, sub, kind):
        reply = self.core.receive(self.sessions[s], encode_req(sub, {"kinds": [kind], "limit": 0}))
        open_here = [k for k in self.model if k[0] == s]
        if (s, sub) in self.model or len(open_here) < 4:
            assert reply.query is not None
            self.core.finish_query(reply.query.sub)
            self.model[(s, sub)] = kind
        else:
            assert msgs(reply)[0][0] == "CLOSED" and msgs(reply)[0][2].startswith("rate-limited:")

    @rule(s=st.integers(0, 1), sub=st.sampled_from("pqrst"))
    def close(self, s, sub):
        assert self.core.receive(self.sessions[s], encode_close(sub)).messages == []
        self.model.pop((s, sub), None)

    @rule(s=st.integers(0, 1))
    def harness_close(self, s):
        closed = self.core.close_subscriptions(self.sessions[s], "error: closed by test harness")
        assert sorted(orjson.loads(m)[1] for m in closed) == sorted(k[1] for k in self.model if k[0] == s)
        self.model = {k: v for k, v in self.model.items() if k[0] != s}

    @rule(kind=st.sampled_from(KINDS))
    def publish(self, kind):
        self.t += 1
        tags = [["e", STORED[0].id]] if kind == 7 else []
        ok, _, deliveries = self.core.publish(note(self.t, f"live {self.t}", kind=kind, tags=tags))
        assert ok
        got = sorted((self.sessions.index(d.sub.session), d.sub.sub_id) for d in deliveries)
        assert got == sorted(k for k, v in self.model.items() if v == kind)
        assert all(d.sub.active for d in deliveries)

    @invariant()
    def stats_agree(self):
        for index, session in enumerate(self.sessions):
            assert sorted(session.subs) == sorted(k[1] for k in self.model if k[0] == index)
        assert self.core.active_subscriptions() == len(self.model)


SubscriptionModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_subscriptions_against_a_model = SubscriptionModel.TestCase


def test_check_signatures_names_the_events_whose_signature_verifies_and_skips_garbage() -> None:
    from relaysim.relay.core import check_signatures

    good = [
        sign_event(bytes([7]) * 32, created_at=1_700_000_000 + i, kind=1, content=str(i)) for i in range(3)
    ]
    bad = Event(good[0].id, good[0].pubkey, good[0].created_at, 1, (), "x", good[1].sig)
    messages = [encode_client_event(e) for e in [*good, bad]] + [b'["EVENT",{}]', b"[1", b'["EVENT"]']
    assert check_signatures(messages) == {(e.id, e.pubkey, e.sig) for e in good}
