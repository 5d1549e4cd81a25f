"""relaysim explore: the per-step assertions (pure), the explorer's pieces, and the real search (browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from relaysim.analysis import AllocSite, CacheGroupSize, Evidence, Verdict, evaluate
from relaysim.analysis._browsing import PageVisit, SubscriptionView, return_growths
from relaysim.cli import main
from relaysim.cli.explore import parse_duration
from relaysim.errors import UsageError
from relaysim.explore import (
    AssertionFailed,
    BrowsingMachine,
    browsing_actions,
    cheap_assertions,
    judging_tail,
    scenario_text,
)
from relaysim.relay.core import RelayCore, Session, Subscription
from relaysim.scenario import (
    STEP_CLASSES,
    Back,
    CloseAll,
    Feed,
    MeasureIdle,
    Notifications,
    OpenThread,
    Repeat,
    Step,
    Wait,
)
from relaysim.scenario import _step as step_module
from relaysim.scenario._visits import page_state, re_spent_sites, relay_subscriptions
from relaysim.scenario.adapters import load_adapter, parse_adapter
from relaysim.scenario.parse import parse_scenario
from relaysim.strategies import sessions

RE_SPENT = ("ws frames", "note elements", "thread events")


def sites(**by_name: int) -> tuple[AllocSite, ...]:
    return tuple(AllocSite(i, name.replace("_", " "), 1, b) for i, (name, b) in enumerate(by_name.items()))


def visit(step: str, state: str | None, t: float, before: int | None, after: int, *,
          ws: tuple[int, int] = (0, 0), reply: tuple[int, int] = (0, 0), live: int | None = 0) -> PageVisit:
    return PageVisit(
        step=step, state=state, t=t, heap_after=after,
        sites_after=sites(ws_frames=ws[1], reply_cache=reply[1]),
        heap_before=before,
        sites_before=None if before is None else sites(ws_frames=ws[0], reply_cache=reply[0]),
        relay_events=live,
    )


# A feed -> thread -> profile -> back-to-thread session: the return re-spent 100 B of ws frames.
SOUND = (
    visit("start", "feed", 0, None, 1000),
    visit("open_thread (step 1)", "thread:aa", 1, 1000, 5000, ws=(0, 300), reply=(0, 2000)),
    visit("open_profile (step 2)", "profile:bb", 2, 5000, 9000, ws=(300, 700)),
    visit("back (step 3)", "thread:aa", 3, 9000, 9100, ws=(700, 800), reply=(2000, 2000)),
)
# The same session by a client that re-copies the thread's replies on the way back.
LEAKY = (*SOUND[:3], visit("back (step 3)", "thread:aa", 3, 9000, 21764, ws=(700, 800), reply=(2000, 14664)))


def test_a_return_grows_by_what_is_not_re_spent() -> None:
    got = return_growths(SOUND, RE_SPENT)
    assert not isinstance(got, str)
    (ret,) = got.judged
    assert (ret.visit.step, ret.growth, ret.ignored) == ("back (step 3)", 0, 100)
    got = return_growths(LEAKY, RE_SPENT)
    assert not isinstance(got, str)
    (ret,) = got.judged
    assert ret.growth == 12664 and [(d.name, d.bytes) for d in ret.sites] == [("reply cache", 12664)]


def test_staying_on_a_state_is_not_a_return_and_first_visits_are_not_judged() -> None:
    scrolls = (visit("start", "feed", 0, None, 1000), visit("scroll (step 1)", "feed", 1, 1000, 90000))
    got = return_growths(scrolls, RE_SPENT)
    assert not isinstance(got, str) and got.judged == ()


def test_returns_after_new_events_or_an_eviction_are_not_judged() -> None:
    live = (*SOUND[:3], visit("back (step 3)", "thread:aa", 3, 9000, 30000, live=4))
    got = return_growths(live, RE_SPENT)
    assert not isinstance(got, str) and (got.judged, got.after_new_events) == ((), 1)
    caches = [
        (0.5, (CacheGroupSize("events", 1999, 2000, "map:events"),)),
        (2.5, (CacheGroupSize("events", 3, 2000, "map:events"),)),  # rotated between the visits
    ]
    evicted = (*SOUND[:3], visit("back (step 3)", "thread:aa", 3, 9000, 30000))
    got = return_growths(evicted, RE_SPENT, caches)
    assert not isinstance(got, str) and (got.judged, got.after_eviction) == ((), 1)


def test_revisit_growth_judges_the_worst_return_and_says_why_it_cannot() -> None:
    (r,) = evaluate(Evidence(page_visits=LEAKY, re_spent_sites=RE_SPENT), names=["revisit_growth"])
    assert r.verdict == Verdict.FAIL and r.measured == 12664
    assert r.detail.startswith("worst: back (step 3) to thread:aa +12,664 B; 1 return(s) judged")
    assert r.detail.endswith("grew: reply cache +12,664 B")
    (r,) = evaluate(Evidence(page_visits=SOUND, re_spent_sites=RE_SPENT), names=["revisit_growth"])
    assert (r.verdict, r.measured) == (Verdict.PASS, 0)
    unavailable = {
        "the adapter declares no re_spent_sites": Evidence(page_visits=SOUND),
        "the app reports no page state": Evidence(
            page_visits=tuple(visit(v.step, None, v.t, 0, 0) for v in SOUND), re_spent_sites=()
        ),
        "no return to an earlier page state": Evidence(page_visits=SOUND[:3], re_spent_sites=RE_SPENT),
    }
    for why, ev in unavailable.items():
        (r,) = evaluate(ev, names=["revisit_growth"])
        assert r.verdict == Verdict.UNAVAILABLE and r.detail.startswith(why), r.detail


def test_subscriptions_agree_names_what_one_side_kept() -> None:
    ok = SubscriptionView("feed (step 1)", 1.0, ("feed",), ("feed",))
    left = SubscriptionView("open_thread (step 2)", 2.0, ("thread",), ("feed", "thread"))
    (r,) = evaluate(Evidence(subscription_views=(ok, left)), names=["subscriptions_agree"])
    assert (r.verdict, r.measured) == (Verdict.FAIL, 1)
    assert r.detail == "after open_thread (step 2): the relay holds feed that the app no longer knows"
    (r,) = evaluate(Evidence(subscription_views=(ok,)), names=["subscriptions_agree"])
    assert (r.verdict, r.detail) == (Verdict.PASS, "app and relay agreed after each of 1 step(s)")
    blind = SubscriptionView("feed (step 1)", 1.0, None, ("feed",))
    (r,) = evaluate(Evidence(subscription_views=(blind,)), names=["subscriptions_agree"])
    assert r.verdict == Verdict.UNAVAILABLE and "__relaysim_app_state().subs" in r.detail


def test_no_events_after_close_reads_the_relay_counter() -> None:
    core = RelayCore()
    session = Session(1, "127.0.0.1", 0.0)
    sub = Subscription("feed", (), session, 0.0)
    core.record_sent(session, events=3, live=True, nbytes=0, sub=sub)
    assert core.totals.events_after_close == 0
    sub.active = False  # a unit written after its CLOSE: the writer must never do this
    core.record_sent(session, events=2, live=True, nbytes=0, sub=sub)
    assert core.stats()["totals"]["events_after_close"] == 2
    (r,) = evaluate(Evidence(relay_totals=core.stats()["totals"]), names=["no_events_after_close"])
    assert (r.verdict, r.measured) == (Verdict.FAIL, 2)
    (r,) = evaluate(Evidence(relay_totals={"events_after_close": 0, "subs_closed": 7}),
                    names=["no_events_after_close"])
    assert r.verdict == Verdict.PASS and "7 subscription(s) closed" in r.detail
    (r,) = evaluate(Evidence(), names=["no_events_after_close"])
    assert r.verdict == Verdict.UNAVAILABLE


def test_observer_helpers() -> None:
    assert page_state({"page": "thread", "arg": "ab"}) == "thread:ab"
    assert page_state({"page": "feed", "arg": None}) == "feed" and page_state(None) is None
    stats = {"connections": [{"subscriptions": {"feed": [], "ntf": []}}, {"subscriptions": {}}]}
    assert relay_subscriptions(stats) == ("feed", "ntf")
    assert re_spent_sites(load_adapter("builtin")) == RE_SPENT
    assert re_spent_sites(parse_adapter({"name": "x"})) is None
    with pytest.raises(UsageError, match="re_spent_sites must be a list of allocation site names"):
        re_spent_sites(parse_adapter({"name": "x", "re_spent_sites": "ws frames"}, "x.toml"))


# -- the written scenario ----------------------------------------------------------------------------

HEADER = {"name": "explore-x", "description": "d", "app": "builtin?leaks=subs", "dataset": "seed1", "seed": 1}


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(sessions(max_steps=8, harness=("wait",)))
def test_every_generated_session_is_written_as_a_file_that_parses_back(steps: list[Step]) -> None:
    tail = judging_tail("revisit_growth", settle=2, window=5)
    text = scenario_text(HEADER, ["a comment", ""], (*steps, *tail))
    back = parse_scenario(text, "written.toml")
    assert back.steps[: len(steps)] == tuple(steps)
    assert (back.name, back.app, back.dataset, back.seed) == ("explore-x", "builtin?leaks=subs", "seed1", 1)


def test_the_judging_tail_names_exactly_the_failing_assertion() -> None:
    assert [s.KIND for s in judging_tail("subscriptions_agree", settle=2, window=5)] == ["assert"]
    tail = judging_tail("idle_rate", settle=2, window=5)
    assert tail[:2] == (CloseAll(), MeasureIdle(settle=2, window=5))
    assert tail[2].names == ("idle_rate",)  # type: ignore[attr-defined]
    # the tail parses in a file (measure_idle provides what idle_rate requires)
    parse_scenario(scenario_text(HEADER, [], (Feed(), *tail)), "t.toml")


def test_browsing_actions_count_leaf_steps_a_repeat_body_once_and_no_harness_step() -> None:
    steps = (
        OpenThread(k=13),
        Wait(seconds=1.0),
        Repeat(times=30, steps=(OpenThread(k=0, k_step=1), Back())),
        CloseAll(),
    )
    assert browsing_actions(steps) == 3


def test_the_step_shrinker_tries_the_biggest_cuts_first_and_simplifies_repeats() -> None:
    from relaysim.explore._shrink import _candidates, _size

    steps = (Feed(), OpenThread(k=13), Repeat(times=6, steps=(OpenThread(k=0, k_step=1), Back())), Back(n=2))
    got = list(_candidates(steps))
    assert got[0] == steps[:2]  # the second half dropped first
    assert (Feed(), OpenThread(k=13), OpenThread(k=0), Back(), Back(n=2)) in got  # one pass, unrolled
    assert (*steps[:2], Repeat(times=3, steps=steps[2].steps), Back(n=2)) in got  # type: ignore[attr-defined]
    assert (*steps[:2], Repeat(times=6, steps=(Back(),)), Back(n=2)) in got
    assert (*steps[:3], Back()) in got
    assert all(len(c) <= len(steps) + 1 for c in got)
    # smaller = fewer browsing actions, then fewer steps as run
    assert _size((OpenThread(), Back())) < _size((Repeat(times=2, steps=(OpenThread(), Back())),))


# -- the machine is built from the registries -----------------------------------------------------------


def test_the_machine_has_a_rule_per_browsing_step_and_an_invariant_per_cheap_assertion() -> None:
    rules = {r.function.__name__ for r in BrowsingMachine.setup_state().rules}
    assert rules == {k for k, c in STEP_CLASSES.items() if c.BROWSING} | {"repeat"}
    invariants = {i.function.__name__ for i in BrowsingMachine.setup_state().invariants}
    assert invariants == {f"holds_{n}" for n in cheap_assertions()}
    assert "holds_revisit_growth" in invariants and "holds_idle_rate" not in invariants
    # heap_delta is a budget for one scenario's length: a long enough session of a sound client exceeds it
    assert "holds_heap_delta" not in invariants


def test_a_subclass_made_after_a_new_step_type_gets_its_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses
    from typing import ClassVar

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Reload(Step):
        """Reload the page."""

        KIND: ClassVar[str] = "reload_machine_test"
        BROWSING: ClassVar[bool] = True

    monkeypatch.setitem(step_module._STEPS, Reload.KIND, Reload)

    class Mine(BrowsingMachine):
        pass

    assert "reload_machine_test" in {r.function.__name__ for r in Mine.setup_state().rules}
    assert "reload_machine_test" not in {r.function.__name__ for r in BrowsingMachine.setup_state().rules}
    with pytest.raises(TypeError, match="needs an Explorer"):
        Mine()


# -- the command line (no browser: every mistake is caught before one starts) --------------------------


def test_durations() -> None:
    assert (parse_duration("90"), parse_duration("90s"), parse_duration("5m"), parse_duration("1.5h")) == (
        90, 90, 300, 5400
    )
    for bad in ("0", "-1m", "5 minutes", "m"):
        with pytest.raises(UsageError, match="--budget must be a positive duration"):
            parse_duration(bad)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--budget", "soon"], "--budget must be a positive duration such as 90s, 10m or 1h, got 'soon'"),
        (["--steps", "0"], "--steps must be from 1 to 1000, got 0"),
        (["--max-examples", "0"], "--max-examples must be >= 1, got 0"),
        (["--app", "nowhere"],
         "--app 'nowhere' is neither builtin, builtin?QUERY, an http(s) URL nor a directory"),
        (["--adapter", "missing.toml"], "adapter file not found: missing.toml"),
        (["--app", "http://127.0.0.1:9/"],
         "--app http://127.0.0.1:9/: adapter 'generic' has no actions to browse with; "
         "give --adapter FILE (docs/adapters.md)"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explore", *argv]) == 2
    err = capsys.readouterr().err
    assert err == f"relaysim: error: {message}\n"


# -- the real search (headless Chromium, a real relay) -----------------------------------------------
# Measured on the shared 2-core box: the five browser tests take 73 s (idle 26 s, subs 14 s, fixed 26 s).

SHORT_IDLE = ["--idle-window", "5", "--idle-settle", "2"]


@pytest.mark.browser
@pytest.mark.parametrize(("leak", "assertion"), [("subs", "subscriptions_agree"), ("idle", "idle_rate")])
def test_explore_finds_a_leak_shrinks_it_and_the_file_replays_to_the_same_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], leak: str, assertion: str
) -> None:
    app = f"builtin?leaks={leak}"
    out = tmp_path / "found"
    argv = ["explore", "--app", app, "--seed", "1", "--budget", "60s", "--shrink-budget", "20s",
            "--steps", "8", "--out", str(out), *SHORT_IDLE]
    assert main(argv) == 1
    printed = capsys.readouterr().out
    assert f"FOUND {assertion} FAIL" in printed and "FAIL again" in printed
    doc = json.loads((out / "search.json").read_text())
    assert doc["found"] and doc["assertion"] == assertion and doc["seed"] == 1
    assert doc["time_to_find_s"] < 60 and doc["examples"] >= 1
    # the subs leak shows on the first page left; the idle leak needs no browsing at all
    assert doc["minimal"]["actions"] <= 1
    assert doc["replay"]["reproduced"] and doc["replay"]["exit_code"] == 1
    # and as a user replays it: the real CLI, a fresh relay and browser
    report = tmp_path / "r.json"
    assert main(["run", str(out / "scenario.toml"), "--app", app, "--report", str(report)]) == 1
    judged = {a["name"]: a["verdict"] for a in json.loads(report.read_text())["assertions"]}
    assert judged == {assertion: "FAIL"}


@pytest.mark.browser
def test_explore_finds_nothing_in_the_fixed_client(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "none"
    assert main(["explore", "--seed", "2", "--budget", "25s", "--steps", "10", "--out", str(out)]) == 0
    doc = json.loads((out / "search.json").read_text())
    assert not doc["found"] and doc["examples"] >= 3 and doc["stopped"] == "budget"
    assert not (out / "scenario.toml").exists()
    assert "nothing found" in capsys.readouterr().out


@pytest.mark.browser
@settings(max_examples=3, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=sessions(max_steps=5))
def test_generated_sessions_in_pytest_keep_nothing_in_the_fixed_client(app, steps: list[Step]) -> None:
    ran = app.run_session(steps)
    assert all(isinstance(s, Step) for s in ran)


@pytest.mark.browser
@pytest.mark.relaysim_app("builtin?leaks=subs")
def test_run_session_raises_the_failing_assertion(app) -> None:
    with pytest.raises(AssertionFailed) as info:
        app.run_session([Notifications()])
    assert info.value.result.name == "subscriptions_agree"
    assert info.value.steps == (Notifications(),)
