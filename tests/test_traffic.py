"""Traffic: rates parsing, the pure generator (determinism, schedule, aim, validity, memory) and
the trio driver on trio's MockClock (pause, resume, burst, statistics)."""

from __future__ import annotations

import gc
import hashlib
import tracemalloc
from dataclasses import dataclass
from fractions import Fraction
from math import floor

import orjson
import pytest
import trio
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.errors import UsageError
from relaysim.nostr import event_from_json, pubkey_of, verify_event
from relaysim.nostr.filter import parse_filter
from relaysim.nostr.zap import read_zap_receipt
from relaysim.traffic import (
    KIND_NAMES,
    MAX_PENDING_BURSTS,
    Rates,
    TrafficControl,
    TrafficGenerator,
    parse_rates,
    run_traffic,
)

START = 1_760_000_000.0
UNKNOWN_LIKES = "unknown traffic kind 'likes' (valid: notes, replies, reactions, reposts, zaps, profiles)"
RELAY = "ws://127.0.0.1:7447/"


def _secret(label: str, i: int) -> bytes:
    return hashlib.sha256(f"test-cast/{label}/{i}".encode()).digest()


@dataclass(frozen=True)
class SmallCast:
    """A cast with the fields the generator reads, built from fixed keys (no dataset needed)."""

    viewer_pubkey: str
    author_secrets: tuple[bytes, ...]
    zapper_secret: bytes
    lightning_node_secret: bytes
    viewer_note_ids: tuple[str, ...]
    popular_note_ids: tuple[str, ...]
    relay_url: str = RELAY


def small_cast(authors: int = 5, viewer_notes: int = 4) -> SmallCast:
    return SmallCast(
        viewer_pubkey=pubkey_of(_secret("viewer", 0)),
        author_secrets=tuple(_secret("author", i) for i in range(authors)),
        zapper_secret=_secret("zapper", 0),
        lightning_node_secret=_secret("node", 0),
        viewer_note_ids=tuple(hashlib.sha256(f"vn{i}".encode()).hexdigest() for i in range(viewer_notes)),
        popular_note_ids=tuple(hashlib.sha256(f"pn{i}".encode()).hexdigest() for i in range(3)),
    )


CAST = small_cast()
FOLLOWED = [pubkey_of(s) for s in CAST.author_secrets]
ALL_KINDS = "notes=2/s,reactions=10/s,replies=1/s,reposts=0.5/s,zaps=0.1/s,profiles=1/m"


def generator(spec: str = ALL_KINDS, seed: int | str = 7, cast: SmallCast = CAST) -> TrafficGenerator:
    return TrafficGenerator(cast, seed, parse_rates(spec), START)


# -- rates ----------------------------------------------------------------------------------


def test_parse_rates_full_spec() -> None:
    rates = parse_rates(ALL_KINDS)
    assert dict(rates.per_second) == {
        "notes": Fraction(2),
        "reactions": Fraction(10),
        "replies": Fraction(1),
        "reposts": Fraction(1, 2),
        "zaps": Fraction(1, 10),
        "profiles": Fraction(1, 60),
    }
    assert [name for name, _ in rates] == list(KIND_NAMES)


def test_parse_rates_units_and_spaces() -> None:
    rates = parse_rates(" notes = 3/m , zaps=36/h,reactions=.5/s")
    assert rates.rate("notes") == Fraction(1, 20)
    assert rates.rate("zaps") == Fraction(1, 100)
    assert rates.rate("reactions") == Fraction(1, 2)
    assert rates.rate("profiles") == 0
    assert rates.describe() == "notes=0.05/s,reactions=0.5/s,zaps=0.01/s"


