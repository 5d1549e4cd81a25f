"""The relay's plain HTTP side over real sockets: NIP-11, /stats, /metrics, /idle, /control, static."""

from __future__ import annotations

import orjson
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from relay_client import connect, http_request, signed_note

from relaysim.nostr.messages import encode_client_event, encode_close, encode_req
from relaysim.relay import HARNESS_CLOSE_REASON, Limits, RelayConfig, open_relay
from relaysim.relay import server as server_module
from relaysim.relay.http import HttpRequest
from relaysim.relay.routes import handle_request, is_loopback

STORED = [signed_note(1000 + i, f"note {i}") for i in range(10)]
NIP11 = {"Accept": "application/nostr+json"}


@pytest.fixture
async def relay():
    async with open_relay(RelayConfig(events=STORED, limits=Limits(max_subscriptions=9))) as r:
        yield r


async def test_nip11_document_with_cors_advertises_enforced_limits(relay):
    with trio.fail_after(10):
        status, headers, body = await http_request(relay.http_url, headers=NIP11)
        assert status == 200
        assert headers["content-type"] == "application/nostr+json"
        assert headers["access-control-allow-origin"] == "*"
        assert headers["access-control-allow-headers"] == "*"
        assert "GET" in headers["access-control-allow-methods"]
        doc = orjson.loads(body)
        assert doc["supported_nips"] == [1, 9, 11, 40, 45]
        limitation = doc["limitation"]
        assert limitation["max_subscriptions"] == 9
        for name in (
            "max_message_length",
            "max_limit",
            "max_subid_length",
            "max_event_tags",
            "max_content_length",
            "default_limit",
        ):
            assert limitation[name] == getattr(relay.limits, name)
        status, headers, body = await http_request(relay.http_url, method="OPTIONS")
        assert status == 204 and headers["access-control-allow-origin"] == "*" and body == b""


async def test_stats_shows_connections_subscriptions_and_counters(relay):
    with trio.fail_after(10):
        client = await connect(relay.url)
        await client.send(encode_req("feed", {"kinds": [1], "limit": 4}))
        await client.recv_until_eose("feed")
        await client.send(encode_req("gone", {"kinds": [7], "limit": 0}))
        await client.recv_until_eose("gone")
        await client.send(encode_close("gone"))
        await client.send(encode_req("sync", {"ids": ["f" * 64]}))
        await client.recv_until_eose("sync")
        status, headers, body = await http_request(relay.http_url, path="/stats")
        assert status == 200 and headers["content-type"] == "application/json"
        stats = orjson.loads(body)
        [row] = stats["connections"]
        assert row["remote"].startswith("127.0.0.1:")
        assert row["subscriptions"] == {"feed": [{"kinds": [1], "limit": 4}], "sync": [{"ids": ["f" * 64]}]}
        assert row["events_sent"] == 4 and row["live_events_sent"] == 0
        assert row["bytes_sent"] > 4 * len(STORED[0].json)
        assert (row["subs_opened"], row["subs_closed"]) == (3, 1)
        assert row["last_eose_at"] is not None and row["opened_at"] <= row["last_eose_at"]
        totals = stats["totals"]
        assert totals["events_stored"] == 10 and totals["subscriptions_active"] == 2
        assert totals["connections_open"] == 1
        await relay.publish(signed_note(3000, "live"))
        await client.recv_json()
        stats = relay.stats()
        assert stats["totals"]["live_events_sent"] == 1 and stats["connections"][0]["live_events_sent"] == 1
        await client.close()
        with trio.fail_after(5):
            while relay.stats()["connections"]:
                await trio.sleep(0.02)
        closed = relay.stats()["closed_connections"][-1]
        assert closed["id"] == row["id"] and closed["close_code"] == 1000


