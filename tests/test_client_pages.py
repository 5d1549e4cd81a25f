"""The reference client as a person uses it, in real headless Chromium against a real relay.

The fixed build stays flat while idle and closes its subscriptions on every page switch (checked
on the relay's /stats), shows live events as they arrive on a capped page, reconnects when the
relay comes back, restarts itself proactively above a heap threshold restoring page, scroll and
pubkey, refuses an unknown leak name, and shows a global feed without a viewer.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from selenium.common.exceptions import JavascriptException

from relaysim.client import CLIENT_DIR
from relaysim.nostr import sign_event
from relaysim.relay import RelayConfig, SyncRelay
from tests.client_fixtures import *  # noqa: F403 (fixtures)
from tests.client_fixtures import App, Seed, open_subscriptions, wait_subs

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def test_fixed_build_is_flat_while_idle(app_factory: Any, relay: Any, seed: Seed) -> None:
    app: App = app_factory()
    app.open(f"?pubkey={seed.viewer}")
    app.action("thread", seed.threads[1])
    app.action("back")
    closed = app.close_all()
    assert closed == ["feed"]
    assert wait_subs(relay, []) == []
    assert app.state()["subs"] == []
    time.sleep(1)
    before = app.mem_stats()
    time.sleep(5)
    assert app.mem_stats() == before


def test_fixed_build_closes_its_subscriptions_on_every_page_switch(
    app_factory: Any, relay: Any, seed: Seed
) -> None:
    app: App = app_factory()
    app.open(f"?pubkey={seed.viewer}")
    assert wait_subs(relay, ["feed"]) == ["feed"]
    # by clicks, as a person would
    app.click("nav-notifications")
    app.wait_ready(page="notifications")
    assert wait_subs(relay, ["ntf"]) == ["ntf"]
    app.click("nav-feed")
    app.wait_ready(page="feed")
    assert wait_subs(relay, ["feed"]) == ["feed"]
    first = app.js("return document.querySelector('[data-testid^=open-thread-]').dataset.arg")
    app.click(f"open-thread-{first}")
    app.wait_ready(page="thread")
    assert wait_subs(relay, ["thread"]) == ["thread"]
    author = app.js("return document.querySelector('#page [data-testid^=open-profile-]').dataset.arg")
    app.click(f"open-profile-{author}")
    app.wait_ready(page="profile", arg=author)
    assert wait_subs(relay, ["profile"]) == ["profile"]
    app.click("back")
    app.wait_ready(page="thread")
    assert wait_subs(relay, ["thread"]) == ["thread"]
    app.click("back")
    app.wait_ready(page="feed")
    app.click("load-more")
    state = app.wait_ready(page="feed", more=1)
    assert state["subs"] == ["feed"]
    assert wait_subs(relay, ["feed"]) == ["feed"]
    assert app.js("return document.querySelectorAll('#page article.note').length") > 50


def test_live_events_appear_as_they_arrive(app_factory: Any, relay: Any, seed: Seed) -> None:
    app: App = app_factory()
    app.open(f"?pubkey={seed.viewer}")
    now = int(time.time())
    note = sign_event(seed.followed_secret, created_at=now, kind=1, content="live from the relay")
    relay.publish(note)
    first = "return document.querySelector('#page article.note').dataset.testid"
    deadline = time.monotonic() + 10
    while app.js(first) != f"note-{note.id}" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.js(first) == f"note-{note.id}"
    app.action("thread", note.id)
    reply = sign_event(
        seed.followed_secret,
        created_at=now + 1,
        kind=1,
        tags=[["e", note.id, "", "root"]],
        content="a live reply",
    )
    relay.publish(reply)
    shown = f"return document.querySelector('[data-testid=note-{reply.id}]') !== null"
    deadline = time.monotonic() + 10
    while not app.js(shown) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.js(shown)
    assert app.handles() == app.js("return document.querySelectorAll('#page > *').length") == 2


@pytest.mark.parametrize("leak", ["", "dom"])
def test_live_notes_push_the_oldest_off_a_capped_page(
    app_factory: Any, relay: Any, seed: Seed, leak: str
) -> None:
    app: App = app_factory()
    app.open(f"?pubkey={seed.viewer}&page_cap=60" + (f"&leaks={leak}" if leak else ""))
    assert app.handles() == 50
    now = int(time.time())
    notes = [
        sign_event(seed.followed_secret, created_at=now + i, kind=1, content=f"live {i}") for i in range(15)
    ]
    for note in notes:
        relay.publish(note)
    count = "return document.querySelectorAll('#page > article').length"
    top = "return document.querySelector('#page > article').dataset.testid"
    deadline = time.monotonic() + 10
    while app.js(top) != f"note-{notes[-1].id}" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.js(count) == 60
    # fixed: the 5 pushed off the bottom were released; dom leak: their handles are still held
    assert app.handles() == (65 if leak else 60)
    assert app.detached_handles() == (5 if leak else 0)


def test_the_app_reconnects_and_reloads_its_page(app_factory: Any, seed: Seed) -> None:
    first = SyncRelay(RelayConfig(events=seed.events, static=CLIENT_DIR, test_headers=True)).__enter__()
    try:
        app: App = app_factory()
        app.base = first.http_url.rstrip("/")
        app.open(f"?pubkey={seed.viewer}")
        app.action("notifications")
    finally:
        first.__exit__(None, None, None)  # the relay goes away under the open tab ...
    port = int(app.base.rsplit(":", 1)[1])
    config = RelayConfig(events=seed.events, static=CLIENT_DIR, test_headers=True, port=port)
    with SyncRelay(config) as second:
        deadline = time.monotonic() + 20  # ... and comes back on the same port
        while open_subscriptions(second) != ["ntf"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert open_subscriptions(second) == ["ntf"]
        state = app.wait_ready(page="notifications")
        assert state["subs"] == ["ntf"] and state["sockets"] == 1
        assert app.handles() == app.js("return document.querySelectorAll('#page > *').length") == 50


def test_proactive_restart_restores_page_scroll_and_pubkey(app_factory: Any, seed: Seed) -> None:
    app: App = app_factory()
    # calibrate: the heap of a fresh tab that shows the feed with one page loaded more
    app.open(f"?pubkey={seed.viewer}&restart_poll=0&costly-probe=1")
    app.action("notifications")
    app.action("feed")
    app.action("scroll", 1)
    fresh = app.mem_stats()["heapInuse"]
    threshold = fresh + 300_000
    app.open(f"?pubkey={seed.viewer}&restart_poll=0.5&restart_mb={threshold / 1048576}&costly-probe=1")
    app.action("notifications")
    app.action("feed")
    app.action("scroll", 1)
    app.js("window.scrollTo(0, 1500)")
    before = app.state()
    assert before["restarts"] == 0 and before["scrollY"] == 1500
    while app.mem_stats()["heapInuse"] <= threshold:  # each costly read allocates ~1.6 KB
        app.counters()
    after = app.wait_ready(timeout=30, restarts=1)
    assert after["page"] == "feed" and after["more"] == 1 and after["viewer"] == seed.viewer
    assert [h["page"] for h in after["history"]] == ["feed", "notifications"]
    assert app.js("return window.scrollY") == 1500
    assert app.js("return localStorage.getItem('relaysim.restart')") is None
    assert app.mem_stats()["heapInuse"] < threshold
    assert app.js("return document.querySelectorAll('#page article.note').length") > 50
    app.action("back")
    assert app.state()["page"] == "notifications"


def test_unknown_leak_is_refused_with_the_list_of_known_ones(app_factory: Any) -> None:
    app: App = app_factory()
    app.open("?leaks=maps,bogus", wait=False)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (app.state() or {}).get("error"):
        time.sleep(0.1)
    assert app.state()["error"] == (
        "unknown leak bogus: known leaks are maps, dom, subs, idle, thread, thread-profile, reconnect"
    )


def test_without_a_viewer_the_feed_is_global(app_factory: Any, relay: Any) -> None:
    app: App = app_factory()
    state = app.open("?pubkey=")  # an empty pubkey: no viewer, even where /viewer.json names one
    assert state["viewer"] is None
    assert state["page"] == "feed"
    assert app.js("return document.querySelectorAll('#page article.note').length") == 50
    assert app.js("return document.querySelector('[data-testid=nav-profile]').hidden") is True
    with pytest.raises(JavascriptException, match="profile needs a pubkey: there is no viewer"):
        app.action("profile")