def test_zero_rate_is_allowed_and_silent() -> None:
    rates = parse_rates("notes=0/s")
    assert list(rates) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("likes=2/s", "unknown traffic kind 'likes' in 'likes=2/s' "
         "(valid: notes, replies, reactions, reposts, zaps, profiles)"),
        ("notes=2/s,Notes=1/s", "unknown traffic kind 'Notes' in 'Notes=1/s' "
         "(valid: notes, replies, reactions, reposts, zaps, profiles)"),
        ("notes=x/s", "bad rate 'x' in 'notes=x/s': expected a non-negative number like 2 or 0.5"),
        ("notes=-1/s", "bad rate '-1' in 'notes=-1/s': expected a non-negative number like 2 or 0.5"),
        ("notes=1e3/s", "bad rate '1e3' in 'notes=1e3/s': expected a non-negative number like 2 or 0.5"),
        ("notes=/s", "bad rate '' in 'notes=/s': expected a non-negative number like 2 or 0.5"),
        ("notes=1/3/s", "bad unit '3/s' in 'notes=1/3/s': expected /s, /m or /h"),
        ("notes=2/d", "bad unit 'd' in 'notes=2/d': expected /s, /m or /h"),
        ("notes=2/", "bad unit '' in 'notes=2/': expected /s, /m or /h"),
        ("notes=2/sec", "bad unit 'sec' in 'notes=2/sec': expected /s, /m or /h"),
        ("notes=2", "missing unit in 'notes=2': expected /s, /m or /h after the number"),
        ("notes", "bad traffic item 'notes': expected kind=N/unit like notes=2/s"),
        ("notes=1/s,notes=2/s", "traffic kind 'notes' given twice in 'notes=1/s,notes=2/s'"),
        ("", "empty traffic spec: expected kind=N/unit items like notes=2/s,reactions=10/s"),
        ("notes=1/s,", "empty item in traffic spec 'notes=1/s,'"),
        ("reactions=1001/s", "rate in 'reactions=1001/s' is too high: at most 1000/s per kind"),
    ],
)  # fmt: skip
def test_parse_rates_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_rates(spec)
    assert str(info.value) == message


def test_rates_constructor_checks_names() -> None:
    with pytest.raises(UsageError, match="unknown traffic kind 'likes'"):
        Rates({"likes": Fraction(1)})


# -- generator: determinism -------------------------------------------------------------------


def _run(gen: TrafficGenerator, times: list[float]) -> list[bytes]:
    out = [event.json for t in times for event in gen.events_due(t)]
    out += [event.json for event in gen.burst("zaps", 2)]
    out += [event.json for t in times for event in gen.events_due(t + 30)]
    return out


def test_same_seed_same_calls_same_bytes() -> None:
    times = [START + 0.3 * i for i in range(1, 40)]
    first = _run(generator(seed="alpha"), times)
    second = _run(generator(seed="alpha"), times)
    assert len(first) > 100
    assert first == second


def test_different_seed_different_events() -> None:
    times = [START + 5.0]
    first = _run(generator(seed="alpha"), times)
    other = _run(generator(seed="beta"), times)
    assert len(first) == len(other)
    assert not set(first) & set(other)


def test_events_verify_and_round_trip() -> None:
    gen = generator()
    events = gen.events_due(START + 61) + [e for name in KIND_NAMES for e in gen.burst(name, 2)]
    assert {e.kind for e in events} == {0, 1, 6, 7, 9735}
    for event in events:
        verify_event(event)
        assert event_from_json(event.json) == event


def test_created_at_is_int_of_now() -> None:
    gen = generator()
    events = gen.events_due(START + 10.75)
    assert events
    assert {e.created_at for e in events} == {int(START + 10.75)}
    assert {e.created_at for e in gen.burst("notes", 3)} == {int(START + 10.75)}
    assert {e.created_at for e in gen.burst("notes", 1, now=START + 99.9)} == {int(START + 99.9)}


# -- generator: schedule ----------------------------------------------------------------------


