"""Hostile input over a real socket (issue 12): the known-bad corpus, then Hypothesis-made frames.

Each corpus item is sent by one client while another (the *witness*) holds a live subscription.
The item must get its NIP-01 answer (a prefix such as ``invalid:`` or ``error:``) or a close code
with a reason -- never a crash, never a hang -- and afterwards everything accepted before is
intact: the witness still receives a newly published event, a fresh REQ still gets every stored
event and its EOSE, and the relay counted no connection error. Behaviour is asserted, not timing
(every step has a generous ``fail_after`` so a hang fails instead of blocking CI).

Run with ``-s`` to print what each item got back.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from relay_client import SK2, WsClient, connect, http_request, signed_note
from relay_process import serve_process, write_dataset
from websockets.exceptions import InvalidState

from relaysim.nostr.filter import Filter
from relaysim.nostr.messages import encode_client_event, encode_close, encode_count_request, encode_req
from relaysim.relay import ConnectionSettings, Relay, RelayConfig, open_relay
from relaysim.relay.core import MAX_FILTER_BYTES, filter_weight

STORED = [signed_note(1000 + i, f"stored {i}") for i in range(30)]
SETTINGS = ConnectionSettings(fragment_timeout=1.0, request_timeout=1.0)
# The prefixes NIP-01 defines for OK and CLOSED (and relaysim's NOTICEs use).
PREFIXES = (
    "duplicate:", "pow:", "blocked:", "rate-limited:", "invalid:", "restricted:", "mute:", "error:",
    "auth-required:", "unsupported:",
)  # fmt: skip
GONE = (ConnectionError, trio.BrokenResourceError, trio.ClosedResourceError, InvalidState, OSError)


def has_prefix(text: str) -> bool:
    return text.startswith(PREFIXES)


async def answers(client: WsClient, n: int) -> list[Any]:
    return [await client.recv_json() for _ in range(n)]


async def closed_with(client: WsClient) -> str:
    code, reason = await client.wait_closed()
    assert code is not None and code != 1000 and reason, (code, reason)
    return f"close {code} {reason!r}"


async def send_quietly(action: Awaitable[None]) -> None:
    """Send what may be cut short: the relay is allowed to close mid-message."""
    with contextlib.suppress(*GONE):
        await action


# -- the corpus: each item returns what it got back ----------------------------------------------


async def deep_nesting(relay: Relay, client: WsClient) -> str:
    await client.send(b"[" * 100_000 + b"]" * 100_000)
    notice = await client.recv_json()
    await client.send(b'["REQ","deep",{"#t":' + b"[" * 50_000 + b"]" * 50_000 + b"}]")
    closed = await client.recv_json()
    await client.send(b'["REQ","dict",' + b'{"a":' * 40_000 + b"1" + b"}" * 40_000 + b"]")
    unknown = await client.recv_json()
    assert notice[0] == "NOTICE" and has_prefix(notice[1]), notice
    assert closed[:2] == ["CLOSED", "deep"] and closed[2].startswith("invalid:"), closed
    assert unknown[:2] == ["CLOSED", "dict"] and has_prefix(unknown[2]), unknown
    return f"{notice} / {closed} / {unknown}"


async def ten_megabytes(relay: Relay, client: WsClient) -> str:
    await send_quietly(client.send(b'["EVENT",{"content":"' + b"x" * 10_000_000 + b'"}]'))
    return await closed_with(client)


async def ten_megabytes_in_fragments(relay: Relay, client: WsClient) -> str:
    await send_quietly(client.send_fragments([b"[" + b" " * 1_000_000] * 10 + [b"]"]))
    return await closed_with(client)


async def invalid_utf8(relay: Relay, client: WsClient) -> str:
    await client.send_raw_text_frame(b'["REQ","\xff\xfe",{}]')
    return await closed_with(client)


async def lone_surrogate_escaped(relay: Relay, client: WsClient) -> str:
    await client.send(b'["REQ","\\ud800",{}]')
    await client.send(b'["EVENT",{"content":"\\udc00"}]')
    got = await answers(client, 2)
    assert all(m[0] == "NOTICE" and has_prefix(m[1]) for m in got), got
    return str(got)


async def lone_surrogate_encoded(relay: Relay, client: WsClient) -> str:
    await client.send_raw_text_frame(b'["REQ","\xed\xa0\x80",{}]')  # CESU-style surrogate: not UTF-8
    return await closed_with(client)


async def nan_and_huge_numbers(relay: Relay, client: WsClient) -> str:
    await client.send(b'["REQ","nan",{"limit":NaN}]')
    await client.send(b'["REQ","inf",{"since":Infinity}]')
    await client.send(b'["REQ","e400",{"limit":1e400}]')
    await client.send(b'["REQ","big",{"limit":' + b"9" * 400 + b"}]")
    await client.send(b'["REQ","kinds",{"kinds":[' + b"9" * 30 + b"]}]")
    await client.send(b'["REQ","since",{"since":-' + b"9" * 30 + b"}]")
    got = await answers(client, 6)
    for msg in got:
        assert msg[0] in ("NOTICE", "CLOSED") and has_prefix(msg[-1]), msg
    return str(got)


async def negative_limits(relay: Relay, client: WsClient) -> str:
    await client.send(encode_req("neg", {"limit": -1}))
    await client.send(encode_req("neg0", {"kinds": [-1]}))
    await client.send(encode_count_request("cneg", {"limit": -5}))
    got = await answers(client, 3)
    assert [m[0] for m in got] == ["CLOSED"] * 3 and all(m[2].startswith("invalid:") for m in got), got
    return str(got)


async def ten_thousand_filters(relay: Relay, client: WsClient) -> str:
    await client.send(encode_req("many", *[{}] * 10_000))
    await client.send(encode_count_request("cmany", *[{}] * 10_000))
    got = await answers(client, 2)
    assert [m[:2] for m in got] == [["CLOSED", "many"], ["CLOSED", "cmany"]], got
    assert all(m[2].startswith("invalid:") for m in got), got
    return str(got)


async def thousand_subscriptions(relay: Relay, client: WsClient) -> str:
    for i in range(1000):
        client.proto.send_text(encode_req(f"s{i}", {"kinds": [1], "limit": 1}))
    await client._flush()
    got: list[Any] = []
    while sum(1 for m in got if m[0] in ("EOSE", "CLOSED")) < 1000:  # one of them per REQ
        got.append(await client.recv_json())
    kinds = {verb: sum(1 for m in got if m[0] == verb) for verb in ("EVENT", "EOSE", "CLOSED")}
    room = relay.limits.max_subscriptions - 1  # "before" is open too
    assert kinds == {"EVENT": room, "EOSE": room, "CLOSED": 1000 - room}, kinds
    assert all(m[2].startswith("rate-limited:") for m in got if m[0] == "CLOSED")
    open_ids = set(relay.stats()["connections"][-1]["subscriptions"])
    assert open_ids == {"before"} | {f"s{i}" for i in range(room)}
    return f"{kinds}, first refusal {next(m for m in got if m[0] == 'CLOSED')}"


async def fat_filters(relay: Relay, client: WsClient) -> str:
    # 40 REQs of 3,500 ids each (~230 KB a message, under the message limit): the open
    # subscriptions' filters would hold ~18 MB; the relay keeps at most MAX_FILTER_BYTES of them
    # and refuses the rest with rate-limited:, and room comes back when the client CLOSEs some.
    def ids(i: int) -> list[str]:
        return [f"{i:08x}{j:056x}" for j in range(3500)]

    for i in range(40):
        client.proto.send_text(encode_req(f"fat{i}", {"ids": ids(i)}))
    await client._flush()
    got: list[Any] = []
    while sum(1 for m in got if m[0] in ("EOSE", "CLOSED")) < 40:
        got.append(await client.recv_json())
    refused = [m for m in got if m[0] == "CLOSED"]
    weight = filter_weight([Filter(ids=frozenset(ids(0)))])
    room = MAX_FILTER_BYTES // weight
    assert len(refused) == 40 - room and 0 < room < 40, (len(refused), room)
    assert all(m[2].startswith("rate-limited: this connection's subscriptions would hold") for m in refused)
    row = relay.stats()["connections"][-1]
    assert len(row["subscriptions"]) == room + 1  # and "before"
    await client.send(encode_close("fat0"))
    await client.send(encode_req("again", {"ids": ids(99)}))
    assert (await client.recv_json())[:2] == ["EOSE", "again"]  # CLOSE made room
    return f"{room} open, {len(refused)} refused: {refused[0][2]}"


async def binary_frames(relay: Relay, client: WsClient) -> str:
    await client.send_binary(encode_req("bin", {}))
    await client.send_binary(b"\x00\xff" * 1000)
    got = await answers(client, 2)
    assert all(m[0] == "NOTICE" and m[1].startswith("invalid:") for m in got), got
    return str(got[0])


async def fragments_never_finished(relay: Relay, client: WsClient, witness: WsClient) -> str:
    client.proto.send_text(b'["REQ","frag",', fin=False)
    client.proto.send_continuation(b'{"kinds":[1]}', fin=False)
    await client._flush()
    await assert_intact(relay, witness)  # meanwhile, everyone else is served
    return await closed_with(client)  # after fragment_timeout


async def slowloris_upgrade(relay: Relay, witness: WsClient) -> str:
    stream = await trio.open_tcp_stream(relay.host, relay.port)
    head = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    answer = b""
    try:
        for i in range(40):  # one byte every 0.1 s: the head would take 6 s, the relay waits 1 s
            await stream.send_all(head[i : i + 1])
            if i == 3:
                await assert_intact(relay, witness)  # meanwhile, everyone else is served
            await trio.sleep(0.1)
    except GONE:
        pass
    while chunk := await stream.receive_some(4096):
        answer += chunk
    await stream.aclose()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    return answer.split(b"\r\n", 1)[0].decode() + " / " + answer.rsplit(b"\r\n", 1)[1].decode().strip()


Item = Callable[[Relay, WsClient], Awaitable[str]]
CORPUS: dict[str, Item] = {
    "deep nesting": deep_nesting,
    "10 MB message": ten_megabytes,
    "10 MB in fragments": ten_megabytes_in_fragments,
    "invalid UTF-8": invalid_utf8,
    "lone surrogate (JSON escape)": lone_surrogate_escaped,
    "lone surrogate (UTF-8 bytes)": lone_surrogate_encoded,
    "NaN and huge numbers": nan_and_huge_numbers,
    "negative limits": negative_limits,
    "10,000 filters": ten_thousand_filters,
    "1,000 subscriptions": thousand_subscriptions,
    "subscriptions holding 18 MB of filters": fat_filters,
    "binary frames": binary_frames,
}


# -- intact: what was accepted before still works --------------------------------------------------


async def open_witness(relay: Relay) -> WsClient:
    witness = await connect(relay.url)
    await witness.send(encode_req("live", {"kinds": [1], "limit": 0}))
    await witness.recv_until_eose("live")
    return witness


PUBLISHED = iter(range(10**6))


async def assert_intact(relay: Relay, witness: WsClient) -> None:
    """A new event reaches the witness's live subscription; a new REQ gets every stored event."""
    with trio.fail_after(10):
        note = signed_note(5000 + next(PUBLISHED), "still here", sk=SK2)
        publisher = await connect(relay.url)
        await publisher.send(encode_client_event(note))
        assert await publisher.recv_json() == ["OK", note.id, True, ""]
        live = await witness.recv_json()
        assert live[:2] == ["EVENT", "live"] and live[2]["id"] == note.id
        await publisher.send(encode_req("all", {"authors": [STORED[0].pubkey]}))
        events, _ = await publisher.recv_until_eose("all")
        assert {e.id for e in events} == {e.id for e in STORED}
        await publisher.close()
    assert relay.stats()["totals"]["connection_errors"] == 0


