"""Live fan-out over real loopback websockets: every connection gets exactly its events, in order.

The relay writes a fan-out straight to idle connections' sockets (a big one from two threads), and
queues it behind what a busy connection already has; a subscription closed before its event leaves
gets nothing. These tests publish to more connections than the two-thread threshold, with
connections in each state at once, and compare each connection's stream with what a plain rule
says: for each event in publishing order, one EVENT per open subscription that matches, in the
order the subscriptions were opened.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import orjson
import trio
from relay_client import SK2, WsClient, bulk_events, connect, signed_note

from relaysim.nostr.event import Event
from relaysim.nostr.messages import encode_client_event, encode_close, encode_req
from relaysim.relay import ConnectionSettings, Limits, RelayConfig, open_relay, websocket
from relaysim.relay.websocket import SPLIT_WRITES_MIN

TAG = "fan"
CONNS = SPLIT_WRITES_MIN + 40  # enough idle connections for the two-thread write path
FEED = {"kinds": [1], "#t": [TAG]}
ALSO = {"#t": [TAG], "since": 100}  # a second, different filter the same events match
OTHER = {"kinds": [7]}  # matches none of them


def _matches(flt: dict[str, Any], event: Event) -> bool:
    """The test's own reading of the few filter keys used here (not the relay's Filter)."""
    if "kinds" in flt and event.kind not in flt["kinds"]:
        return False
    if "since" in flt and event.created_at < flt["since"]:
        return False
    return "#t" not in flt or any(t[0] == "t" and t[1] in flt["#t"] for t in event.tags)


async def _open(client: WsClient, sub_id: str, flt: dict[str, Any]) -> None:
    await client.send(encode_req(sub_id, {**flt, "limit": 0}))
    events, others = await client.recv_until_eose(sub_id)
    assert (events, others) == ([], [])


async def _read_until_eose(client: WsClient, sub_id: str) -> list[Any]:
    out = []
    while True:
        msg = await client.recv_json()
        if msg == ["EOSE", sub_id]:
            return out
        out.append(msg)


async def test_fan_out_to_idle_busy_and_closing_connections_matches_the_rule_in_order(monkeypatch):
    shared: list[int] = []  # how many writes each big fan-out gave the helper thread
    real_write_all = websocket._write_all

    def counting_write_all(fds: list[int], data: list[bytes]) -> list[int]:
        if threading.current_thread() is not threading.main_thread():
            shared.append(len(fds))
        return real_write_all(fds, data)

    monkeypatch.setattr(websocket, "_write_all", counting_write_all)
    settings = ConnectionSettings(batch_events=20, send_timeout=20.0)
    config = RelayConfig(
        events=bulk_events(1000, content_size=500), limits=Limits(max_limit=5000), settings=settings
    )
    async with open_relay(config) as relay:
        with trio.fail_after(60):
            clients: list[WsClient] = []
            subs: list[list[tuple[str, dict[str, Any]]]] = []  # each connection's open subs, in order
            for i in range(CONNS):
                client = await connect(relay.url)
                mine = [("a", FEED)]
                await _open(client, "a", FEED)
                if i % 5 == 1:  # two subscriptions match each event: two EVENTs, in this order
                    await _open(client, "b", ALSO)
                    mine.append(("b", ALSO))
                if i % 7 == 2:  # opened, then closed: nothing for it
                    await _open(client, "c", FEED)
                    await client.send(encode_close("c"))
                if i % 13 == 4:  # a third subscription that matches nothing
                    await _open(client, "d", OTHER)
                    mine.append(("d", OTHER))
                clients.append(client)
                subs.append(mine)
            rows = relay.stats()["connections"]
            conn_of = {i: relay._connections.get(rows[i]["id"]) for i in range(CONNS)}
            busy_conns = [i for i in range(CONNS) if i % 23 == 3]
            for i in busy_conns:
                # A big query this client does not read yet, and a small send buffer on the relay's
                # side of its socket: the relay's writer blocks, what comes next has to queue.
                conn_of[i].stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # type: ignore[union-attr]
                await clients[i].send(encode_req("big", {"limit": 1000}))
                subs[i].append(("big", {}))  # every event matches it too
            for _ in range(200):
                if not any(conn_of[i].can_write_now() for i in busy_conns):  # type: ignore[union-attr]
                    break
                await trio.sleep(0.01)
            assert not any(conn_of[i].can_write_now() for i in busy_conns)  # type: ignore[union-attr]

            # 1) three events in one write from a publisher whose own subscription closes between
            #    them: one read, so one delivery pass with three events per connection.
            publisher = await connect(relay.url)
            await _open(publisher, "mine", FEED)
            burst = [signed_note(1000 + k, f"burst {k}", sk=SK2, tags=[["t", TAG]]) for k in range(3)]
            publisher.proto.send_text(encode_client_event(burst[0]))
            publisher.proto.send_text(encode_close("mine"))
            for event in burst[1:]:
                publisher.proto.send_text(encode_client_event(event))
            await publisher._flush()
            assert [await publisher.recv_json() for _ in burst] == [["OK", e.id, True, ""] for e in burst]
            # 2) one event alone, published in the relay's process: one event, many direct writes.
            alone = signed_note(2000, "alone", tags=[["t", TAG]])
            assert await relay.publish(alone) == (True, "")
            # 3) one that only the big queries' subscriptions (no filter condition) match.
            untagged = signed_note(2001, "untagged")
            assert await relay.publish(untagged) == (True, "")
            published = [*burst, alone, untagged]
            wire = {e.id: e.json for e in published}

            expected_total = 0
            for i, client in enumerate(clients):
                expected = [(sid, e.id) for e in published for sid, flt in subs[i] if _matches(flt, e)]
                expected_total += len(expected)
                await client.send(encode_req("sync", {"ids": ["f" * 64]}))
                got = await _read_until_eose(client, "sync")
                # Leave out the big query's stored events and its EOSE (they interleave with the
                # live ones on the busy connections): the live stream itself must be exact.
                live = [m for m in got if m[1] != "big" or (m[0] == "EVENT" and m[2]["id"] in wire)]
                assert [(m[0], m[1], m[2]["id"]) for m in live] == [("EVENT", s, e) for s, e in expected], i
                assert all(orjson.dumps(m[2]) == wire[m[2]["id"]] for m in live)
            await publisher.send(encode_req("sync", {"ids": ["f" * 64]}))
            assert await _read_until_eose(publisher, "sync") == []  # "mine" closed before it was written

            assert len(shared) == 2 and min(shared) >= SPLIT_WRITES_MIN // 2  # the burst, then "alone"

            stats = relay.stats()
            totals = stats["totals"]
            assert totals["live_events_sent"] == expected_total
            assert totals["events_after_close"] == 0
            assert totals["slow_client_disconnects"] == 0
            rows = stats["connections"]
            for i in range(CONNS):
                expected = sum(_matches(f, e) for e in published for _, f in subs[i])
                assert rows[i]["live_events_sent"] == expected, i
                session = relay.core.sessions[rows[i]["id"]]
                for sid, flt in subs[i]:
                    if sid != "big":  # its stored events count too
                        assert session.subs[sid].events_sent == sum(_matches(flt, e) for e in published)
            for client in [*clients, publisher]:
                await client.close()
