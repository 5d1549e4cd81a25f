"""The relay over real loopback websockets: NIP-01 flows, bad input, CLOSE, slow clients, shutdown."""

from __future__ import annotations

import orjson
import pytest
import trio
from relay_client import (
    SK2,
    WsClient,
    assert_forged_burst_judged,
    bulk_events,
    connect,
    http_request,
    signed_note,
)

from relaysim.nostr.messages import encode_client_event, encode_close, encode_req
from relaysim.relay import ConnectionSettings, Limits, Relay, RelayConfig, open_relay, serve

STORED = [signed_note(1000 + i, f"note {i}") for i in range(30)]


@pytest.fixture
async def relay():
    limits = Limits(max_subscriptions=5, max_message_length=4096)
    async with open_relay(RelayConfig(events=STORED, limits=limits)) as r:
        yield r


async def sync_point(client: WsClient, sub_id: str = "sync") -> list:
    """Send a REQ that matches nothing and read up to its EOSE: everything sent before is in."""
    await client.send(encode_req(sub_id, {"ids": ["f" * 64]}))
    events, others = await client.recv_until_eose(sub_id)
    assert events == []
    return others


async def test_req_stored_then_eose_then_live(relay):
    with trio.fail_after(10):
        client = await connect(relay.url)
        await client.send(encode_req("feed", {"kinds": [1], "limit": 10}))
        events, others = await client.recv_until_eose("feed")
        assert [e.created_at for e in events] == list(range(1029, 1019, -1))
        assert others == []
        publisher = await connect(relay.url)
        live = signed_note(5000, "live one", sk=SK2)
        await publisher.send(encode_client_event(live))
        assert await publisher.recv_json() == ["OK", live.id, True, ""]
        msg = await client.recv_json()
        assert msg[:2] == ["EVENT", "feed"] and msg[2]["id"] == live.id
        assert orjson.dumps(msg[2]) == live.json
        ok, message = await relay.publish(signed_note(5001, "in process"))
        assert (ok, message) == (True, "")
        msg = await client.recv_json()
        assert msg[2]["content"] == "in process"
        await client.close()
        await publisher.close()


async def test_close_stops_delivery_and_later_events_never_arrive(relay):
    with trio.fail_after(10):
        client = await connect(relay.url)
        await client.send(encode_req("feed", {"kinds": [1], "limit": 0}))
        await client.recv_until_eose("feed")
        await client.send(encode_close("feed"))
        await sync_point(client, "s1")  # the CLOSE has been processed
        for i in range(5):
            await relay.publish(signed_note(6000 + i, f"after close {i}"))
        others = await sync_point(client, "s2")
        assert others == []
        row = relay.stats()["connections"][0]
        assert sorted(row["subscriptions"]) == ["s1", "s2"]  # "feed" is gone
        assert (row["subs_opened"], row["subs_closed"]) == (3, 1)
        await client.close()


async def test_close_mid_query_in_the_same_read_sends_nothing(relay):
    big = bulk_events(4000)
    async with open_relay(RelayConfig(events=big, limits=Limits(max_limit=5000))) as r:
        with trio.fail_after(15):
            client = await connect(r.url)
            # Both frames in one write: the relay reads the CLOSE before the query task runs.
            client.proto.send_text(encode_req("big", {"kinds": [1], "limit": 5000}))
            client.proto.send_text(encode_close("big"))
            await client._flush()
            others = await sync_point(client)
            assert others == []
            assert r.stats()["connections"][0]["events_sent"] == 0


async def test_close_mid_query_between_batches_stops_before_eose():
    big = bulk_events(4000, content_size=400)
    settings = ConnectionSettings(batch_events=20, outbox_bytes=16_384, send_timeout=30)
    async with open_relay(RelayConfig(events=big, limits=Limits(max_limit=5000), settings=settings)) as r:
        with trio.fail_after(20):
            client = await connect(r.url, rcvbuf=4096)
            await client.send(encode_req("big", {"kinds": [1], "limit": 5000}))
            first = await client.recv_json()
            assert first[:2] == ["EVENT", "big"]
            await client.send(encode_close("big"))
            others = await sync_point(client)
            got = 1 + sum(1 for m in others if m[0] == "EVENT")
            assert ["EOSE", "big"] not in others
            assert got < 4000, got
            assert "big" not in r.stats()["connections"][0]["subscriptions"]
            print("events received before CLOSE took effect:", got)