@pytest.fixture
async def relay():
    async with open_relay(RelayConfig(events=STORED, settings=SETTINGS)) as r:
        yield r


@pytest.mark.parametrize("name", list(CORPUS))
async def test_corpus_item_is_answered_and_the_relay_stays_intact(relay, name):
    with trio.fail_after(30):
        witness = await open_witness(relay)
        client = await connect(relay.url)
        await client.send(encode_req("before", {"kinds": [1], "limit": 0}))  # accepted before
        await client.recv_until_eose("before")
        got = await CORPUS[name](relay, client)
        print(f"\n{name}: {got}")
        if not client.eof and client.proto.close_rcvd is None:
            await client.send(encode_close("before"))  # the connection is still usable
            await client.close()
        await assert_intact(relay, witness)
        await witness.close()


async def test_fragments_that_never_finish_are_closed_with_a_reason(relay):
    with trio.fail_after(30):
        witness = await open_witness(relay)
        client = await connect(relay.url)
        got = await fragments_never_finished(relay, client, witness)
        print(f"\nfragments never finished: {got}")
        assert got.startswith("close 1008 ")
        await assert_intact(relay, witness)


async def test_slowloris_upgrade_gets_408_and_the_relay_stays_intact(relay):
    with trio.fail_after(30):
        witness = await open_witness(relay)
        got = await slowloris_upgrade(relay, witness)
        print(f"\nslowloris HTTP upgrade: {got}")
        await assert_intact(relay, witness)