async def test_metrics_in_prometheus_format_from_a_private_registry(relay):
    with trio.fail_after(10):
        async with open_relay(RelayConfig()) as other:
            client = await connect(relay.url)
            await client.send(encode_req("a", {"kinds": [1], "limit": 3}))
            await client.recv_until_eose("a")
            status, headers, body = await http_request(relay.http_url, path="/metrics")
            assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
            samples = {
                s.name + str(sorted(s.labels.items())): s.value
                for family in text_string_to_metric_families(body.decode())
                for s in family.samples
            }
            assert samples["relaysim_events_stored[]"] == 10
            assert samples["relaysim_events_sent_total[]"] == 3
            assert samples["relaysim_subscriptions_active[]"] == 1
            assert samples["relaysim_connections_open[]"] == 1
            conn_id = relay.stats()["connections"][0]["id"]
            assert samples[f"relaysim_connection_subscriptions[('conn', '{conn_id}')]"] == 1
            _, _, other_body = await http_request(other.http_url, path="/metrics")
            assert b"relaysim_events_sent_total 0.0" in other_body


async def test_idle_long_poll_408_then_200(relay):
    with trio.fail_after(15):
        client = await connect(relay.url)
        await client.send(encode_req("a", {"kinds": [1], "limit": 1}))
        await client.recv_until_eose("a")
        conn_id = relay.stats()["connections"][0]["id"]
        status, _, body = await http_request(relay.http_url, path="/idle?settle=0.2&timeout=0.3")
        assert status == 408
        report = orjson.loads(body)
        assert report["idle"] is False and report["active_subscriptions"] == 1
        result: list = []

        async def poll():
            result.append(
                await http_request(relay.http_url, path=f"/idle?settle=0.3&timeout=10&conn={conn_id}")
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(poll)
            await trio.sleep(0.2)
            assert result == []
            await client.send(encode_close("a"))
        status, _, body = result[0]
        report = orjson.loads(body)
        assert status == 200 and report["idle"] is True and report["active_subscriptions"] == 0
        assert report["conn"] == conn_id and report["seconds_since_last_eose"] >= 0.3
        for bad, message in (
            ("settle=abc", b"settle must be a number of seconds"),
            ("timeout=-1", b"timeout must be between 0 and 3600"),
            ("conn=x", b"conn must be a connection id"),
        ):
            status, _, body = await http_request(relay.http_url, path=f"/idle?{bad}")
            assert status == 400 and message in body


async def test_wait_idle_waits_for_close_and_settle(relay):
    with trio.fail_after(10):
        client = await connect(relay.url)
        await client.send(encode_req("a", {"kinds": [1], "limit": 1}))
        await client.recv_until_eose("a")
        with trio.move_on_after(0.3):
            await relay.wait_idle(settle=0)
            pytest.fail("idle while a subscription is open")
        await client.send(encode_close("a"))
        start = trio.current_time()
        report = await relay.wait_idle(settle=0.5)
        assert report["idle"] and report["active_subscriptions"] == 0
        assert report["seconds_since_last_eose"] >= 0.5
        assert trio.current_time() - start < 2


async def test_control_close_subscriptions_sends_closed_and_drops_them(relay):
    with trio.fail_after(10):
        client = await connect(relay.url)
        for sub in ("feed", "notifications"):
            await client.send(encode_req(sub, {"kinds": [1], "limit": 0}))
            await client.recv_until_eose(sub)
        other = await connect(relay.url)
        await other.send(encode_req("keep", {"kinds": [1], "limit": 0}))
        await other.recv_until_eose("keep")
        conn_id = relay.stats()["connections"][0]["id"]
        status, _, body = await http_request(
            relay.http_url, method="POST", path=f"/control/close-subscriptions?conn={conn_id}"
        )
        assert status == 200 and orjson.loads(body) == {"closed": 2}
        got = [await client.recv_json(), await client.recv_json()]
        assert sorted(got) == [
            ["CLOSED", "feed", "error: closed by test harness"],
            ["CLOSED", "notifications", "error: closed by test harness"],
        ]
        await relay.publish(signed_note(4000, "after harness close"))
        msg = await other.recv_json()
        assert msg[:2] == ["EVENT", "keep"]
        await client.send(encode_req("sync", {"ids": ["f" * 64]}))
        _, others = await client.recv_until_eose("sync")
        assert others == []  # the closed subscriptions got nothing
        status, _, body = await http_request(
            relay.http_url, method="POST", path="/control/close-subscriptions?conn=all"
        )
        assert orjson.loads(body) == {"closed": 2}  # "sync" and "keep"
        assert relay.stats()["totals"]["subscriptions_active"] == 0
        status, _, body = await http_request(
            relay.http_url, method="POST", path="/control/close-subscriptions"
        )
        assert status == 400 and b"conn is required" in body
        status, _, body = await http_request(
            relay.http_url, method="POST", path="/control/close-subscriptions?conn=999"
        )
        assert status == 400 and b"no open connection with id 999" in body
        status, headers, _ = await http_request(relay.http_url, path="/control/close-subscriptions?conn=all")
        assert status == 405 and headers["allow"] == "POST"


async def test_control_reset_puts_the_dataset_back_and_ends_every_subscription(relay):
    with trio.fail_after(20):
        a, b = await connect(relay.url), await connect(relay.url)
        for client, sub in ((a, "feed"), (a, "notes"), (b, "other")):
            await client.send(encode_req(sub, {"kinds": [1], "limit": 0}))
            await client.recv_until_eose(sub)
        live = signed_note(5000, "live, gone after the reset")
        deletion = signed_note(5001, "", kind=5, tags=(("e", STORED[0].id),))  # same author as STORED
        for event in (live, deletion):
            await a.send(encode_client_event(event))
        got_a = [await a.recv_json() for _ in range(4)]  # OK live, 2 x EVENT live, OK deletion
        assert ["OK", deletion.id, True, ""] in got_a and (await b.recv_json())[2]["id"] == live.id
        assert len(relay.store) == len(STORED) + 1  # + live + deletion - the deleted note

        status, _, body = await http_request(relay.http_url, method="POST", path="/control/reset")
        assert status == 200
        report = orjson.loads(body)
        assert {k: report[k] for k in ("subscriptions_closed", "connections", "resets", "traffic")} == {
            "subscriptions_closed": 3,
            "connections": 2,
            "resets": 1,
            "traffic": None,
        }
        assert (report["events_before"], report["events_after"]) == (len(STORED) + 1, len(STORED))
        assert report["seconds"] >= report["store_seconds"] >= 0
        closed = sorted([await a.recv_json(), await a.recv_json()])
        assert closed == [["CLOSED", "feed", HARNESS_CLOSE_REASON], ["CLOSED", "notes", HARNESS_CLOSE_REASON]]
        assert await b.recv_json() == ["CLOSED", "other", HARNESS_CLOSE_REASON]

        stats = relay.stats()
        assert (stats["resets"], stats["reset_at"] is not None, stats["closed_connections"]) == (1, True, [])
        assert stats["totals"]["subs_opened"] == 0 and stats["totals"]["events_received"] == 0
        assert stats["totals_since_start"]["subs_opened"] == 3
        assert stats["totals_since_start"]["events_received"] == 2
        assert all(row["subs_opened"] == row["events_sent"] == 0 for row in stats["connections"])
        # Exactly the dataset: the live note is gone, the deleted one is back (the same websocket).
        await a.send(encode_req("all", {"limit": 100}))
        events, others = await a.recv_until_eose("all")
        assert {e.id for e in events} == {e.id for e in STORED} and others == []
        await b.send(encode_req("after", {"kinds": [1], "limit": 0}))
        await b.recv_until_eose("after")
        await relay.publish(signed_note(6000, "after the reset"))
        assert (await b.recv_json())[:2] == ["EVENT", "after"]  # live delivery works as before
        _, _, metrics_text = await http_request(relay.http_url, path="/metrics")
        assert b"relaysim_subscriptions_opened_total 5.0" in metrics_text  # counters never go down
        assert b"relaysim_resets_total 1.0" in metrics_text
        second = await relay.reset()  # from the spare store built after the first reset
        assert (second.resets, second.events_after, second.subscriptions_closed) == (2, len(STORED), 2)
        await a.send(encode_req("again", {"limit": 100}))
        events, _ = await a.recv_until_eose("again")
        assert {e.id for e in events} == {e.id for e in STORED}


async def test_control_refuses_non_loopback_peers(relay):
    with trio.fail_after(5):
        # The socket tests can only come from loopback; this feeds the router a remote peer.
        for path in ("/control/close-subscriptions?conn=all", "/control/reset"):
            request = HttpRequest("POST", path, (), b"", "192.0.2.7")
            response = await handle_request(relay, request)
            assert response.status == 403
            assert response.body == b"403 Forbidden: control endpoints answer loopback peers only\n"
        status, headers, _ = await http_request(relay.http_url, path="/control/reset")
        assert status == 405 and headers["allow"] == "POST"
        assert relay.stats()["resets"] == 0
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("10.0.0.1") and not is_loopback("not an ip")


async def test_traffic_control_without_a_generator_is_409(relay):
    with trio.fail_after(5):
        status, _, body = await http_request(relay.http_url, method="POST", path="/control/traffic/pause")
        assert status == 409 and b"no traffic generator" in body


async def test_builtin_reference_client_is_served_with_test_headers(relay):
    with trio.fail_after(10):
        if relay.static_root is None:
            pytest.skip("relaysim/client/index.html is not there")
        status, headers, body = await http_request(relay.http_url, path="/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert headers["cross-origin-opener-policy"] == "same-origin"
        assert headers["cross-origin-embedder-policy"] == "require-corp"
        assert headers["cross-origin-resource-policy"] == "same-origin"
        assert body == (relay.static_root / "index.html").read_bytes()
        status, headers, _ = await http_request(relay.http_url, path="/heap.wasm")
        assert status == 200 and headers["content-type"] == "application/wasm"
        assert headers["cross-origin-embedder-policy"] == "require-corp"


async def test_builtin_page_when_the_client_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(server_module, "DEFAULT_CLIENT_DIR", tmp_path)
    async with open_relay(RelayConfig()) as r:
        with trio.fail_after(10):
            status, headers, body = await http_request(r.http_url, path="/")
            assert status == 200 and b"reference client is not installed here" in body
            assert r.url.encode() in body
            assert headers["cross-origin-opener-policy"] == "same-origin"
            status, _, _ = await http_request(r.http_url, path="/app.js")
            assert status == 404


async def test_static_dir_replaces_the_client_and_headers_are_opt_in(tmp_path):
    (tmp_path / "index.html").write_text("<p>mine</p>")
    (tmp_path / "m.wasm").write_bytes(b"\0asm\1\0\0\0")
    async with open_relay(RelayConfig(static=tmp_path)) as r:
        with trio.fail_after(10):
            status, headers, body = await http_request(r.http_url, path="/")
            assert (status, body) == (200, b"<p>mine</p>")
            assert "cross-origin-opener-policy" not in headers
            status, headers, body = await http_request(r.http_url, path="/m.wasm")
            assert headers["content-type"] == "application/wasm" and body == b"\0asm\1\0\0\0"
            status, _, _ = await http_request(r.http_url, path="/missing.js")
            assert status == 404
            status, _, _ = await http_request(r.http_url, path="/%2e%2e/etc/passwd")
            assert status == 400
            status, headers, body = await http_request(r.http_url, method="HEAD", path="/")
            assert status == 200 and body == b"" and headers["content-length"] == str(len(b"<p>mine</p>"))
            client = await connect(r.url)  # the websocket lives on the same origin
            await client.send(encode_req("x", {"limit": 0}))
            await client.recv_until_eose("x")
    async with open_relay(RelayConfig(static=tmp_path, test_headers=True)) as r:
        with trio.fail_after(10):
            _, headers, _ = await http_request(r.http_url, path="/m.wasm")
            assert headers["cross-origin-embedder-policy"] == "require-corp"
            assert headers["cross-origin-resource-policy"] == "same-origin"
            _, headers, _ = await http_request(r.http_url, path="/stats")
            assert headers["cross-origin-opener-policy"] == "same-origin"


async def test_keep_alive_serves_several_requests_on_one_connection(relay):
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", relay.port)
        request = b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n"
        await stream.send_all(request + request)
        data = b""
        while data.count(b"HTTP/1.1 200") < 2:
            data += await stream.receive_some(65536)
        await stream.aclose()
        status, _, _ = await http_request(relay.http_url, method="DELETE", path="/stats")
        assert status == 405


async def test_a_failing_handler_costs_one_request_not_the_server(relay, monkeypatch):
    def broken() -> bytes:
        raise RuntimeError("boom")

    monkeypatch.setattr(relay, "metrics", broken)  # stands in for a bug in one route
    with trio.fail_after(10):
        status, _, body = await http_request(relay.http_url, path="/metrics")
        assert status == 500 and body == b"500 Internal Server Error: see the relay's log\n"
        status, _, _ = await http_request(relay.http_url, path="/stats")
        assert status == 200
        assert relay.stats()["totals"]["connection_errors"] == 1