def test_rates_honoured_over_a_simulated_hour() -> None:
    spec = "notes=0.5/s,reactions=1/s,replies=0.2/s,reposts=0.1/s,zaps=0.05/s,profiles=1/m"
    rates = parse_rates(spec)
    gen = TrafficGenerator(CAST, 1, rates, START)
    counts = dict.fromkeys(KIND_NAMES, 0)
    step = 0.7  # not a divisor of any period: accumulation must carry the fractions
    t = START
    while t < START + 3600:
        t = min(t + step, START + 3600)
        for emission in gen.emissions_due(t):
            counts[emission.kind_name] += 1
        for name, rate in rates:
            # At every call the count is exactly the number of multiples of 1/rate elapsed.
            assert counts[name] == floor((Fraction(t) - Fraction(START)) * rate), (name, t)
    assert counts == {"notes": 1800, "reactions": 3600, "replies": 720, "reposts": 360, "zaps": 180,
                      "profiles": 60}  # fmt: skip
    assert gen.made() == counts


def test_emission_times_are_exact_multiples_of_the_period() -> None:
    gen = generator("zaps=0.1/s")
    assert gen.events_due(START + 9.999) == []
    assert len(gen.events_due(START + 10.0)) == 1
    assert gen.events_due(START + 19.999) == []
    assert len(gen.events_due(START + 20.0)) == 1
    assert len(gen.events_due(START + 55.0)) == 3
    assert gen.events_due(START + 55.0) == []


def test_time_going_backwards_emits_nothing() -> None:
    gen = generator("notes=1/s")
    assert len(gen.events_due(START + 5)) == 5
    assert gen.events_due(START + 2) == []
    assert gen.events_due(START - 100) == []
    assert len(gen.events_due(START + 6)) == 1


@settings(max_examples=60)
@given(st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), min_size=1, max_size=12))
def test_count_does_not_depend_on_call_pattern(offsets: list[float]) -> None:
    gen = generator("notes=1.5/s,reposts=0.25/s")
    times = sorted(START + o for o in offsets)
    total = sum(len(gen.events_due(t)) for t in times)
    elapsed = Fraction(times[-1]) - Fraction(START)
    assert total == floor(elapsed * Fraction(3, 2)) + floor(elapsed / 4)


def test_skip_to_drops_the_backlog() -> None:
    gen = generator("notes=1/s")
    assert len(gen.events_due(START + 3)) == 3
    gen.skip_to(START + 100)
    assert gen.events_due(START + 100) == []
    assert len(gen.events_due(START + 102.5)) == 2


def test_burst_does_not_disturb_the_schedule() -> None:
    gen = generator("notes=1/s")
    gen.events_due(START + 2)
    burst = gen.burst("reactions", 5)
    assert [e.kind for e in burst] == [7] * 5
    assert len(gen.events_due(START + 4)) == 2
    assert gen.made() == {**dict.fromkeys(KIND_NAMES, 0), "notes": 4, "reactions": 5}


def test_burst_errors() -> None:
    gen = generator()
    with pytest.raises(UsageError) as info:
        gen.burst("likes", 1)
    assert str(info.value) == UNKNOWN_LIKES
    with pytest.raises(UsageError) as info:
        gen.burst("notes", -1)
    assert str(info.value) == "burst size must not be negative, got -1"


def test_cast_without_viewer_notes() -> None:
    gen = generator("replies=1/s", cast=small_cast(viewer_notes=0))
    with pytest.raises(UsageError) as info:
        gen.events_due(START + 1)
    assert str(info.value) == "the dataset's cast has no viewer notes for replies, reactions, reposts or zaps"
    # Notes and profiles need no viewer notes.
    assert len(generator("notes=1/s", cast=small_cast(viewer_notes=0)).events_due(START + 2)) == 2


def test_cast_without_authors() -> None:
    with pytest.raises(UsageError) as info:
        generator(cast=small_cast(authors=0))
    assert str(info.value) == "the dataset's cast has no authors to write traffic as"


