"""Each leak switch of the reference client, alone, shows its own signature and no other.

Every mode browses the same short session (feed, a thread, a profile opened from inside it, back,
back, a second thread, back, notifications, feed, then close_all and an idle window) and the test
reads which of the six signatures showed up: map tables growing, handles held for elements no
longer in the document, subscriptions of pages left behind, threadEvents kept after a thread
closed, replies re-copied coming back from a profile, and allocation while idle.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.client_fixtures import *  # noqa: F403 (fixtures)
from tests.client_fixtures import App, Seed, wait_subs

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


MAP_SITES = ("map:events", "map:authors", "map:embeds", "map:replies", "map:profile wrappers")


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
