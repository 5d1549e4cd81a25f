"""The leak matrix: each single-leak reference client fails exactly the assertion meant to catch it.

For every leak switch of the reference client (``/?leaks=X``) one shipped scenario is meant to catch
it. Each run goes through the real CLI (``relaysim run SCENARIO --app ... --report r.json``) with a
real relay and real headless Chromium; only the idle protocol is shortened (``--idle-window 5
--idle-settle 2``, the seed's 30 s / 5 s are the scenarios' own values).

* the fixed client runs each of the four scenarios once and passes every assertion in it (exit 0);
* each leaky client runs its scenario and fails exactly the assertions meant for it (exit 1): one
  for most leaks, two for ``reconnect`` (its per-attempt state grows ``cycle_growth``, its forgotten
  re-sent subscriptions fail ``subscriptions_closed_when_idle``); every other assertion passes,
  except ``idle_rate`` with ``leaks=subs`` and ``leaks=reconnect``, which is UNAVAILABLE for the
  documented reason (the idle rate is not measured while the client still holds subscriptions:
  docs/report-schema.md, ``idle_rate``);
* the failing assertion's detail (and the report) names what grew: the allocation site, the cache
  group and its ``map:`` site, the subscriptions left open, the handle table.

Scenarios are shared where that is exact: thread-open-close catches both ``thread`` and ``subs``,
profile-hopping both ``dom`` and ``maps`` (one fixed-client run serves as the control for both).

Measured on the shared 2-core box (2026-11-26): 10 runs, 199 s in all (203 s wall with pytest).
Fixed: idle 12 s, thread-open-close 27 s, profile-hopping 22 s, thread-profile-cycle 13 s; leaky:
idle 10 s, thread 28 s, subs 23 s, dom 26 s, maps 26 s, thread-profile 13 s. Added 2026-11-29:
reconnect-storm, fixed 31 s and leaky 31 s (62 s wall with pytest, the compare row included).
"""

from __future__ import annotations

import pytest

from tests.matrix_runs import matrix_run

pytestmark = pytest.mark.browser

SHORT_IDLE = ["--idle-window", "5", "--idle-settle", "2"]

# leak -> (scenario, the assertions meant to catch it: the leaky client fails exactly these)
MATRIX: dict[str, tuple[str, tuple[str, ...]]] = {
    "idle": ("idle", ("idle_rate",)),
    "thread": ("thread-open-close", ("thread_events_released",)),
    "subs": ("thread-open-close", ("subscriptions_closed_when_idle",)),
    "dom": ("profile-hopping", ("dom_handles_max",)),
    "maps": ("profile-hopping", ("cache_entries_bounded",)),
    "thread-profile": ("thread-profile-cycle", ("cycle_growth",)),
    "reconnect": ("reconnect-storm", ("cycle_growth", "subscriptions_closed_when_idle")),
}
SCENARIOS = sorted({scenario for scenario, _ in MATRIX.values()})

# Assertions allowed to be UNAVAILABLE in a leaky run, and the reason the report must give.
EXPECTED_UNAVAILABLE = {"subs": {"idle_rate": "still held"}, "reconnect": {"idle_rate": "still held"}}


def run_cli(tmp_path, capsys, scenario: str, app: str) -> tuple[int, dict, str]:
    # once per session: tests/test_compare_matrix.py compares these very reports (tests/matrix_runs.py)
    run = matrix_run(tmp_path, scenario, app, *SHORT_IDLE)
    return run.code, run.report, run.out