# -- generator: aim ---------------------------------------------------------------------------

FEED = parse_filter({"authors": FOLLOWED, "kinds": [1, 6]})
NOTIFICATIONS = parse_filter({"#p": [CAST.viewer_pubkey]})


def _by_kind(n: int = 12) -> dict[str, list]:
    gen = generator(seed=3)
    return {name: gen.burst(name, n, now=START) for name in KIND_NAMES}


def test_feed_and_notifications_filters_match() -> None:
    made = _by_kind()
    for name in ("notes", "replies", "reposts"):
        assert all(FEED.matches(e) for e in made[name]), name
    for name in ("replies", "reactions", "reposts", "zaps"):
        assert all(NOTIFICATIONS.matches(e) for e in made[name]), name
    # Some notes mention the viewer (p tag + nostr:npub), so they reach notifications too.
    assert any(NOTIFICATIONS.matches(e) for e in made["notes"])
    for name in ("notes", "replies", "reactions", "reposts", "profiles"):
        assert {e.pubkey for e in made[name]} <= set(FOLLOWED), name
    assert {e.pubkey for e in made["zaps"]} == {pubkey_of(CAST.zapper_secret)}
    assert len({e.pubkey for e in made["notes"]}) > 1


def test_replies_carry_nip10_markers() -> None:
    for reply in _by_kind()["replies"]:
        assert reply.kind == 1
        e_tags = [t for t in reply.tags if t[0] == "e"]
        assert len(e_tags) == 1
        _, root, relay, marker, author = e_tags[0]
        assert root in CAST.viewer_note_ids
        assert (relay, marker, author) == (RELAY, "root", CAST.viewer_pubkey)
        assert ("p", CAST.viewer_pubkey) in reply.tags


def test_reactions_and_reposts_target_viewer_notes() -> None:
    made = _by_kind()
    for reaction in made["reactions"]:
        assert reaction.kind == 7
        assert reaction.first_tag_value("e") in CAST.viewer_note_ids
        assert reaction.content in {"+", "-", "🤙", "❤️", "🔥"}
        assert ("k", "1") in reaction.tags
    for repost in made["reposts"]:
        assert repost.kind == 6
        target = repost.first_tag_value("e")
        assert ("e", target, RELAY) in repost.tags
        assert target in CAST.viewer_note_ids


def test_zap_receipts_follow_nip57() -> None:
    node = PrivateKey(CAST.lightning_node_secret)
    zapper = pubkey_of(CAST.zapper_secret)
    for receipt in _by_kind()["zaps"]:
        zap = read_zap_receipt(receipt)  # NIP-57 Appendix F: request signature, amount, hashes
        assert receipt.pubkey == zapper and receipt.content == ""
        assert zap.request.pubkey in FOLLOWED
        assert zap.request.first_tag_value("p") == CAST.viewer_pubkey
        assert zap.request.first_tag_value("e") in CAST.viewer_note_ids
        assert zap.request.first_tag_value("relays") == RELAY
        assert zap.invoice.payee == node.public_key.format()
        assert zap.invoice.timestamp == receipt.created_at == zap.request.created_at
        assert [tag[0] for tag in receipt.tags] == ["p", "e", "P", "bolt11", "description", "preimage"]


def test_profiles_are_kind0_json() -> None:
    for profile in _by_kind()["profiles"]:
        assert profile.kind == 0 and profile.tags == ()
        content = orjson.loads(profile.content)
        assert set(content) == {"name", "display_name", "about"}


# -- bounded memory ---------------------------------------------------------------------------


