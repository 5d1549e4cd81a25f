"""Injected faults, the pure part: the ``--faults`` language and the seeded plan of draws (no I/O)."""

from __future__ import annotations

import math
import statistics

import pytest

from relaysim.errors import UsageError
from relaysim.relay import RelayConfig
from relaysim.relay.faults import NO_FAULTS, Faults, FaultSpec, client_key, is_event_frame, parse_faults
from relaysim.relay.faults_io import upgrade_client

EVENT = b'["EVENT","feed",{"id":"00"}]'
EOSE = b'["EOSE","feed"]'
FULL = "drop=0.01,delay=50ms,jitter=20ms,disconnect-every=60s,refuse-reconnect=2,reset=1"


# -- the language ------------------------------------------------------------------------------------


def test_the_issue_example_parses_and_round_trips():
    spec = parse_faults(FULL)
    assert spec == FaultSpec(
        drop=0.01, delay=0.05, jitter=0.02, disconnect_every=60.0, refuse_reconnect=2, reset=True
    )
    assert spec.describe() == FULL
    assert parse_faults(spec.describe()) == spec


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        (None, NO_FAULTS),
        ("", NO_FAULTS),
        ("off", NO_FAULTS),
        (" none ", NO_FAULTS),
        ("drop=1%", FaultSpec(drop=0.01)),
        ("DELAY = 1.5s", FaultSpec(delay=1.5)),
        ("disconnect-every=2m", FaultSpec(disconnect_every=120.0)),
        ("jitter=250ms", FaultSpec(jitter=0.25)),
        ("refuse-reconnect=0", NO_FAULTS),
    ],
)
def test_accepted_forms(text, spec):
    assert parse_faults(text) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dorp=0.1", "bad --faults item 'dorp=0.1': unknown fault 'dorp' (known: drop, delay, jitter, "
                     "disconnect-every, refuse-reconnect, reset)"),
        ("delay=50", "bad --faults item 'delay=50': must be a duration with a unit (ms, s, m or h)"),
        ("drop=1.5", "bad --faults item 'drop=1.5': must be a probability between 0 and 1"),
        ("drop=x", "bad --faults item 'drop=x': must be a probability between 0 and 1"),
        ("drop", "bad --faults item 'drop': expected name=value"),
        ("drop=0.1,,delay=1s", "bad --faults 'drop=0.1,,delay=1s': an empty item"),
        ("refuse-reconnect=-1", "bad --faults item 'refuse-reconnect=-1': must be a whole number >= 0"),
        ("refuse-reconnect=1.5", "bad --faults item 'refuse-reconnect=1.5': must be a whole number >= 0"),
        ("disconnect-every=0s", "bad --faults item 'disconnect-every=0s': must be longer than 0"),
        ("disconnect-every=1s,reset=maybe", "bad --faults item 'reset=maybe': must be 1 or 0"),
        ("reset=1", "bad --faults item 'reset=1': it says how disconnect-every ends connections"),
        ("delay=1s,delay=2s", "bad --faults item 'delay=2s': delay is given twice"),
    ],
)
def test_a_bad_item_is_named_on_one_line(text, message):
    with pytest.raises(UsageError) as info:
        parse_faults(text)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_relay_config_checks_faults_when_made():
    with pytest.raises(UsageError, match="bad --faults item 'delay=50'"):
        RelayConfig(faults="delay=50")
    with pytest.raises(UsageError, match="--faults-seed must be an integer or a string"):
        RelayConfig(faults_seed=1.5)  # type: ignore[arg-type]
    assert RelayConfig(faults="drop=0.5").fault_spec == FaultSpec(drop=0.5)
    assert RelayConfig().fault_spec == NO_FAULTS


def test_event_frames_and_client_keys():
    assert is_event_frame(EVENT) and not is_event_frame(EOSE) and not is_event_frame(b'["OK","x",true,""]')
    head = (
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUpgrade: websocket\r\norigin: http://127.0.0.1:1\r\n"
        b"User-Agent: Chromium/1\r\n\r\n"
    )
    assert upgrade_client("127.0.0.1", head) == client_key("127.0.0.1", "http://127.0.0.1:1", "Chromium/1")
    assert upgrade_client("127.0.0.1", b"GET / HTTP/1.1\r\n\r\n") == "127.0.0.1 - -"


# -- the plan: deterministic per seed ----------------------------------------------------------------


SPEC = parse_faults("drop=0.2,delay=50ms,jitter=20ms,disconnect-every=3s")


def draws(seed: int | str, serial_first: int = 1, frames: int = 400) -> tuple[list, list, list]:
    """What connection number ``serial_first`` draws: drops, delays (queued at t=0), disconnect intervals."""
    faults = Faults(SPEC, seed, clock=lambda: 0.0)
    for n in range(1, serial_first):
        faults.open_connection(n, "other")
    conn = faults.open_connection(serial_first, "c")
    dropped = [conn.withhold(EVENT) for _ in range(frames)]
    dues = [conn.due(0.0) or 0.0 for _ in range(frames)]
    intervals = [conn.next_disconnect() or 0.0 for _ in range(20)]
    return dropped, dues, intervals


def test_same_seed_same_faults_other_seed_other_faults():
    assert draws(7) == draws(7)
    assert draws("7") == draws(7)  # the CLI passes the seed as text
    a, b = draws(7), draws(8)
    assert a[0] != b[0] and a[1] != b[1] and a[2] != b[2]


