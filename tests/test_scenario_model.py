"""Scenario files: every shipped scenario loads; bad files give one-line FILE:LINE messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.analysis import ASSERTION_NAMES, Thresholds
from relaysim.errors import UsageError
from relaysim.scenario import (
    STEP_KINDS,
    Assert,
    Back,
    BrowserOptions,
    CloseAll,
    MeasureIdle,
    Open,
    OpenProfile,
    OpenThread,
    Repeat,
    SampleInterval,
    Scroll,
    Traffic,
    Wait,
    load_scenario,
    parse_scenario,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "scenarios").glob("*.toml"))
KINDS = ", ".join(STEP_KINDS)


def test_step_kinds() -> None:
    assert STEP_KINDS == (
        "action",
        "assert",
        "back",
        "click",
        "close_all",
        "faults",
        "feed",
        "js",
        "measure_idle",
        "navigate",
        "notifications",
        "open",
        "open_profile",
        "open_thread",
        "repeat",
        "sample",
        "scroll",
        "traffic",
        "type",
        "wait",
    )


def test_the_seed_test_list_is_shipped() -> None:
    assert [p.stem for p in SHIPPED] == [
        "feed-browsing",
        "hookless-thread-cycle",
        "idle",
        "mixed-5min",
        "notifications",
        "profile-hopping",
        "reconnect-storm",
        "thread-open-close",
        "thread-profile-cycle",
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_loads(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.name == path.stem
    assert sc.app in ("builtin", "builtin?hooks=off") and sc.dataset == "seed1"
    assert sc.description
    assert sc.assertions, "a shipped scenario asserts something"
    assert set(sc.assertions) <= set(ASSERTION_NAMES)
    kinds = [step.KIND for step in sc.walk()]
    assert "close_all" in kinds and "measure_idle" in kinds
    assert kinds.index("close_all") < kinds.index("measure_idle")
    assert all(step.line is not None for step in sc.walk())


def test_feed_browsing_in_detail() -> None:
    sc = load_scenario(ROOT / "scenarios" / "feed-browsing.toml")
    assert sc.steps == (
        Open(page="feed"),
        Wait(seconds=2.0),
        Scroll(n=8, pause=1.0),
        Wait(seconds=2.0),
        CloseAll(),
        MeasureIdle(settle=5.0, window=30.0, windows=1),
        Assert(names=("idle_rate", "subscriptions_closed_when_idle", "heap_delta", "dom_handles_max")),
    )
    assert [s.line for s in sc.steps] == [9, 13, 17, 22, 26, 29, 35]
    assert sc.thresholds == Thresholds()
    assert sc.min_duration_s == 47.0  # about a minute with page loads and probes


def test_shipped_scenarios_cover_their_purpose() -> None:
    by_name = {p.stem: load_scenario(p) for p in SHIPPED}
    assert "thread_events_released" in by_name["thread-open-close"].assertions
    assert "heap_inuse_after_5min" in by_name["mixed-5min"].assertions
    assert by_name["mixed-5min"].min_duration_s >= 300
    assert any(isinstance(s, OpenProfile) and s.from_thread for s in by_name["profile-hopping"].walk())
    assert any(isinstance(s, Traffic) and s.mode == "burst" for s in by_name["notifications"].walk())
    assert by_name["idle"].min_duration_s < by_name["feed-browsing"].min_duration_s


def test_a_bare_name_finds_the_shipped_file() -> None:
    assert load_scenario("idle").name == "idle"


def test_repeat_and_expansion() -> None:
    text = """
[[steps]]
do = "repeat"
times = 3

  [[steps.steps]]
  do = "open_thread"
  k = 2

  [[steps.steps]]
  do = "back"

[[steps]]
do = "assert"
names = "all"

[[steps]]
do = "measure_idle"
"""
    with pytest.raises(UsageError) as info:
        parse_scenario(text, "r.toml")
    assert str(info.value) == "r.toml:13: assert 'idle_rate' needs a measure_idle step before it"
    sc = parse_scenario(text.replace('names = "all"', 'names = ["thread_events_released"]'), "r.toml")
    (rep, *_) = sc.steps
    assert rep == Repeat(times=3, steps=(OpenThread(k=2), Back()))
    assert [s.line for s in rep.steps] == [6, 10]
    assert [s.KIND for s in sc.expanded()] == ["open_thread", "back"] * 3 + ["assert", "measure_idle"]


def test_all_options() -> None:
    text = """