def test_generator_memory_is_bounded() -> None:
    gen = generator("notes=20/s,reactions=20/s,zaps=5/s")
    gen.events_due(START + 10)  # warm up caches and counters
    state_before = {k: len(v) if hasattr(v, "__len__") else v for k, v in vars(gen).items()}
    gc.collect()
    # Count only memory allocated by the generator's own code paths: tracemalloc sees every thread,
    # and in the whole suite other fixtures (a relay thread, a subprocess reader) allocate meanwhile.
    ours = [tracemalloc.Filter(True, f"*/relaysim/{part}/*") for part in ("traffic", "nostr", "dataset")]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(ours)
        for second in range(11, 41):
            gen.events_due(START + second)  # 1,350 events made and dropped
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(ours)
    finally:
        tracemalloc.stop()
    assert sum(gen.made().values()) == 45 * 40
    kept = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert kept < 16 * 1024, f"generator kept {kept} bytes"
    state_after = {k: len(v) if hasattr(v, "__len__") else v for k, v in vars(gen).items()}
    assert {k: v for k, v in state_after.items() if not isinstance(v, int | float)} == {
        k: v for k, v in state_before.items() if not isinstance(v, int | float)
    }


# -- trio driver ------------------------------------------------------------------------------


class Sink:
    """The publish callable: records events with the trio time they arrived."""

    def __init__(self) -> None:
        self.events: list = []

    async def __call__(self, event) -> None:
        self.events.append((trio.current_time(), event))

    def kinds(self) -> list[int]:
        return [e.kind for _, e in self.events]


async def test_driver_publishes_on_schedule(autojump_clock: trio.testing.MockClock) -> None:
    sink, control = Sink(), TrafficControl()
    gen = generator("notes=2/s,zaps=0.1/s")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_traffic, sink, gen, control, 0.125)
        await trio.sleep(60.0625)  # the last tick ran at exactly 60 s
        nursery.cancel_scope.cancel()
    assert sink.kinds().count(1) == 120
    assert sink.kinds().count(9735) == 6
    stats = control.statistics()
    assert stats.emitted["notes"] == 120 and stats.emitted["zaps"] == 6 and stats.total == 126
    # created_at follows the mock clock mapped onto start_time.
    for t, event in sink.events:
        assert event.created_at == int(START + t)


async def test_driver_is_deterministic(autojump_clock: trio.testing.MockClock) -> None:
    runs = []
    for _ in range(2):
        sink = Sink()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_traffic, sink, generator(), TrafficControl(), 0.125)
            await trio.sleep(5.0625)
            nursery.cancel_scope.cancel()
        runs.append([e.json for _, e in sink.events])
    assert len(runs[0]) == 5 * (2 + 10 + 1) + 2  # notes, reactions, replies, reposts
    assert runs[0] == runs[1]


async def test_pause_resume_burst(autojump_clock: trio.testing.MockClock) -> None:
    sink, control = Sink(), TrafficControl()
    gen = generator("notes=1/s")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_traffic, sink, gen, control, 0.125)
        await trio.sleep(10.0625)
        assert len(sink.events) == 10
        control.pause()
        assert control.paused and control.statistics().paused
        await trio.sleep(10)
        assert len(sink.events) == 10  # nothing scheduled while paused
        control.burst("zaps", 3)
        assert control.statistics().pending_bursts == 3
        await trio.sleep(0.125)
        assert sink.kinds()[10:] == [9735] * 3  # bursts go out while paused
        assert control.statistics().pending_bursts == 0
        await trio.sleep(4.875)  # now t = 25.0625
        control.resume()
        await trio.sleep(0.125)
        assert len(sink.events) == 13  # no backlog from the 15 paused seconds
        await trio.sleep(3)
        assert len(sink.events) == 16
        nursery.cancel_scope.cancel()
    stats = control.statistics()
    assert stats.emitted["notes"] == 13 and stats.emitted["zaps"] == 3 and not stats.paused
    resumed = [t for t, e in sink.events if e.kind == 1][10:]
    assert resumed == pytest.approx([26.125, 27.125, 28.125], abs=0.13)