# -- Hypothesis: generated frames over a real websocket -------------------------------------------

VERBS = ["REQ", "EVENT", "CLOSE", "COUNT", "AUTH", "NOTICE", "EOSE", "", "req"]
json_leaf = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)  # fmt: skip
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
KEYS = ["ids", "authors", "kinds", "#e", "#p", "#t", "since", "until", "limit", "search", "#"]
filters = st.dictionaries(st.sampled_from(KEYS), json_value, max_size=3)
nip01_ish = st.builds(
    # The stdlib encoder: integers of any size, lone surrogates as \ud800 escapes.
    lambda verb, args: json.dumps([verb, *args]).encode(),
    st.sampled_from(VERBS),
    st.lists(st.text(max_size=8) | filters | json_value, max_size=4),
)
Frame = tuple[str, bytes]
frames = st.lists(
    st.one_of(
        nip01_ish.map(lambda b: ("text", b)),
        st.text(max_size=60).map(lambda t: ("text", t.encode("utf-8", "surrogatepass"))),
        st.binary(max_size=60).map(lambda b: ("raw-text", b)),  # possibly not UTF-8
        st.binary(max_size=60).map(lambda b: ("binary", b)),
        st.sampled_from([b"NaN", b"[NaN]", b'["REQ","x",{"limit":Infinity}]', b"[" * 3000]).map(
            lambda b: ("text", b)
        ),
        nip01_ish.map(lambda b: ("fragments", b)),
        st.just(("ping", b"p")),
    ),
    min_size=1,
    max_size=6,
)


