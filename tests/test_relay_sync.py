"""SyncRelay from synchronous code (as Selenium tests use it), with the websockets sync client --
a second, independent client implementation -- and seed1 with live traffic."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from relay_client import connect as trio_connect
from relay_client import http_request, signed_note
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from relaysim.browser.relay_http import RelayHttp
from relaysim.nostr.event import event_from_json, verify_event
from relaysim.nostr.filter import Filter
from relaysim.nostr.messages import encode_close, encode_req
from relaysim.relay import RelayConfig, SyncRelay, open_relay

DATASETS = Path(__file__).resolve().parents[1] / "datasets"

STORED = [signed_note(1000 + i, f"note {i}") for i in range(10)]


def post(url: str) -> dict:
    """POST with urllib, bypassing any proxy from the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(urllib.request.Request(url, method="POST", data=b""), timeout=10) as response:
        return orjson.loads(response.read())


def ws(url: str):
    return connect(url, proxy=None, compression=None, open_timeout=10, close_timeout=5)


def recv_json(conn, timeout: float = 10.0):
    return orjson.loads(conn.recv(timeout=timeout))


def until_eose(conn, sub_id: str) -> tuple[list, list]:
    events, others = [], []
    while True:
        msg = recv_json(conn)
        if msg[:2] == ["EOSE", sub_id]:
            return events, others
        (events if msg[:2] == ["EVENT", sub_id] else others).append(msg)


@pytest.mark.timeout(60)
def test_sync_relay_api():
    with SyncRelay(RelayConfig(events=STORED)) as relay, ws(relay.url) as conn:
        assert relay.url.startswith("ws://127.0.0.1:") and relay.http_url.startswith("http://127.0.0.1:")
        conn.send(encode_req("feed", {"kinds": [1], "limit": 3}).decode())
        events, _ = until_eose(conn, "feed")
        assert [m[2]["created_at"] for m in events] == [1009, 1008, 1007]
        live = signed_note(2000, "from python")
        assert relay.publish(live) == (True, "")
        assert recv_json(conn)[2]["id"] == live.id
        stats = relay.stats()
        assert stats["totals"]["subscriptions_active"] == 1 and stats["totals"]["events_stored"] == 11
        with pytest.raises(TimeoutError, match=r"relay not idle after 0\.3 s"):
            relay.wait_idle(settle=0, timeout=0.3)
        assert relay.close_subscriptions("all") == 1
        assert recv_json(conn) == ["CLOSED", "feed", "error: closed by test harness"]
        report = relay.wait_idle(settle=0.2, timeout=5)
        assert report["idle"] is True and report["seconds_since_last_eose"] >= 0.2
        assert b"relaysim_subscriptions_active 0.0" in relay.metrics()
        assert relay.traffic is None
        conn.send(encode_req("again", {"kinds": [1], "limit": 0}).decode())
        until_eose(conn, "again")
        report = relay.reset()  # blocking, from this thread
        assert (report.subscriptions_closed, report.events_before, report.events_after) == (1, 11, 10)
        assert recv_json(conn) == ["CLOSED", "again", "error: closed by test harness"]
        over_http = RelayHttp(relay.url).reset()  # the same, through POST /control/reset
        assert (over_http.resets, over_http.events_after, over_http.subscriptions_closed) == (2, 10, 0)
        relay.close()
        with pytest.raises(ConnectionClosed) as info:
            conn.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        relay.close()  # idempotent


@pytest.mark.timeout(30)
def test_sync_relay_start_failure_is_raised():
    from relaysim.errors import UsageError

    with (
        pytest.raises(UsageError, match="does not exist"),
        SyncRelay(RelayConfig(dataset="/no/such/file.jsonl")),
    ):
        pass