def by_name(report: dict) -> dict[str, dict]:
    return {a["name"]: a for a in report["assertions"]}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_fixed_client_passes_every_assertion(tmp_path, capsys, scenario):
    code, report, out = run_cli(tmp_path, capsys, scenario, "builtin")
    verdicts = {name: a["verdict"] for name, a in by_name(report).items()}
    assert code == 0, out
    assert set(verdicts.values()) == {"PASS"}, verdicts
    # every assertion the matrix relies on for this scenario was judged (not silently skipped)
    assert {a for s, names in MATRIX.values() if s == scenario for a in names} <= set(verdicts)
    assert report["app"]["mode"] == "fixed"
    if scenario == "thread-profile-cycle":
        cycles = report["cycles"]
        assert cycles["cycles"] == 4 and cycles["warmup"] == 1
        # the sound client keeps nothing per pass once the sites it re-spends by design are out
        assert cycles["weakest"] == 0 and cycles["sites"] == []
        assert {s["name"] for s in cycles["ignored"]} == {"ws frames", "note elements", "thread events"}
    if scenario == "profile-hopping":
        peaks = {c["group"]: c for c in report["caches"]}
        assert peaks["profile wrappers"]["limit"] == 10
        assert peaks["profile wrappers"]["max_entries"] < 20  # a rotating pair: fewer than 2 x 10
        assert by_name(report)["dom_handles_max"]["measured"] < 300
    if scenario == "reconnect-storm":
        faults = report["relay"]["faults"]
        # the storm happened (seed 27: every connection lives at most 3.3 s, a pass lasts ~5 s) and
        # was switched off before the idle protocol; the report says so in its notes too
        assert faults["disconnects_close"] >= 4 and faults["seed"] == 27 and faults["spec"] == ""
        switches = [e["detail"] for e in faults["events"] if e["fault"] == "spec"]
        assert switches == ["disconnect-every=2s", "off"]
        assert any(n.startswith("faults injected (seed 27") for n in report["notes"])


@pytest.mark.parametrize("leak", list(MATRIX))
def test_leaky_client_fails_exactly_its_assertion_and_names_the_cause(tmp_path, capsys, leak):
    scenario, meant_all = MATRIX[leak]
    code, report, out = run_cli(tmp_path, capsys, scenario, f"builtin?leaks={leak}")
    assertions = by_name(report)
    assert code == 1, out
    assert report["app"]["mode"] == f"leaks={leak}"
    failed = [name for name, a in assertions.items() if a["verdict"] == "FAIL"]
    verdicts = {n: (a["verdict"], a["detail"]) for n, a in assertions.items()}
    assert sorted(failed) == sorted(meant_all), verdicts
    allowed = EXPECTED_UNAVAILABLE.get(leak, {})
    for name, a in assertions.items():
        if name in meant_all:
            continue
        if a["verdict"] == "UNAVAILABLE":
            assert name in allowed and allowed[name] in a["detail"], (name, a["detail"])
        else:
            assert a["verdict"] == "PASS", (name, a)
    meant = meant_all[0]
    detail = assertions[meant]["detail"]
    assert all(name in out for name in meant_all) and "FAIL" in out

    if leak == "idle":
        assert "grew while idle: idle timer" in detail
    elif leak == "thread":
        # the app's threadEvents map kept entries after its thread was left (the figure it reports)
        assert "threadEvents entries left" in detail and assertions[meant]["measured"] > 0
    elif leak == "subs":
        # the relay still holds the thread page's subscription, which the app forgot without a CLOSE,
        # named with its filters
        assert "held after __moxie_close_all(): 'thread' {" in detail, detail
        assert '"#e":' in detail and assertions[meant]["measured"] == 1
    elif leak == "dom":
        assert assertions[meant]["measured"] > 3000
        # the seed's threshold log names the handle table as it grew
        assert "__moxie_alloc_log: dom _elements.size reached" in detail and ", 2000" in detail
        log = next(n for n in report["notes"] if n.startswith("alloc_log: "))
        assert "dom._elements.size=2000" in log
    elif leak == "maps":
        assert "profile wrappers (map:profile wrappers)" in detail and "> 2 x limit 10" in detail
        peaks = {c["group"]: c for c in report["caches"]}
        assert peaks["profile wrappers"]["max_entries"] > 20
    elif leak == "thread-profile":
        assert "grew in every cycle: reply cache +" in detail
        cycles = report["cycles"]
        assert [s["name"] for s in cycles["sites"]] == ["reply cache"]
        assert cycles["weakest"] == cycles["sites"][0]["min_bytes"] > 4096
    elif leak == "reconnect":
        # each attempt's buffer and records stay in the heap: the reconnects site grows in every pass
        assert "grew in every cycle: reconnects +" in detail
        assert [s["name"] for s in report["cycles"]["sites"]] == ["reconnects"]
        # the subscriptions re-sent under ids the app forgot are still open on the last connection
        subs = assertions["subscriptions_closed_when_idle"]
        assert subs["measured"] >= 3 and "feed~r1" in subs["detail"]
        assert report["relay"]["faults"]["disconnects_close"] >= 4
