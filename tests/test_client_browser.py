"""The reference client in real headless Chromium against a real relay serving seed1.

What is checked: the hooks are consistent with each other and with the allocator; the fixed build
stays flat while idle and closes its subscriptions on every page switch (on the relay's /stats);
each leak switch shows its own signature and no other; the proactive restart restores page,
scroll and pubkey; a costly probe allocates and the default one does not.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from relaysim.client import CLIENT_DIR
from relaysim.nostr import sign_event
from relaysim.relay import SyncRelay
from tests.client_fixtures import *  # noqa: F403 (fixtures)
from tests.client_fixtures import App, Seed, open_subscriptions, relay_factory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

MAP_SITES = ("map:events", "map:authors", "map:embeds", "map:replies", "map:profile wrappers")


def wait_subs(relay: Any, expected: list[str], timeout: float = 5) -> list[str]:
    """The relay's open subscriptions once they equal `expected` (CLOSE frames are in flight)."""
    deadline = time.monotonic() + timeout
    subs = open_subscriptions(relay)
    while subs != sorted(expected) and time.monotonic() < deadline:
        time.sleep(0.05)
        subs = open_subscriptions(relay)
    return subs


def test_hooks_agree_with_each_other_and_with_the_allocator(app_factory: Any, seed: Seed) -> None:
    app: App = app_factory()
    state = app.open(f"?pubkey={seed.viewer}")
    assert state["page"] == "feed" and state["mode"] == "fixed" and state["viewer"] == seed.viewer
    assert state["isolated"] is True and state["probe"] == "shared"
    app.action("thread", seed.threads[0])
    app.action("notifications")
    stats = app.mem_stats()
    assert set(stats) == {"totalAlloc", "mallocs", "heapInuse", "sys"}
    counters = app.counters()
    # The bump heap never frees and rounds every block to 8 bytes, counted as such: what the sites
    # handed out is exactly the heap in use, and sys is the linear memory holding it.
    assert sum(c["bytes"] for c in counters.values()) == stats["heapInuse"] == stats["totalAlloc"]
    assert sum(c["count"] for c in counters.values()) == stats["mallocs"]
    assert stats["sys"] >= stats["heapInuse"] + 1024 and stats["sys"] % 65536 == 0
    assert counters["events"]["count"] > 50 and counters["ws frames"]["bytes"] > 10_000
    assert counters["author names"]["count"] > 0 and counters["reply cache"]["count"] >= 3
    # one handle per rendered element, none left over from the pages before
    rendered = app.js("return document.querySelectorAll('#page > *').length")
    assert app.handles() == rendered > 0
    assert app.detached_handles() == 0
    # the hooks read shared memory: reading them allocates nothing
    for _ in range(20):
        app.mem_stats()
        app.counters()
    assert app.mem_stats() == stats


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


def session_signature(app: App, relay: Any, seed: Seed, query: str) -> set[str]:
    """Browse the same short session and say which leak signatures the client shows."""
    t1, t2 = seed.threads[0], seed.threads[1]
    app.open(f"?pubkey={seed.viewer}{query}")
    maps_start = sum(app.counters()[s]["bytes"] for s in MAP_SITES)
    app.action("thread", t1)
    replies_first = app.counters()["reply cache"]["bytes"]
    app.action("profile", 0)  # a profile opened from inside the thread ...
    app.action("back")  # ... then back to the thread
    replies_back = app.counters()["reply cache"]["bytes"]
    app.action("back")
    app.action("thread", t2)
    app.action("back")
    app.action("notifications")
    state = app.action("feed")
    seen: set[str] = set()
    if sum(app.counters()[s]["bytes"] for s in MAP_SITES) > maps_start:
        seen.add("maps")  # cache tables grew: nothing bounds them
    if app.detached_handles() > 0:
        seen.add("dom")  # handles of elements no longer on the page are still held
    if wait_subs(relay, ["feed"], timeout=2) != ["feed"]:
        seen.add("subs")  # pages left behind still hold subscriptions on the relay
    if state["caches"]["threadEvents"] > 0:
        seen.add("thread")  # threadEvents survived closing the thread
    if replies_back > replies_first:
        seen.add("thread-profile")  # coming back from the profile re-copied the replies
    assert sorted(app.close_all()) == sorted(state["subs"])
    # what the app forgot without a CLOSE stays open on the relay when it is told to go idle
    assert (wait_subs(relay, [], timeout=2) != []) == ("subs" in seen)
    time.sleep(1)
    a = app.mem_stats()["totalAlloc"]
    t0 = time.monotonic()
    time.sleep(3)
    rate = (app.mem_stats()["totalAlloc"] - a) / (time.monotonic() - t0)
    if rate > 1024:
        seen.add("idle")  # allocates while idle
    return seen


