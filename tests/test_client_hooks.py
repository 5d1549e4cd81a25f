"""The reference client's hooks in real headless Chromium against a real relay serving seed1.

The hooks agree with each other and with the allocator (sum of site bytes == heapInuse), reading
them allocates nothing by default, a costly probe allocates exactly its JSON answer, the
postMessage path works without cross-origin isolation, and the threshold log records handles
and sockets.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.client_fixtures import *  # noqa: F403 (fixtures)
from tests.client_fixtures import App, Seed, relay_factory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


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
