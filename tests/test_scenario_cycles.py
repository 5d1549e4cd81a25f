"""Scenario keys for cycle measurement and per-pass indices: ``measure_cycles``, ``warmup``,
``ignore_sites`` on a repeat, ``k_step`` on open_thread / open_profile. Exact one-line messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaysim.errors import UsageError
from relaysim.scenario import OpenProfile, OpenThread, Repeat, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
[[steps]]
do = "repeat"
times = 4
measure_cycles = true
warmup = 2
ignore_sites = ["ws frames", "note elements"]

  [[steps.steps]]
  do = "open_thread"
  k = 3
  k_step = 2

  [[steps.steps]]
  do = "open_profile"
  k = 1
  k_step = 1

  [[steps.steps]]
  do = "back"
  n = 2

[[steps]]
do = "assert"
names = ["cycle_growth"]
"""


def test_measured_repeat_and_k_step_per_pass():
    sc = parse_scenario(GOOD, "c.toml")
    rep = sc.measured_repeat
    assert isinstance(rep, Repeat) and rep is sc.steps[0]
    assert (rep.times, rep.warmup, rep.ignore_sites) == (4, 2, ("ws frames", "note elements"))
    assert rep.steps[0] == OpenThread(k=3, k_step=2)
    ks = [(s.KIND, s.k) for s in sc.expanded() if isinstance(s, OpenThread | OpenProfile)]
    assert ks == [("open_thread", 3), ("open_profile", 1), ("open_thread", 5), ("open_profile", 2),
                  ("open_thread", 7), ("open_profile", 3), ("open_thread", 9), ("open_profile", 4)]
    assert parse_scenario('[[steps]]\ndo = "feed"\n', "x.toml").measured_repeat is None


def test_shipped_cycle_scenarios():
    tpc = load_scenario(ROOT / "scenarios" / "thread-profile-cycle.toml")
    rep = tpc.measured_repeat
    assert rep is not None and (rep.times, rep.warmup) == (5, 1)
    assert rep.ignore_sites == ("ws frames", "note elements", "thread events")
    assert [s.KIND for s in rep.steps] == ["open_thread", "open_profile", "back"]
    assert tpc.assertions[0] == "cycle_growth"
    hop = load_scenario(ROOT / "scenarios" / "profile-hopping.toml")
    ks = [s.k for s in hop.expanded() if isinstance(s, OpenProfile) and not s.from_thread]
    assert ks == list(range(45))
    assert {"dom_handles_max", "cache_entries_bounded"} <= set(hop.assertions)


def _bad(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_scenario(text, "x.toml")
    assert str(info.value) == message


FROM_THREAD_K_STEP = 'do = "open_profile"\n  from_thread = true\n  k_step = 1'
REPEAT = '[[steps]]\ndo = "repeat"\ntimes = 3\n{extra}\n  [[steps.steps]]\n  do = "feed"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (REPEAT.format(extra="warmup = 1"), "x.toml:4: repeat.warmup needs measure_cycles = true"),
        (REPEAT.format(extra='ignore_sites = ["x"]'),
         "x.toml:4: repeat.ignore_sites needs measure_cycles = true"),
        (REPEAT.format(extra="measure_cycles = true\nwarmup = 3"),
         "x.toml:5: repeat.warmup (3) must be less than times (3): no pass would be measured"),
        (REPEAT.format(extra="measure_cycles = 1"),
         "x.toml:4: repeat.measure_cycles must be true or false, got 1"),
        (REPEAT.format(extra="measure_cycles = true\nignore_sites = [\"\"]"),
         "x.toml:5: repeat.ignore_sites must be a list of allocation site names, got ['']"),
        (REPEAT.format(extra="measure_cycles = true\nwarmup = -1"),
         "x.toml:5: repeat.warmup must be an integer from 0 to 10000, got -1"),
        ('[[steps]]\ndo = "repeat"\ntimes = 2\n  [[steps.steps]]\n  do = "repeat"\n  times = 2\n'
         '  measure_cycles = true\n    [[steps.steps.steps]]\n    do = "feed"\n',
         "x.toml:7: measure_cycles is allowed only on a top-level repeat"),
        (REPEAT.format(extra="measure_cycles = true") + REPEAT.format(extra="measure_cycles = true"),
         "x.toml:7: only one repeat may set measure_cycles (another at line 1)"),
        ('[[steps]]\ndo = "feed"\n[[steps]]\ndo = "assert"\nnames = ["cycle_growth"]\n',
         "x.toml:3: assert 'cycle_growth' needs a repeat with measure_cycles = true before it"),
        ('[[steps]]\ndo = "open_thread"\nk_step = 1\n',
         "x.toml:3: open_thread.k_step needs an enclosing repeat (it advances k on each pass)"),
        (REPEAT.format(extra="").replace("do = \"feed\"", FROM_THREAD_K_STEP),
         "x.toml:8: open_profile.k_step needs 'k', not 'from_thread = true'"),
        (REPEAT.format(extra="").replace('do = "feed"', 'do = "open_thread"\n  k_step = -2'),
         "x.toml:7: open_thread.k_step must be an integer from 0 to 1000, got -2"),
    ],
)
def test_bad_cycle_keys(text, message):
    _bad(text, message)
