"""Injected faults over a real loopback socket: drops, delays in order, disconnects, 503 refusals.

Each test starts a real relay with ``--faults`` (as a :class:`RelayConfig`), talks to it with the
Sans-I/O test client, and checks what a client sees against what the pure plan of
:mod:`relaysim.relay.faults` says the seed decides -- so a socket run is checked frame by frame, not
only on average.
"""

from __future__ import annotations

import orjson
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from relay_client import bulk_events, connect, http_request, signed_note

from relaysim.nostr.messages import encode_req
from relaysim.relay import RelayConfig, open_relay
from relaysim.relay.faults import Faults, parse_faults
from relaysim.relay.faults_io import DISCONNECT_REASON, LINE_BYTES

STORED = bulk_events(3000, content_size=20)


async def test_drops_exactly_the_event_frames_the_seed_decides():
    spec = "drop=0.1"
    async with open_relay(RelayConfig(events=STORED, faults=spec, faults_seed=7)) as relay:
        with trio.fail_after(20):
            client = await connect(relay.url)
            await client.send(encode_req("all", {"kinds": [1], "limit": 3000}))
            events, others = await client.recv_until_eose("all")
            await client.close()
            _, _, metrics_text = await http_request(relay.http_url, path="/metrics")
        stats = relay.stats()
    # The same seed's plan for connection 1: which of its 3,000 EVENT frames are withheld.
    plan = Faults(parse_faults(spec), 7).open_connection(1, "c")
    kept = [i for i in range(3000) if not plan.withhold(b'["EVENT"')]
    newest_first = sorted(STORED, key=lambda e: -e.created_at)
    assert [e.id for e in events] == [newest_first[i].id for i in kept]
    dropped = 3000 - len(kept)
    assert 230 < dropped < 370  # 300 +- 4.3 sd: the seed's draw is a plausible 10%
    assert others == []  # the EOSE and nothing else came through
    faults = stats["faults"]
    assert faults["counts"]["events_dropped"] == dropped
    assert faults["spec"] == "drop=0.1" and faults["seed"] == 7 and faults["connections"] == 1
    assert faults["logged"] == dropped and faults["events"][-1]["fault"] == "drop"
    assert stats["totals"]["events_sent"] == len(kept)  # only what was written is counted as sent
    # /metrics carries the same count, and the relay process's memory beside it.
    samples = {
        s.name + str(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics_text.decode())
        for s in family.samples
    }
    assert samples["relaysim_faults_injected_total[('fault', 'drop')]"] == dropped
    assert samples["relaysim_faults_injected_total[('fault', 'disconnect')]"] == 0
    assert samples["process_resident_memory_bytes[]"] > 10 * 1024 * 1024


async def test_delay_and_jitter_hold_frames_back_and_keep_their_order():
    async with open_relay(RelayConfig(faults="delay=200ms,jitter=100ms", faults_seed=3)) as relay:
        with trio.fail_after(20):
            client = await connect(relay.url)
            await client.send(encode_req("live", {"kinds": [1], "limit": 0}))
            await client.recv_until_eose("live")
            notes = [signed_note(2000 + i, f"live {i}") for i in range(60)]
            started = trio.current_time()
            for i, note in enumerate(notes):
                await relay.publish(note)
                if i % 10 == 9:
                    await trio.sleep(0.01)  # separate writes, each with its own drawn delay
            first = await client.recv_json()
            waited = trio.current_time() - started
            received = [first] + [await client.recv_json() for _ in range(len(notes) - 1)]
            await client.close()
        stats = relay.stats()
    assert [m[2]["id"] for m in received] == [n.id for n in notes]  # order kept
    assert waited >= 0.1  # no frame leaves before delay - jitter
    counts = stats["faults"]["counts"]
    assert counts["frames_delayed"] >= 61  # the EOSE and the 60 events at least
    assert 0.1 <= counts["delay_seconds_max"] <= 0.3 + 1.0  # drawn within 200 +- 100 ms (+ order)


async def test_disconnect_every_closes_with_1001_and_logs_it():
    async with open_relay(RelayConfig(faults="disconnect-every=200ms", faults_seed=1)) as relay:
        with trio.fail_after(20):
            client = await connect(relay.url)
            code, reason = await client.wait_closed()
            while relay.stats()["totals"]["connections_open"]:
                await trio.sleep(0.01)
        stats = relay.stats()
    assert (code, reason) == (1001, DISCONNECT_REASON)
    counts = stats["faults"]["counts"]
    assert counts["disconnects_close"] == 1 and counts["disconnects_reset"] == 0
    event = stats["faults"]["events"][0]
    assert event["fault"] == "disconnect" and event["conn"] == 1
    assert event["detail"].startswith("close 1001 after ")