@pytest.mark.parametrize("leak", ["", "maps", "dom", "subs", "idle", "thread", "thread-profile"])
def test_each_leak_switch_shows_its_own_signature_and_no_other(
    app_factory: Any, relay: Any, seed: Seed, leak: str
) -> None:
    app: App = app_factory()
    query = f"&leaks={leak}" if leak else ""
    assert session_signature(app, relay, seed, query) == ({leak} if leak else set())
    state = app.state()
    assert state["mode"] == ("leaks" if leak else "fixed")
    assert state["leaks"] == ([leak] if leak else [])


def test_idle_leak_allocates_on_its_own_site(app_factory: Any, seed: Seed) -> None:
    app: App = app_factory()
    app.open(f"?pubkey={seed.viewer}&leaks=idle")
    app.close_all()
    a = app.counters()["idle timer"]
    time.sleep(2)
    b = app.counters()["idle timer"]
    assert b["bytes"] - a["bytes"] >= 6 * 1024  # ~4 KiB/s: 1 KiB every 250 ms
    assert b["count"] - a["count"] == (b["bytes"] - a["bytes"]) // 1024


def test_dom_leak_is_logged_at_handle_thresholds(app_factory: Any, seed: Seed) -> None:
    app: App = app_factory()
    app.open(f"?pubkey={seed.viewer}&leaks=dom")
    app.js("globalThis.__moxie_instrument = true")
    for _ in range(2):
        app.action("notifications")
        app.action("feed")
    log = app.js("return __moxie_alloc_log")
    assert {"source": "ws", "metric": "_conns.size", "value": 1} in [
        {k: r[k] for k in ("source", "metric", "value")} for r in log
    ]
    dom = [r for r in log if r["source"] == "dom" and r["metric"] == "_elements.size"]
    assert [r["value"] for r in dom][1:] == [100]  # the first is the size when the flag went on
    assert app.handles() >= 200
    assert all(isinstance(r["ts"], int) for r in log)


def test_costly_probe_allocates_on_the_probe_site(app_factory: Any, seed: Seed) -> None:
    app: App = app_factory()
    app.open(f"?pubkey={seed.viewer}&costly-probe=1")
    state = app.state()
    assert state["costlyProbe"] is True and state["probe"] == "message"
    app.close_all()
    time.sleep(0.5)
    first = app.mem_stats()
    second = app.mem_stats()
    # the probe built its answer as JSON in the heap after reading the figures it returns
    size = len(json.dumps(first, separators=(",", ":")))
    assert second["totalAlloc"] - first["totalAlloc"] == (size + 7) // 8 * 8
    assert second["mallocs"] - first["mallocs"] == 1
    assert app.counters()["probe"]["count"] >= 2


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
        "unknown leak bogus: known leaks are maps, dom, subs, idle, thread, thread-profile"
    )


def test_without_a_viewer_the_feed_is_global(app_factory: Any, relay: Any) -> None:
    app: App = app_factory()
    state = app.open()
    if state["viewer"] is not None:
        pytest.skip("this relay serves /viewer.json, so the app has a viewer")
    assert state["page"] == "feed"
    assert app.js("return document.querySelectorAll('#page article.note').length") == 50
    assert app.js("return document.querySelector('[data-testid=nav-profile]').hidden") is True


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


def test_without_cross_origin_isolation_the_hooks_answer_by_message(app_factory: Any, seed: Seed) -> None:
    with relay_factory(test_headers=False)(seed) as plain:
        app: App = app_factory()
        app.base = plain.http_url.rstrip("/")
        state = app.open(f"?pubkey={seed.viewer}")
        assert state["isolated"] is False and state["probe"] == "message"
        stats = app.mem_stats()  # a Promise, awaited by WebDriver
        assert stats["heapInuse"] == stats["totalAlloc"] > 0
        counters = app.counters()
        assert sum(c["bytes"] for c in counters.values()) == stats["totalAlloc"]
        app.close_all()
        time.sleep(0.5)
        before = app.mem_stats()
        for _ in range(10):
            app.mem_stats()
            app.counters()
        assert app.mem_stats() == before


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
    first = SyncRelay(events=seed.events, static=CLIENT_DIR, test_headers=True).__enter__()
    try:
        app: App = app_factory()
        app.base = first.http_url.rstrip("/")
        app.open(f"?pubkey={seed.viewer}")
        app.action("notifications")
    finally:
        first.__exit__(None, None, None)  # the relay goes away under the open tab ...
    port = int(app.base.rsplit(":", 1)[1])
    with SyncRelay(events=seed.events, static=CLIENT_DIR, test_headers=True, port=port) as second:
        deadline = time.monotonic() + 20  # ... and comes back on the same port
        while open_subscriptions(second) != ["ntf"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert open_subscriptions(second) == ["ntf"]
        state = app.wait_ready(page="notifications")
        assert state["subs"] == ["ntf"] and state["sockets"] == 1
        assert app.handles() == app.js("return document.querySelectorAll('#page > *').length") == 50