@pytest.mark.timeout(240)
def test_seed1_with_traffic_closed_subscription_receives_nothing_more():
    """The issue's "done when": seed1 served, a CLOSEd subscription gets nothing while traffic runs."""
    with SyncRelay(RelayConfig(dataset="seed1", traffic="notes=20/s")) as relay, ws(relay.url) as conn:
        conn.send(encode_req("page", {"kinds": [1], "limit": 500}).decode())
        events, _ = until_eose(conn, "page")
        assert len(events) == 500
        assert [m[2]["created_at"] for m in events] == sorted(
            (m[2]["created_at"] for m in events), reverse=True
        )
        for msg in events[:25]:
            verify_event(event_from_json(orjson.dumps(msg[2]), verify=False))  # real signatures
        conn.send(encode_close("page").decode())
        conn.send(encode_req("feed", {"kinds": [1], "limit": 0}).decode())
        conn.send(encode_req("control", {"kinds": [1], "limit": 0}).decode())
        until_eose(conn, "feed")
        until_eose(conn, "control")
        live_feed = 0
        deadline = time.monotonic() + 60  # the generator's cast is built after the relay is ready
        while live_feed < 2:
            assert time.monotonic() < deadline, "no live traffic"
            if recv_json(conn, timeout=60)[1] == "feed":
                live_feed += 1
        conn.send(encode_close("feed").decode())
        conn.send(encode_req("sync", {"ids": ["f" * 64]}).decode())
        until_eose(conn, "sync")  # the CLOSE has been processed by now
        after: dict[str, int] = {}
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            try:
                msg = recv_json(conn, timeout=max(0.01, end - time.monotonic()))
            except TimeoutError:
                break
            after[msg[1]] = after.get(msg[1], 0) + 1
        assert after.get("control", 0) >= 5, after  # traffic kept flowing ...
        assert "feed" not in after  # ... but not to the closed subscription
        row = relay.stats()["connections"][0]
        assert "feed" not in row["subscriptions"] and "control" in row["subscriptions"]
        stats = relay.stats()["traffic"]
        assert stats["emitted"]["notes"] >= 5

        traffic = relay.traffic
        assert traffic is not None
        assert post(relay.http_url + "control/traffic/pause")["paused"] is True  # the HTTP control
        assert traffic.paused
        time.sleep(0.3)  # one tick for the pause to take effect, drain what was in flight
        while True:
            try:
                recv_json(conn, timeout=0.2)
            except TimeoutError:
                break
        traffic.burst("notes", 3)
        burst = [recv_json(conn, timeout=10) for _ in range(3)]
        assert [m[:2] for m in burst] == [["EVENT", "control"]] * 3
        with pytest.raises(TimeoutError):
            recv_json(conn, timeout=0.5)  # paused: nothing scheduled arrives
        post(relay.http_url + "control/traffic/burst?kind=reactions&n=2")
        with pytest.raises(urllib.error.HTTPError) as info:
            post(relay.http_url + "control/traffic/burst?kind=gossip&n=2")
        assert info.value.code == 400 and b"unknown traffic kind 'gossip'" in info.value.read()
        traffic.resume()
        assert recv_json(conn, timeout=10)[:2] == ["EVENT", "control"]
        deadline = time.monotonic() + 10
        while relay.stats()["traffic"]["emitted"]["reactions"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)


async def test_relay_with_seed1_name_loads_and_counts():
    import trio

    with trio.fail_after(180):
        async with open_relay(RelayConfig(dataset="seed1")) as relay:
            info = relay.stats()["relay"]
            assert info["dataset"] == "seed1" and info["events_stored"] == len(relay.store) > 10_000
            assert info["sha256"] == (DATASETS / "seed1.sha256").read_text().split()[0]
            # /viewer.json names the account whose follow list (kind 3) the dataset holds.
            status, _, body = await http_request(relay.http_url, path="/viewer.json")
            viewer = orjson.loads(body)["pubkey"]
            assert status == 200 and relay.store.query([Filter(kinds=[3], authors=[viewer])])
            assert relay.traffic is not None  # bursts work even without --traffic ...
            await trio.sleep(0.2)
            assert not relay.traffic.ready.is_set()  # ... but the generator waits until asked
            before = relay.stats()["totals"]["events_published_in_process"]
            relay.traffic.burst("notes", 2)
            await relay.traffic.ready.wait()
            while relay.stats()["totals"]["events_published_in_process"] < before + 2:
                await trio.sleep(0.05)


def _content(event: dict) -> tuple:
    """What a seeded traffic event is made of, apart from when it was made."""
    return event["pubkey"], event["kind"], event["tags"], event["content"]


async def test_reset_restarts_traffic_from_its_seed_in_its_initial_state():
    import trio

    # Profiles at 1/h: the schedule never fires during the test; notes come from bursts only.
    config = RelayConfig(dataset="seed1", traffic="profiles=1/h", traffic_paused=True)
    with trio.fail_after(180):
        async with open_relay(config) as relay:
            assert relay.traffic is not None
            client = await trio_connect(relay.url)
            await client.send(encode_req("live", {"kinds": [1], "limit": 0}))
            await client.recv_until_eose("live")
            relay.traffic.burst("notes", 3)
            before = [await client.recv_json() for _ in range(3)]
            assert [m[:2] for m in before] == [["EVENT", "live"]] * 3
            relay.traffic.resume()
            assert not relay.traffic.paused

            status, _, body = await http_request(relay.http_url, method="POST", path="/control/reset")
            assert status == 200 and orjson.loads(body)["traffic"] == {"seed": 1, "paused": True}
            assert await client.recv_json() == ["CLOSED", "live", "error: closed by test harness"]
            assert relay.traffic.paused and relay.traffic.statistics().total == 0
            await client.send(encode_req("gone", {"ids": [m[2]["id"] for m in before]}))
            gone, _ = await client.recv_until_eose("gone")
            assert gone == []  # the live notes went with the reset
            await client.send(encode_close("gone"))

            await client.send(encode_req("live", {"kinds": [1], "limit": 0}))
            await client.recv_until_eose("live")
            relay.traffic.burst("notes", 2)
            after = [await client.recv_json() for _ in range(2)]
            # The generator starts over from its seed: the same notes as a fresh relay's, in order.
            assert [m[:2] for m in after] == [["EVENT", "live"]] * 2
            assert [_content(m[2]) for m in after] == [_content(m[2]) for m in before[:2]]
            assert relay.stats()["traffic"]["emitted"]["notes"] == 2
