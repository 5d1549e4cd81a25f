"""Interop with a second real client written elsewhere: PyPI ``nostr-sdk`` (rust-nostr's bindings).

nostr-sdk runs on asyncio (its futures are driven by its own Rust runtime), relaysim's relay on
trio. Each test runs the relay in trio and the nostr-sdk client in a worker thread with its own
``asyncio.run``, so the two event loops never share a thread; the relay's store is read from the
trio side once the client is done.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import nostr_sdk  # in the test extra (pip install -e .[test])
import pytest
import trio

from relaysim.dataset import cast_for, load_spec
from relaysim.nostr import event_from_json, verify_event
from relaysim.nostr.filter import parse_filter
from relaysim.relay import RelayConfig, open_relay

pytestmark = pytest.mark.timeout(120)


async def in_asyncio_thread(client_run: Callable[[], Awaitable[Any]]) -> Any:
    """Run an asyncio coroutine function to completion in a worker thread."""
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(lambda: asyncio.run(client_run()))


async def connected_client(url: str) -> Any:
    client = nostr_sdk.ClientBuilder().build()
    await client.add_relay(nostr_sdk.RelayUrl.parse(url))
    await client.connect()
    return client


async def test_nostr_sdk_fetches_seed1_and_every_event_verifies() -> None:
    wanted = {"kinds": [1, 6, 7, 9735], "limit": 300}

    async def client_run() -> list[str]:
        client = await connected_client(relay.url)
        sdk_filter = nostr_sdk.Filter.from_json(json.dumps(wanted))
        events = await client.fetch_events(nostr_sdk.ReqTarget.auto([sdk_filter]), timedelta(seconds=20))
        assert all(event.verify() for event in events)  # rust-nostr's own id + signature check
        assert all(sdk_filter.match_event(event) for event in events)
        out = [event.as_json() for event in events]
        await client.shutdown()
        return out

    async with open_relay(RelayConfig(dataset="seed1", port=0)) as relay:
        expected = relay.store.query([parse_filter(wanted)])
        received = await in_asyncio_thread(client_run)

    assert len(received) == 300
    parsed = [event_from_json(text) for text in received]  # our parser and verifier agree
    assert {e.id for e in parsed} == {e.id for e in expected}
    by_id = {e.id: e for e in expected}
    assert all(by_id[e.id] == e for e in parsed)


async def test_nostr_sdk_publishes_and_fetches_back() -> None:
    async def client_run() -> dict[str, Any]:
        client = await connected_client(relay.url)
        keys = nostr_sdk.Keys.generate()
        tags = [nostr_sdk.Tag.parse(["t", "relaysim-interop"])]
        event = nostr_sdk.EventBuilder(nostr_sdk.Kind(1), "hello from nostr-sdk ✓").tags(tags).finalize(keys)
        output = await client.send_event(event)
        back = await client.fetch_events(
            nostr_sdk.ReqTarget.auto([nostr_sdk.Filter().id(event.id())]), timedelta(seconds=10)
        )
        result = {
            "id": event.id().to_hex(),
            "pubkey": keys.public_key().to_hex(),
            "success": [str(url) for url in output.success],
            "failed": {str(url): reason for url, reason in output.failed.items()},
            "back": [e.as_json() for e in back],
        }
        await client.shutdown()
        return result

    async with open_relay(RelayConfig(dataset="seed1", port=0)) as relay:
        result = await in_asyncio_thread(client_run)
        stored = relay.store.get(result["id"])

    assert result["failed"] == {}
    assert len(result["success"]) == 1 and "127.0.0.1" in result["success"][0]
    assert stored is not None
    verify_event(stored)
    assert stored.pubkey == result["pubkey"]
    assert stored.content == "hello from nostr-sdk ✓"
    assert stored.tags == (("t", "relaysim-interop"),)
    assert [event_from_json(text) for text in result["back"]] == [stored]


async def test_nostr_sdk_receives_live_traffic_on_notifications() -> None:
    cast = cast_for(load_spec("seed1"))
    notifications = {"#p": [cast.viewer_pubkey], "limit": 0}

    async def client_run() -> list[str]:
        client = await connected_client(relay.url)
        sdk_filter = nostr_sdk.Filter.from_json(json.dumps(notifications))
        policy = nostr_sdk.ReqExitPolicy.WAIT_DURATION_AFTER_EOSE(timedelta(seconds=2.5))
        events = await client.fetch_events(
            nostr_sdk.ReqTarget.auto([sdk_filter]), timedelta(seconds=20), policy
        )
        assert all(event.verify() and sdk_filter.match_event(event) for event in events)
        out = [event.as_json() for event in events]
        await client.shutdown()
        return out

    traffic = "notes=4/s,replies=2/s,reactions=4/s,reposts=1/s,zaps=1/s"
    async with open_relay(RelayConfig(dataset="seed1", port=0, traffic=traffic)) as relay:
        with trio.fail_after(30):
            await relay.traffic.ready.wait()
        received = await in_asyncio_thread(client_run)

    # limit 0: nothing stored, only live traffic -- about 2.5 s at ~9 notification events/s.
    assert len(received) >= 8
    events = [event_from_json(text) for text in received]
    assert all(cast.viewer_pubkey in e.tag_values("p") for e in events)
    assert {e.kind for e in events} >= {1, 7}
    assert {e.pubkey for e in events if e.kind != 9735} <= set(cast.author_pubkeys)