async def test_pause_and_resume_between_two_ticks(autojump_clock: trio.testing.MockClock) -> None:
    sink, control = Sink(), TrafficControl()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_traffic, sink, generator("notes=1/s"), control, 10.0)
        await trio.sleep(0.5)  # the first tick ran at 0; the next one is at 10
        control.pause()
        await trio.sleep(5)
        control.resume()
        await trio.sleep(5)  # the tick at 10 sees only the resume: nothing from before it
        nursery.cancel_scope.cancel()
    assert sink.events == []


async def test_start_paused(autojump_clock: trio.testing.MockClock) -> None:
    sink, control = Sink(), TrafficControl(paused=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_traffic, sink, generator("notes=5/s"), control, 0.125)
        await trio.sleep(30)
        assert sink.events == []
        control.burst("notes", 2)
        await trio.sleep(0.25)
        nursery.cancel_scope.cancel()
    assert len(sink.events) == 2


def test_control_burst_errors() -> None:
    control = TrafficControl()
    for kind, n, message in [
        ("likes", 1, UNKNOWN_LIKES),
        ("notes", 0, "burst size must be an integer from 1 to 10000, got 0"),
        ("notes", 10_001, "burst size must be an integer from 1 to 10000, got 10001"),
        ("notes", "3", "burst size must be an integer from 1 to 10000, got '3'"),
    ]:
        with pytest.raises(UsageError) as info:
            control.burst(kind, n)
        assert str(info.value) == message
    for _ in range(MAX_PENDING_BURSTS):
        control.burst("notes", 1)
    with pytest.raises(UsageError, match="too many pending bursts"):
        control.burst("notes", 1)


async def test_bad_tick() -> None:
    with pytest.raises(UsageError, match="traffic tick must be positive"):
        await run_traffic(Sink(), generator(), TrafficControl(), tick=0)


# -- with the real seed1 cast ------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed1_cast():
    from relaysim.dataset import cast_for, load_spec

    return cast_for(load_spec("seed1"), "ws://127.0.0.1:9999/")


def test_seed1_cast_drives_the_generator(seed1_cast) -> None:
    gen = TrafficGenerator(seed1_cast, "seed1", parse_rates(ALL_KINDS), float(seed1_cast.window_end))
    made = {name: gen.burst(name, 20) for name in KIND_NAMES}
    feed = parse_filter({"authors": list(seed1_cast.author_pubkeys), "kinds": [1, 6]})
    notifications = parse_filter({"#p": [seed1_cast.viewer_pubkey]})
    for name in ("notes", "replies", "reposts"):
        assert all(feed.matches(e) for e in made[name]), name
    for name in ("replies", "reactions", "reposts", "zaps"):
        assert all(notifications.matches(e) for e in made[name]), name
    viewer_notes = {note.id for note in seed1_cast.viewer_notes if note.pubkey == seed1_cast.viewer_pubkey}
    assert {r.first_tag_value("e") for r in made["replies"]} <= viewer_notes
    assert all(("e", r.first_tag_value("e"), "ws://127.0.0.1:9999/") in r.tags for r in made["reposts"])
    assert {z.pubkey for z in made["zaps"]} == {seed1_cast.zapper_pubkey}
    for events in made.values():
        for event in events:
            verify_event(event)
            assert event.created_at == seed1_cast.window_end


GOLDEN = "1915170f709de58bd17a8b325b54e970681917228659b21124e285d69eb883eb"


def _golden_digest() -> str:
    gen = generator(ALL_KINDS, seed="golden")
    digest = hashlib.sha256()
    for second in range(1, 61):
        for event in gen.events_due(START + second):
            digest.update(event.json + b"\n")
    for name in KIND_NAMES:
        for event in gen.burst(name, 2):
            digest.update(event.json + b"\n")
    return digest.hexdigest()


def test_golden_digest() -> None:
    # The same seed gives the same bytes on every machine and every run. If a deliberate change
    # to the generator alters its output, update this digest in the same commit and say so.
    assert _golden_digest() == GOLDEN