def test_a_connections_draws_do_not_depend_on_the_others():
    """Connection 3 draws the same whatever connections 1 and 2 drew (each serial has its own streams)."""
    first = draws(7, serial_first=3)
    faults = Faults(SPEC, 7, clock=lambda: 0.0)
    busy = faults.open_connection(1, "x")
    for _ in range(1000):
        busy.withhold(EVENT)
        busy.due(0.0)
    faults.open_connection(2, "x").next_disconnect()
    conn = faults.open_connection(3, "c")
    assert [conn.withhold(EVENT) for _ in range(400)] == first[0]


def test_drop_rate_and_only_event_frames():
    faults = Faults(FaultSpec(drop=0.1), seed=3, clock=lambda: 0.0)
    conn = faults.open_connection(1, "c")
    n = 20_000
    dropped = sum(conn.withhold(EVENT) for _ in range(n))
    sd = math.sqrt(n * 0.1 * 0.9)
    assert abs(dropped - n * 0.1) < 5 * sd  # 2,000 +- 212
    assert not any(conn.withhold(EOSE) for _ in range(1000))
    assert faults.counts.events_dropped == dropped
    assert faults.logged == dropped and faults.events[-1].fault == "drop"


def test_delays_keep_order_and_stay_within_delay_plus_jitter():
    faults = Faults(parse_faults("delay=50ms,jitter=20ms"), seed=5, clock=lambda: 0.0)
    conn = faults.open_connection(1, "c")
    dues = [conn.due(t * 0.001) for t in range(2000)]  # one frame queued every millisecond
    assert all(d is not None for d in dues)
    assert dues == sorted(dues)  # order kept
    waits = [d - t * 0.001 for t, d in enumerate(dues) if d is not None]
    assert min(waits) >= 0.03 - 1e-9 and max(waits) <= 0.07 + 1e-9
    sparse = faults.open_connection(2, "c")  # frames 100 ms apart: no frame waits for the one before
    spaced = [(sparse.due(t * 0.1) or 0.0) - t * 0.1 for t in range(2000)]
    assert abs(statistics.fmean(spaced) - 0.05) < 0.002  # uniform 50 +- 20 ms: sd of the mean 0.26 ms
    assert min(spaced) >= 0.03 - 1e-9 and max(spaced) <= 0.07 + 1e-9
    assert faults.counts.frames_delayed == 4000
    assert conn.due(0.0) is not None
    faults.switch(NO_FAULTS)
    assert conn.due(3.0) is None  # switched off: no delay for the live connection either


def test_disconnect_intervals_are_exponential_with_the_mean():
    faults = Faults(FaultSpec(disconnect_every=4.0), seed=11, clock=lambda: 0.0)
    intervals = [faults.open_connection(n, "c").next_disconnect() or 0.0 for n in range(1, 3001)]
    assert abs(statistics.fmean(intervals) - 4.0) < 0.25  # sd of the mean: 4 / sqrt(3000) = 0.073
    assert abs(statistics.median(intervals) - 4.0 * math.log(2)) < 0.25
    assert Faults(NO_FAULTS).open_connection(1, "c").next_disconnect() is None


def test_refusals_follow_an_injected_disconnect_for_that_client_only():
    t = [100.0]
    faults = Faults(parse_faults("disconnect-every=1s,refuse-reconnect=2"), seed=1, clock=lambda: t[0])
    conn = faults.open_connection(1, "tab")
    assert not faults.refuse("tab")  # nothing refused before a disconnect
    conn.disconnected(reset=False, after=0.5)
    assert not faults.refuse("another tab")
    assert [faults.refuse("tab") for _ in range(3)] == [True, True, False]
    stats = faults.statistics()
    assert stats["counts"]["disconnects_close"] == 1 and stats["counts"]["upgrades_refused"] == 2
    assert [e["fault"] for e in stats["events"]] == ["disconnect", "refuse", "refuse"]
    assert stats["events"][0] == {
        "at": 100.0, "conn": 1, "fault": "disconnect",
        "detail": "close 1001 after 0.500 s; the next 2 upgrade(s) from this client get 503",
    }
    faults.open_connection(2, "tab").disconnected(reset=True, after=1.25)
    assert faults.counts.disconnects_reset == 1 and faults.statistics()["refusals_pending"] == {"tab": 2}
    faults.reset()
    assert faults.statistics()["counts"]["disconnects_reset"] == 0 and not faults.refuse("tab")


def test_a_switch_applies_to_live_connections_and_is_logged():
    faults = Faults(NO_FAULTS, seed=1, clock=lambda: 0.0)
    conn = faults.open_connection(1, "c")
    assert not any(conn.withhold(EVENT) for _ in range(100))
    faults.switch(FaultSpec(drop=1.0))
    assert conn.withhold(EVENT)
    assert (faults.events[0].fault, faults.events[0].detail) == ("spec", "drop=1")
    assert faults.statistics()["spec"] == "drop=1"


def test_serve_with_bad_faults_exits_2_with_one_line(capsys):
    from relaysim.cli import main

    assert main(["serve", "--port", "0", "--faults", "drop=0.1,jitter=5"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "relaysim: error: bad --faults item 'jitter=5': must be a duration with a unit (ms, s, m or h), "
        "e.g. 50ms or 60s\n"
    )