async def test_reset_ends_the_connection_with_a_tcp_reset_and_no_close_frame():
    async with open_relay(RelayConfig(faults="disconnect-every=200ms,reset=1", faults_seed=1)) as relay:
        with trio.fail_after(20):
            client = await connect(relay.url)
            with pytest.raises(trio.BrokenResourceError) as info:
                while True:
                    await client._read_more()
            assert isinstance(info.value.__cause__, ConnectionResetError)  # RST, not FIN
            assert client.proto.close_rcvd is None and not client.eof  # no close frame, no EOF
        stats = relay.stats()
    assert stats["faults"]["counts"]["disconnects_reset"] == 1
    assert stats["faults"]["events"][0]["detail"].startswith("TCP reset after ")


async def test_refuse_reconnect_answers_503_then_lets_the_client_back():
    config = RelayConfig(faults="disconnect-every=150ms,refuse-reconnect=2", faults_seed=1)
    async with open_relay(config) as relay:
        with trio.fail_after(20):
            client = await connect(relay.url)
            assert (await client.wait_closed())[0] == 1001
            refused = []
            for _ in range(2):
                with pytest.raises(ConnectionError) as info:
                    await connect(relay.url)
                refused.append(str(info.value))
            # Another client (another User-Agent) was never refused, even meanwhile.
            other = await connect(relay.url, user_agent="another tab")
            back = await connect(relay.url)  # the third attempt gets through
            await back.send(encode_req("x", {"limit": 0}))
            assert (await back.recv_until_eose("x"))[0] == []
            stats = relay.stats()
            await back.close()
            await other.close()
    assert refused == ["handshake refused: 503"] * 2
    counts = stats["faults"]["counts"]
    assert counts["upgrades_refused"] == 2 and counts["disconnects_close"] >= 1
    kinds = [e["fault"] for e in stats["faults"]["events"]]
    assert kinds[:3] == ["disconnect", "refuse", "refuse"]


async def test_control_endpoint_switches_faults_on_live_connections():
    async with open_relay(RelayConfig(faults="disconnect-every=300ms", faults_seed=1)) as relay:
        with trio.fail_after(20):
            client = await connect(relay.url)
            status, _, body = await http_request(relay.http_url, "POST", "/control/faults?spec=dealy%3D1s")
            assert status == 400 and b"bad --faults item 'dealy=1s': unknown fault 'dealy'" in body
            status, _, body = await http_request(relay.http_url, "POST", "/control/faults?spec=off")
            assert status == 200 and orjson.loads(body)["spec"] == ""
            await trio.sleep(1.0)  # > 3 means of the old spec: the switch disarmed the live timer
            await client.send(encode_req("x", {"limit": 0}))
            assert (await client.recv_until_eose("x"))[0] == []
            status, _, body = await http_request(
                relay.http_url, "POST", "/control/faults?spec=disconnect-every%3D100ms&seed=9"
            )
            assert status == 200 and orjson.loads(body)["seed"] == 9
            assert (await client.wait_closed())[0] == 1001  # switched on again: the live one ends
        stats = relay.stats()
    assert [e["detail"] for e in stats["faults"]["events"] if e["fault"] == "spec"] == [
        "off", "disconnect-every=100ms"
    ]


async def test_delay_line_holds_at_most_its_bound_for_a_client_that_never_reads():
    # 5,000 stored events of ~1.2 KB (~6 MB of frames) delayed 1 s each, to a client that reads
    # nothing: the delay line fills to its bound and then the writer waits (backpressure), so
    # what faults hold back stays within LINE_BYTES (plus the one chunk being admitted).
    stored = bulk_events(5000, content_size=1000)
    async with open_relay(RelayConfig(events=stored, faults="delay=1s", faults_seed=1)) as relay:
        with trio.fail_after(20):
            client = await connect(relay.url)
            await client.send(encode_req("all", {"kinds": [1], "limit": 5000}))
            peak = 0
            for _ in range(300):  # 3 s
                await trio.sleep(0.01)
                for conn in relay._connections.all():
                    assert conn.faults is not None
                    peak = max(peak, conn.faults._held_bytes)
            await client.close()
    assert LINE_BYTES * 3 // 4 < peak <= LINE_BYTES + 512 * 1024, peak