@pytest.fixture(scope="module")
def relay_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``relaysim serve`` on the stored notes, for the whole module's Hypothesis examples."""
    dataset = write_dataset(tmp_path_factory.mktemp("hostile") / "notes.jsonl", STORED)
    with serve_process(dataset) as relay:
        yield relay.url


VERBS_FROM_RELAY = ("EVENT", "EOSE", "OK", "NOTICE", "CLOSED", "COUNT")


async def send_frame(client: WsClient, kind: str, data: bytes) -> None:
    if kind == "text":
        await client.send(data)
    elif kind == "raw-text":
        await client.send_raw_text_frame(data)
    elif kind == "binary":
        await client.send_binary(data)
    elif kind == "fragments":
        third = max(1, len(data) // 3)
        await client.send_fragments([data[:third], data[third : 2 * third], data[2 * third :]])
    else:
        await client.ping(data)


async def one_example(url: str, sent: list[Frame]) -> None:
    with trio.fail_after(10):
        client = await connect(url)
        try:
            for kind, data in sent:
                await send_frame(client, kind, data)
            await client.send(encode_req("sync", {"ids": []}))
        except GONE:
            pass
        # Every answer is a NIP-01 message with its prefix, up to our EOSE -- or a close with a reason.
        while True:
            try:
                msg = await client.recv_json()
            except GONE:
                code, reason = await client.wait_closed()
                assert code in (1002, 1007, 1008, 1009) and reason, (code, reason)
                break
            assert isinstance(msg, list) and msg and msg[0] in VERBS_FROM_RELAY, msg
            if msg[0] in ("NOTICE", "CLOSED"):
                assert has_prefix(msg[-1]), msg
            elif msg[0] == "OK" and msg[2] is False:
                assert has_prefix(msg[3]), msg
            elif msg == ["EOSE", "sync"]:
                break
        await client.stream.aclose()
        # The relay is intact: the stored events, in full, to a new client.
        canary = await connect(url)
        await canary.send(encode_req("all", {"authors": [STORED[0].pubkey]}))
        events, _ = await canary.recv_until_eose("all")
        assert len(events) == len(STORED)
        await canary.close()


@settings(max_examples=120, deadline=None)
@given(sent=frames)
def test_generated_frames_get_nip01_answers_or_a_close_with_a_reason(relay_process, sent):
    trio.run(one_example, relay_process, sent)


def test_the_generated_frames_left_no_connection_error(relay_process):
    """Runs after the Hypothesis test in this module (same relay): nothing cost a server error."""
    async def errors() -> int:
        status, _, body = await http_request(relay_process.replace("ws://", "http://", 1), path="/stats")
        assert status == 200
        return int(orjson.loads(body)["totals"]["connection_errors"])

    assert trio.run(errors) == 0
