"""Fixtures for the reference client's tests: seed1 on a relay that also serves the client, and
headless Chromium driving it.

Import them into a test module with `from tests.client_fixtures import *` (conftest.py is shared,
so these stay here).  Everything is real: real signed seed1 events, a real relay on a loopback
socket (port 0, `relaysim.relay.SyncRelay`), the real client in a real browser.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from relaysim.client import CLIENT_DIR
from relaysim.dataset import cast_for, ensure_built, load_spec, read_jsonl
from relaysim.nostr import Event

__all__ = ["App", "Seed", "app_factory", "open_subscriptions", "relay", "relay_factory", "seed", "wait_subs"]


@dataclass(frozen=True)
class Seed:
    """seed1's events, its viewer, and the roots of its biggest reply threads (most replies first)."""

    events: list[Event]
    viewer: str
    threads: list[str]
    followed_secret: bytes
    window_end: int


def _threads(events: list[Event]) -> list[str]:
    ids = {e.id for e in events if e.kind == 1}
    roots: Counter[str] = Counter()
    for e in events:
        if e.kind != 1:
            continue
        root = next((t[1] for t in e.tags if t[0] == "e" and len(t) > 3 and t[3] == "root"), None)
        if root in ids:
            roots[root] += 1
    return [root for root, n in roots.most_common() if n >= 3]


@pytest.fixture(scope="session")
def seed() -> Seed:
    spec = load_spec("seed1")
    result = read_jsonl(ensure_built("seed1"))
    cast = cast_for(spec)
    return Seed(
        result.events, cast.viewer_pubkey, _threads(result.events), cast.author_secrets[0], cast.window_end
    )


def relay_factory(test_headers: bool = True) -> Callable[[Seed], Any]:
    """A `SyncRelay` maker serving seed1 and the client (with or without the COOP/COEP test headers)."""
    from relaysim.relay import RelayConfig, SyncRelay

    return lambda s: SyncRelay(RelayConfig(events=s.events, static=CLIENT_DIR, test_headers=test_headers))


@pytest.fixture(scope="session")
def relay(seed: Seed) -> Iterator[Any]:
    with relay_factory()(seed) as r:
        yield r


def open_subscriptions(relay: Any) -> list[str]:
    """Every subscription the relay holds open right now, read from its HTTP `/stats` document."""
    with urllib.request.urlopen(f"{relay.http_url.rstrip('/')}/stats", timeout=5) as resp:
        stats = json.load(resp)
    subs: list[str] = []
    for conn in stats["connections"]:
        if conn.get("closed_at") is None:
            subs.extend(conn["subscriptions"])
    return sorted(subs)


class App:
    """One browser tab on the client, with the hooks as methods."""

    def __init__(self, driver: Any, base: str) -> None:
        self.driver = driver
        self.base = base

    def open(self, query: str = "", *, wait: bool = True) -> dict[str, Any]:
        self.driver.get(f"{self.base}/{query}")
        return self.wait_ready() if wait else {}

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def state(self) -> dict[str, Any]:
        return self.js("return window.__relaysim_app_state ? __relaysim_app_state() : null")

    def wait_ready(self, timeout: float = 30, **expect: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        state: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            state = self.state()
            if state and state["error"]:
                raise AssertionError(f"client error: {state['error']}")
            if state and state["ready"] and all(state.get(k) == v for k, v in expect.items()):
                return state
            time.sleep(0.1)
        raise AssertionError(f"client not ready after {timeout}s: {state}")

    def action(self, name: str, arg: Any = None) -> dict[str, Any]:
        return self.js("return __relaysim_action(arguments[0], arguments[1])", name, arg)

    def mem_stats(self) -> dict[str, int]:
        return self.js("return __moxie_mem_stats()")

    def counters(self) -> dict[str, dict[str, int]]:
        rows = self.js("return __moxie_read_alloc_counters()")
        return {row["name"]: row for row in rows}

    def handles(self) -> int:
        return self.js("return __moxie_dom_handles()")

    def detached_handles(self) -> int:
        return self.js("return [..._elements.values()].filter((el) => !el.isConnected).length")

    def close_all(self) -> list[str]:
        return self.js("return __moxie_close_all()")

    def click(self, testid: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]').click()


@pytest.fixture
def app_factory(relay: Any) -> Iterator[Callable[[], App]]:
    """`app_factory()` opens a fresh headless Chromium (fresh profile) on the relay's origin."""
    # The product's own browser start (same flags, profile and errors as `relaysim run`).
    from relaysim.browser.drivers import BrowserSpec, open_browser

    sessions: list[Any] = []

    def make() -> App:
        session = open_browser(BrowserSpec(window_size=(900, 1000)))
        sessions.append(session)
        return App(session.driver, relay.http_url.rstrip("/"))

    yield make
    for session in sessions:
        session.close()


def wait_subs(relay: Any, expected: list[str], timeout: float = 5) -> list[str]:
    """The relay's open subscriptions once they equal `expected` (CLOSE frames are in flight)."""
    deadline = time.monotonic() + timeout
    subs = open_subscriptions(relay)
    while subs != sorted(expected) and time.monotonic() < deadline:
        time.sleep(0.05)
        subs = open_subscriptions(relay)
    return subs