name = "custom"
description = "everything set"
app = "builtin?leaks=idle"
dataset = "datasets/tiny.toml"
seed = 7
traffic = "notes=2/s"
sample_interval = 0.5
probe_calls = 20

[thresholds]
idle_rate_bps = 2048
dom_handles_max = 5000

[browser]
name = "firefox"
headless = false
window_size = [1280, 900]
args = ["--lang=en"]

[[steps]]
do = "open"
page = "profile"
arg = "npub1xyz"

[[steps]]
do = "traffic"
mode = "burst"
kind = "zaps"
n = 50

[[steps]]
do = "sample"
interval = 0.25

[[steps]]
do = "open_profile"
from_thread = true

[[steps]]
do = "notifications"

[[steps]]
do = "feed"
"""
    sc = parse_scenario(text, "c.toml")
    assert (sc.name, sc.description, sc.app, sc.dataset, sc.seed) == (
        "custom",
        "everything set",
        "builtin?leaks=idle",
        "datasets/tiny.toml",
        7,
    )
    assert (sc.traffic, sc.sample_interval, sc.probe_calls, sc.path) == ("notes=2/s", 0.5, 20, "c.toml")
    assert sc.thresholds == Thresholds(idle_rate_bps=2048, dom_handles_max=5000)
    assert sc.threshold_overrides == {"idle_rate_bps": 2048, "dom_handles_max": 5000}
    assert sc.browser == BrowserOptions(
        name="firefox", headless=False, window_size=(1280, 900), args=("--lang=en",)
    )
    assert sc.steps[:3] == (
        Open(page="profile", arg="npub1xyz"),
        Traffic(mode="burst", kind="zaps", n=50),
        SampleInterval(interval=0.25),
    )
    assert sc.steps[3] == OpenProfile(from_thread=True)


def test_one_traffic_mix_per_run() -> None:
    on = '[[steps]]\ndo = "traffic"\nmode = "on"\n'
    sc = parse_scenario('traffic = "notes=2/s"\n' + on, "t.toml")  # reuses the top-level mix
    assert sc.steps == (Traffic(mode="on"),)
    sc = parse_scenario(on + 'rates = "notes=120/m"\n' + on + 'rates = "notes=2/s"\n' + on, "t.toml")
    assert [s.rates for s in sc.steps] == ["notes=120/m", "notes=2/s", None]  # same mix, other spelling
    with pytest.raises(UsageError) as info:
        parse_scenario(on + 'rates = "notes=2/s"\n\n' + on + 'rates = "notes=3/s"\n', "t.toml")
    assert str(info.value) == (
        "t.toml:6: traffic rates 'notes=3/s' differ from 'notes=2/s' given before: a run has one traffic "
        'mix (pause it with mode = "off", resume with mode = "on")'
    )


def test_inline_steps_are_located_by_their_do_key() -> None:
    text = 'steps = [\n  { do = "open", page = "feed" },\n  { do = "wait", secs = 1 },\n]\n'
    with pytest.raises(UsageError) as info:
        parse_scenario(text, "i.toml")
    assert str(info.value) == "i.toml:3: step 'wait' takes no argument 'secs' (expected: seconds)"
    assert parse_scenario(text.replace("secs", "seconds"), "i.toml").steps == (
        Open(page="feed"),
        Wait(seconds=1.0),
    )


# --- bad files: exact one-line messages ------------------------------------------------------------


def bad(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        load_scenario(path)
    assert str(info.value) == message.format(f=path)
    assert "\n" not in str(info.value)


STEP_A = '[[steps]]\ndo = "open"\npage = "feed"\n\n'

BAD = [
    ('name = "x"\n\n[[steps]]\ndo = "open\n', "{f}:4: invalid TOML: Illegal character '\\n' (column 11)"),
    ('name = "x"\nname = "y"\n', "{f}:2: invalid TOML: Cannot overwrite a value (column 11)"),
    (
        STEP_A + '[[steps]]\ndo = "scrol"\nn = 3\n',
        "{f}:6: unknown step 'scrol' (expected one of: " + KINDS + ")",
    ),
    ('[[steps]]\npage = "feed"\n', "{f}:1: step has no 'do' key (expected one of: " + KINDS + ")"),
    (
        STEP_A + '[[steps]]\ndo = "scroll"\ncount = 3\n',
        "{f}:7: step 'scroll' takes no argument 'count' (expected: n, pause)",
    ),
    (
        STEP_A + '[[steps]]\ndo = "scroll"\nn = 0\n',
        "{f}:7: scroll.n must be an integer from 1 to 1000, got 0",
    ),
    (STEP_A + '[[steps]]\ndo = "scroll"\npause = -1\n', "{f}:7: scroll.pause must be a number >= 0, got -1"),
    ('[[steps]]\ndo = "wait"\n', "{f}:1: step 'wait' needs 'seconds'"),
    ('[[steps]]\ndo = "wait"\nseconds = 0\n', "{f}:3: wait.seconds must be a number > 0, got 0"),
    ('[[steps]]\ndo = "feed"\npage = 1\n', "{f}:3: step 'feed' takes no argument 'page' (it takes none)"),
    (
        '[[steps]]\ndo = "open"\npage = "home"\n',
        "{f}:3: open.page must be one of: feed, notifications, profile, thread; got 'home'",
    ),
    ('[[steps]]\ndo = "open_thread"\nk = -2\n', "{f}:3: open_thread.k must be an integer >= 0, got -2"),
    (
        '[[steps]]\ndo = "open_profile"\nk = 1\nfrom_thread = true\n',
        "{f}:1: open_profile takes either 'k' or 'from_thread = true', not both",
    ),
    (
        '[[steps]]\ndo = "measure_idle"\nwindows = 0\n',
        "{f}:3: measure_idle.windows must be an integer from 1 to 10, got 0",
    ),
    (
        '[[steps]]\ndo = "traffic"\nmode = "on"\nrates = "notes=2/x"\n',
        "{f}:4: traffic.rates is not a traffic spec: bad unit 'x' in 'notes=2/x': expected /s, /m or /h",
    ),
    ('[[steps]]\ndo = "traffic"\nmode = "on"\n', "{f}:1: traffic mode 'on' needs 'rates'"),
    ('[[steps]]\ndo = "traffic"\nmode = "burst"\nkind = "notes"\n', "{f}:1: traffic mode 'burst' needs 'n'"),
    ('[[steps]]\ndo = "traffic"\nmode = "off"\nn = 5\n', "{f}:4: traffic mode 'off' takes no 'n'"),
    (
        '[[steps]]\ndo = "traffic"\nmode = "fast"\n',
        "{f}:3: traffic.mode must be one of: on, off, burst; got 'fast'",
    ),
    (
        '[[steps]]\ndo = "assert"\nnames = ["idle"]\n',
        "{f}:3: unknown assertion 'idle' (expected one of: all, " + ", ".join(ASSERTION_NAMES) + ")",
    ),
    (
        '[[steps]]\ndo = "assert"\nnames = []\n',
        '{f}:3: assert.names must be "all" or a non-empty list of assertion names, got []',
    ),
    (
        STEP_A + '[[steps]]\ndo = "assert"\nnames = ["subscriptions_closed_when_idle"]\n',
        "{f}:5: assert 'subscriptions_closed_when_idle' needs a measure_idle step before it",
    ),
    (
        STEP_A + '[[steps]]\ndo = "assert"\nnames = ["thread_events_released"]\n',
        "{f}:5: assert 'thread_events_released' needs an open_thread step before it",
    ),
    (
        '[[steps]]\ndo = "repeat"\ntimes = 2\n\n  [[steps.steps]]\n  do = "wait"\n  seconds = 1\n\n'
        '  [[steps.steps]]\n  do = "scroll"\n  n = 0\n',
        "{f}:11: scroll.n must be an integer from 1 to 1000, got 0",
    ),
    (
        '[[steps]]\ndo = "repeat"\ntimes = 2\n[[steps.steps]]\ndo = "repeat"\ntimes = 2\n'
        '[[steps.steps.steps]]\ndo = "back"\nn = "x"\n',
        "{f}:9: back.n must be an integer from 1 to 100, got 'x'",
    ),
    ('[[steps]]\ndo = "repeat"\ntimes = 2\n', "{f}:1: step 'repeat' needs 'steps'"),
    (
        '[[steps]]\ndo = "repeat"\ntimes = 2\nsteps = []\n',
        "{f}:4: repeat.steps is empty: a repeat needs at least one step",
    ),
    (
        '[[steps]]\ndo = "repeat"\ntimes = 0\nsteps = [{do = "feed"}]\n',
        "{f}:3: repeat.times must be an integer from 1 to 10000, got 0",
    ),
    (
        'nam = "x"\n[[steps]]\ndo = "feed"\n',
        "{f}:1: unknown key 'nam' (expected one of: app, browser, dataset, description, faults, name, "
        "probe_calls, sample_interval, seed, steps, thresholds, traffic)",
    ),
    ('name = ""\n[[steps]]\ndo = "feed"\n', "{f}:1: 'name' must be a non-empty string, got ''"),
    ('sample_interval = 0\n[[steps]]\ndo = "feed"\n', "{f}:1: 'sample_interval' must be a number > 0, got 0"),
    (
        'probe_calls = 1\n[[steps]]\ndo = "feed"\n',
        "{f}:1: 'probe_calls' must be an integer from 2 to 1000, got 1",
    ),
    (
        '[thresholds]\nidle_rate_bps = 2048\nheap_delta = 5\n[[steps]]\ndo = "feed"\n',
        "{f}:3: unknown threshold 'heap_delta' (expected one of: cache_default_limit, cache_limit_factor, "
        "cycle_growth_bytes, dom_handles_max, dom_nodes_growth_max, events_after_close_max, "
        "heap_delta_bytes, heap_inuse_after_5min_bytes, heap_inuse_after_s, idle_rate_bps, "
        "js_heap_growth_bytes, listeners_growth_max, revisit_growth_bytes, "
        "subscriptions_added_max, subscriptions_disagree_max, subscriptions_open_when_idle_max, "
        "thread_events_retained_max, worker_memory_growth_bytes)",
    ),
    (
        '[thresholds]\nidle_rate_bps = "2k"\n[[steps]]\ndo = "feed"\n',
        "{f}:2: threshold 'idle_rate_bps' must be a number >= 0, got '2k'",
    ),
    ('thresholds = 5\n[[steps]]\ndo = "feed"\n', "{f}:1: 'thresholds' must be a table ([thresholds])"),
    (
        '[browser]\nname = "safari"\n[[steps]]\ndo = "feed"\n',
        "{f}:2: browser.name must be one of: chromium, firefox, remote; got 'safari'",
    ),
    (
        '[browser]\nwindow_size = [1280]\n[[steps]]\ndo = "feed"\n',
        "{f}:2: browser.window_size must be [width, height] in pixels, got [1280]",
    ),
    (
        '[browser]\nheadless = true\ncolour = 1\n[[steps]]\ndo = "feed"\n',
        "{f}:3: unknown browser option 'colour' (expected one of: args, headless, name, window_size)",
    ),
    ('name = "x"\n', "{f}: no steps (add [[steps]] tables)"),
    ("steps = []\n", "{f}:1: 'steps' is empty: a scenario needs at least one step"),
    ('[steps]\ndo = "feed"\n', "{f}:1: 'steps' must be an array of tables ([[steps]])"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_scenario_messages(text: str, message: str, tmp_path: Path) -> None:
    bad(text, message, tmp_path)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        load_scenario("scenarios/nope.toml")
    assert str(info.value) == "scenarios/nope.toml: no such scenario file"
    with pytest.raises(UsageError) as info:
        load_scenario(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory, not a scenario file"
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(UsageError) as info:
        load_scenario(binary)
    assert str(info.value) == f"{binary}: not UTF-8 text"


# --- arbitrary step tables only ever give a UsageError ------------------------------------------

ARG_NAMES = [
    "do",
    "page",
    "arg",
    "n",
    "pause",
    "k",
    "from_thread",
    "seconds",
    "mode",
    "rates",
    "kind",
    "settle",
    "window",
    "windows",
    "names",
    "interval",
    "times",
    "steps",
    "x",
]
values = st.one_of(
    st.sampled_from([*list(STEP_KINDS), "feed", "on", "off", "burst", "notes", "all", "idle_rate"]),
    st.integers(-5, 20_000),
    st.floats(-10, 100, allow_nan=False),
    st.booleans(),
    st.text("abcxyz=/,.s", max_size=12),
    st.lists(st.sampled_from(["idle_rate", "heap_delta", "nope"]), max_size=3),
)


def toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)
    return str(v)


@settings(max_examples=200)
@given(st.lists(st.dictionaries(st.sampled_from(ARG_NAMES), values, max_size=4), min_size=1, max_size=4))
def test_arbitrary_steps_raise_only_usage_errors(steps: list[dict[str, object]]) -> None:
    text = "".join(
        "[[steps]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in step.items()) + "\n" for step in steps
    )
    try:
        sc = parse_scenario(text, "h.toml")
    except UsageError as exc:
        message = str(exc)
        assert message.startswith("h.toml:") and "\n" not in message
    else:
        assert len(sc.steps) == len(steps)