async def test_req_reusing_an_id_replaces_the_subscription(relay):
    with trio.fail_after(10):
        client = await connect(relay.url)
        await client.send(encode_req("s", {"kinds": [1], "limit": 0}))
        await client.recv_until_eose("s")
        await client.send(encode_req("s", {"kinds": [7], "limit": 0}))
        await client.recv_until_eose("s")
        await relay.publish(signed_note(7000, "kind 1"))
        reaction = signed_note(7001, "+", kind=7, tags=[["e", STORED[0].id]])
        await relay.publish(reaction)
        msg = await client.recv_json()
        assert msg[:2] == ["EVENT", "s"] and msg[2]["id"] == reaction.id
        assert await sync_point(client) == []
        row = relay.stats()["connections"][0]
        assert sorted(row["subscriptions"]) == ["s", "sync"]
        assert row["subscriptions"]["s"] == [{"kinds": [7], "limit": 0}]


async def test_refused_req_gets_closed_with_prefix(relay):
    with trio.fail_after(10):
        client = await connect(relay.url)
        for i in range(5):
            await client.send(encode_req(f"s{i}", {"limit": 0}))
            await client.recv_until_eose(f"s{i}")
        await client.send(encode_req("s5", {"limit": 0}))
        assert await client.recv_json() == [
            "CLOSED",
            "s5",
            "rate-limited: too many open subscriptions (at most 5 per connection); CLOSE one first",
        ]
        await client.send(encode_req("x" * 65, {"limit": 0}))
        assert await client.recv_json() == [
            "CLOSED",
            "x" * 65,
            "invalid: subscription id is longer than 64 characters",
        ]
        await client.send(b'["REQ","s0",{"until":"soon"}]')
        assert await client.recv_json() == ["CLOSED", "s0", "invalid: filter 'until' must be an integer"]
        assert sorted(relay.stats()["connections"][0]["subscriptions"]) == ["s1", "s2", "s3", "s4"]


@pytest.mark.parametrize(
    ("data", "answer"),
    [
        (b"{not json", ["NOTICE", "error: could not parse message: not JSON"]),
        (b'"EVENT"', ["NOTICE", "error: could not parse message: not a JSON array"]),
        (b'["PUBLISH",{}]', ["NOTICE", "error: unknown message type 'PUBLISH'"]),
        (b'["EVENT","x"]', ["NOTICE", "invalid: event must be a JSON object"]),
        (b'["REQ",{"kinds":[1]}]', ["NOTICE", "invalid: REQ subscription id must be a non-empty string"]),
        (b'["CLOSE",1]', ["NOTICE", "invalid: CLOSE subscription id must be a non-empty string"]),
        (b'["COUNT","c",{"kinds":"1"}]', ["CLOSED", "c", "invalid: filter 'kinds' must be an array"]),
    ],
)
async def test_bad_input_gets_its_answer_and_connection_stays_usable(relay, data, answer):
    with trio.fail_after(10):
        client = await connect(relay.url)
        before = len(relay.store)
        await client.send(data)
        assert await client.recv_json() == answer
        await client.send(encode_req("after", {"kinds": [1], "limit": 2}))
        events, _ = await client.recv_until_eose("after")
        assert len(events) == 2
        assert len(relay.store) == before


async def test_event_with_wrong_types_is_ok_false_and_not_stored(relay):
    with trio.fail_after(10):
        client = await connect(relay.url)
        ev = orjson.loads(signed_note(8000).json)
        ev["kind"] = "1"
        await client.send_json(["EVENT", ev])
        assert await client.recv_json() == ["OK", ev["id"], False, "invalid: kind must be an integer"]
        assert relay.store.get(ev["id"]) is None


