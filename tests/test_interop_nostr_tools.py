"""Interop with a real client written elsewhere: nostr-tools (npm) under Node, over real sockets.

The JS side lives in tests/interop/ (``scripts/install`` runs ``npm ci`` there). Each test starts
relaysim's relay on a loopback port, runs one script with ``node`` and asserts on the JSON summary
it prints: what nostr-tools received, whether its own ``verifyEvent`` accepted each event (on a
freshly parsed copy), EOSE, OK for a published event and the event fetched back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

from relaysim.dataset import cast_for, load_spec
from relaysim.nostr import event_from_json
from relaysim.nostr.filter import parse_filter
from relaysim.relay import RelayConfig, open_relay

INTEROP = Path(__file__).parent / "interop"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(NODE is None, reason="Node.js is not installed (see scripts/install)"),
    pytest.mark.timeout(120),
]

TRAFFIC = "notes=5/s,replies=2/s,reactions=5/s,reposts=1/s,zaps=1/s"


async def run_node(script: str, url: str, options: dict[str, Any]) -> dict[str, Any]:
    """Run ``tests/interop/<script>`` against ``url``; return its JSON summary."""
    if not (INTEROP / "node_modules" / "nostr-tools").is_dir():
        pytest.fail("tests/interop/node_modules is missing: run scripts/install (npm ci in tests/interop)")
    assert NODE is not None
    with trio.fail_after(90):
        proc = await trio.run_process(
            [NODE, str(INTEROP / script), url, json.dumps(options)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout.decode()}\n{proc.stderr.decode()[-3000:]}"
    summary = json.loads(proc.stdout)
    assert "error" not in summary, summary["error"]
    return summary


async def test_nostr_tools_reads_seed1_verifies_and_publishes() -> None:
    wanted = {"kinds": [1, 6, 7, 9735], "limit": 300}
    async with open_relay(RelayConfig(dataset="seed1", port=0)) as relay:
        expected = [e.id for e in relay.store.query([parse_filter(wanted)])]
        summary = await run_node("nostr_tools_client.mjs", relay.url, {"filters": [wanted]})
        published = relay.store.get(summary["publish"]["id"])

    stored = summary["stored"]
    assert summary["connected"] and summary["eose"] and summary["done"]
    # What nostr-tools received is exactly what our store answers, in the same order.
    assert stored["ids"] == expected
    assert stored["received"] == 300 == summary["raw_event_frames"]
    assert stored["verified"] == 300 and stored["invalid"] == []
    assert stored["matched_filter"] == 300
    assert summary["stored_newest_first"]
    assert set(stored["kinds"]) <= {"1", "6", "7", "9735"}
    # nip10.parse finds a root in every reply; nip57 and light-bolt11-decoder agree on every zap.
    assert summary["replies"]["checked"] > 0
    assert summary["replies"]["with_root"] == summary["replies"]["checked"]
    assert summary["zaps"]["checked"] > 0
    assert summary["zaps"]["request_valid"] == summary["zaps"]["checked"]
    assert summary["zaps"]["amount_matches"] == summary["zaps"]["checked"]

    publish = summary["publish"]
    assert publish["ok"] is True
    assert publish["live_delivery"] is True
    assert summary["fetched_back"] is True
    assert summary["pool_fetched_back"] is True
    assert summary["tampered"] == {"ok": False, "message": "invalid: event id does not match its content"}
    # The event nostr-tools signed is in our store and verifies with our own code.
    assert published is not None
    assert published.pubkey == publish["pubkey"]
    assert event_from_json(published.json) == published


async def test_nostr_tools_receives_live_traffic_on_feed_and_notifications() -> None:
    async with open_relay(RelayConfig(dataset="seed1", port=0, traffic=TRAFFIC)) as relay:
        with trio.fail_after(30):
            await relay.traffic.ready.wait()
        cast = cast_for(load_spec("seed1"))
        filters = [
            {"authors": list(cast.author_pubkeys), "kinds": [1, 6], "limit": 20},
            {"#p": [cast.viewer_pubkey], "limit": 20},
        ]
        summary = await run_node(
            "nostr_tools_client.mjs", relay.url, {"filters": filters, "live_ms": 2500, "publish": False}
        )
        stats = relay.traffic.statistics()

    assert summary["eose"]
    assert summary["stored"]["received"] == summary["stored"]["verified"] > 0
    live = summary["live"]
    # ~2.5 s of traffic at 14 events/s: every one verified and matching one of the two filters.
    assert live["received"] >= 10, live
    assert live["verified"] == live["received"]
    assert live["matched_filter"] == live["received"]
    assert live["invalid"] == []
    assert {"1", "7", "9735"} <= set(live["kinds"])
    assert summary["raw_event_frames"] == summary["stored"]["received"] + live["received"]
    assert summary["zaps"]["amount_matches"] == summary["zaps"]["checked"] > 0
    assert stats.total >= live["received"]


async def test_closed_subscription_receives_nothing_while_traffic_runs() -> None:
    async with open_relay(RelayConfig(dataset="seed1", port=0, traffic=TRAFFIC)) as relay:
        with trio.fail_after(30):
            await relay.traffic.ready.wait()
        summary = await run_node(
            "ws_closed_subscription.mjs",
            relay.url,
            {"filters": [{"kinds": [1, 6, 7, 9735], "limit": 0}], "after_ms": 2000},
        )
    assert summary["eose"] == {"closed": True, "control": True, "barrier": True}
    assert summary["live_before_close"]["closed"] == 1
    # Traffic kept flowing to the open subscription on the same connection...
    assert summary["after_close"]["control"] >= 10
    # ...and nothing reached the closed one once the relay had handled the CLOSE.
    assert summary["after_close"]["closed"] == 0
    assert summary["other"] == []