async def test_binary_frame_gets_notice_and_connection_stays_usable(relay):
    with trio.fail_after(10):
        client = await connect(relay.url)
        await client.send_binary(encode_req("b", {"kinds": [1]}))
        assert await client.recv_json() == [
            "NOTICE",
            "invalid: binary messages are not supported; NIP-01 messages are JSON text",
        ]
        assert await sync_point(client) == []
        assert relay.stats()["connections"][0]["subscriptions"] == {"sync": [{"ids": ["f" * 64]}]}


async def test_invalid_utf8_fails_the_connection_with_1007(relay):
    with trio.fail_after(10):
        client = await connect(relay.url)
        before = len(relay.store)
        await client.send_raw_text_frame(b'["EVENT",{"content":"\xff\xfe"}]')
        code, reason = await client.wait_closed()
        assert code == 1007
        assert reason.startswith("invalid UTF-8")
        assert len(relay.store) == before
        other = await connect(relay.url)  # the relay itself is unharmed
        assert await sync_point(other) == []


async def test_oversized_message_closes_1009_and_limit_is_inclusive(relay):
    with trio.fail_after(10):
        client = await connect(relay.url)
        exact = b'["REQ","pad",{"ids":["' + b"f" * 64 + b'"]}]'
        exact = exact[:-1] + b" " * (4096 - len(exact)) + b"]"
        assert len(exact) == 4096
        await client.send(exact)
        events, _ = await client.recv_until_eose("pad")
        assert events == []
        await client.send(b"[" + b" " * 4096 + b"]")
        code, _ = await client.wait_closed()
        assert code == 1009
        fragmented = await connect(relay.url)
        await fragmented.send_fragments([b"[" + b" " * 3000, b" " * 3000 + b"]"])
        code, _ = await fragmented.wait_closed()
        assert code == 1009


async def test_fragmented_message_is_reassembled_and_ping_answered(relay):
    with trio.fail_after(10):
        client = await connect(relay.url)
        req = encode_req("frag", {"kinds": [1], "limit": 3})
        await client.send_fragments([req[:5], req[5:17], req[17:]])
        events, _ = await client.recv_until_eose("frag")
        assert len(events) == 3
        await client.ping(b"are you there")
        await sync_point(client)
        assert client.pongs == [b"are you there"]


async def test_upgrade_on_another_path_is_the_relay(relay):
    with trio.fail_after(10):
        client = await connect(relay.url, path="/some/where?x=1")
        await client.send(encode_req("p", {"kinds": [1], "limit": 1}))
        events, _ = await client.recv_until_eose("p")
        assert len(events) == 1


async def test_garbage_and_vanishing_clients_do_not_hurt_the_server(relay):
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", relay.port)
        await stream.send_all(b"\x16\x03\x01 not http at all\r\n\r\n")
        answer = await stream.receive_some(1000)
        assert answer.startswith(b"HTTP/1.1 400")
        await stream.aclose()
        # Half a handshake, then gone.
        stream = await trio.open_tcp_stream("127.0.0.1", relay.port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        await stream.aclose()
        # A websocket that drops mid-frame.
        client = await connect(relay.url)
        await client.stream.send_all(b"\x81\xfe\x10")
        await client.stream.aclose()
        status, _, _ = await http_request(relay.http_url, path="/stats")
        assert status == 200
        assert relay.stats()["totals"]["connection_errors"] == 0


async def test_client_that_never_reads_is_disconnected_and_memory_stays_bounded():
    settings = ConnectionSettings(outbox_bytes=65_536, outbox_items=1000, kill_grace=1.0)
    async with open_relay(RelayConfig(settings=settings)) as r:
        with trio.fail_after(20):
            client = await connect(r.url, rcvbuf=4096)
            await client.send(encode_req("all", {"kinds": [1], "limit": 0}))
            await client.recv_until_eose("all")
            conn = r._connections.get(r.stats()["connections"][0]["id"])
            assert conn is not None
            big = "y" * 2000
            published = 0
            while r.stats()["totals"]["slow_client_disconnects"] == 0:
                await r.publish(signed_note(9000 + published, big))
                published += 1
                if published % 20 == 0:
                    await trio.sleep(0.01)
                assert published < 20_000, "the relay kept queueing for a client that does not read"
            assert conn.outbox.high_water_bytes <= settings.outbox_bytes + 4096
            while r.stats()["connections"]:
                await trio.sleep(0.05)
            closed = r.stats()["closed_connections"][0]
            assert closed["close_code"] == 1008
            assert closed["subscriptions"] == {}


async def test_big_query_to_a_client_that_never_reads_times_out():
    settings = ConnectionSettings(outbox_bytes=32_768, batch_events=20, send_timeout=0.5, kill_grace=0.5)
    config = RelayConfig(
        events=bulk_events(3000, content_size=500), limits=Limits(max_limit=5000), settings=settings
    )
    async with open_relay(config) as r:
        with trio.fail_after(20):
            client = await connect(r.url, rcvbuf=4096)
            await client.send(encode_req("big", {"limit": 3000}))
            while r.stats()["connections"]:
                await trio.sleep(0.05)
            assert r.stats()["totals"]["slow_client_disconnects"] == 1
            await client.stream.aclose()


async def test_leaving_the_relay_closes_websockets_with_1001():
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            stop = trio.Event()
            ready: list[Relay] = []

            async def run_relay():
                async with open_relay(RelayConfig()) as r:
                    ready.append(r)
                    await stop.wait()

            nursery.start_soon(run_relay)
            while not ready:
                await trio.sleep(0.01)
            client = await connect(ready[0].url)
            await client.send(encode_req("s", {"limit": 0}))
            await client.recv_until_eose("s")
            stop.set()
            code, reason = await client.wait_closed()
            assert (code, reason) == (1001, "relay shutting down")


async def test_serve_runs_in_the_callers_nursery_until_cancelled():
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            relay = await nursery.start(serve, RelayConfig(events=STORED))
            client = await connect(relay.url)  # ready when start() returns: bound and loaded
            await client.send(encode_req("s", {"limit": 3}))
            events, _ = await client.recv_until_eose("s")
            assert len(events) == 3
            nursery.cancel_scope.cancel()
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", relay.port)  # the listener went with it


async def test_client_reset_while_events_are_pushed_is_a_disconnect_not_an_error(relay):
    import socket
    import struct

    with trio.fail_after(10):
        client = await connect(relay.url)
        await client.send(encode_req("live", {"kinds": [1], "limit": 0}))
        await client.recv_until_eose("live")
        # SO_LINGER 0: close() sends RST, so the relay's next write fails (BrokenResourceError).
        client.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.stream.socket.close()
        for i in range(50):
            await relay.publish(signed_note(20_000 + i, "x" * 1000))
            await trio.sleep(0.001)
        while relay.stats()["connections"]:
            await trio.sleep(0.02)
        assert relay.stats()["totals"]["connection_errors"] == 0
        other = await connect(relay.url)
        assert await sync_point(other) == []


async def test_bad_websocket_handshake_is_refused_by_websockets(relay):
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", relay.port)
        await stream.send_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        answer = b""
        while chunk := await stream.receive_some(4096):
            answer += chunk
        await stream.aclose()
        assert answer.startswith(b"HTTP/1.1 400 Bad Request")
        assert b"Failed to open a WebSocket connection: missing Sec-WebSocket-Key header" in answer
        assert relay.stats()["totals"]["connections_opened"] == 0


async def test_stored_events_of_a_req_leave_in_a_few_socket_writes():
    async with open_relay(RelayConfig(events=bulk_events(600))) as r:
        with trio.fail_after(10):
            client = await connect(r.url)
            await client.send(encode_req("page", {"kinds": [1], "limit": 500}))
            events, _ = await client.recv_until_eose("page")
            assert len(events) == 500
            row = r.stats()["connections"][0]
            assert row["events_sent"] == 500
            assert 1 <= row["writes"] <= 5, row["writes"]  # batches of 250 + EOSE, not 501 writes


async def test_pipelined_events_are_judged_one_by_one_in_order_whatever_checks_their_signatures(relay):
    """A burst of EVENTs in one write has its signatures checked off the event loop (relay/verifier.py),
    yet each gets its own OK in order, and a forged one is refused: a valid signature of an id
    is no pass for content that does not hash to that id."""
    with trio.fail_after(10):
        client = await connect(relay.url)
        await assert_forged_burst_judged(client, since=7000, n=30)
