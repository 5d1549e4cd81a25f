"""relaysim as a pytest plugin (entry point ``pytest11``): memory tests of a web client in a few lines.

Fixtures
--------
``relay``            a :class:`~relaysim.relay.SyncRelay` on a loopback port with the seed1 dataset,
                     serving the app under test (session scope; one relay for the whole test run).
``browser``          a fresh :class:`~relaysim.browser.BrowserSession` per test (Chromium by default).
``app``              the app loaded in ``browser`` and ready: an :class:`App` with ``do(action, arg)``,
                     ``sample()``, ``idle(window=...)`` and the figures below.
``mem_stats``        ``mem_stats() -> dict | None``: ``__moxie_mem_stats()`` of the loaded app.
``alloc_counters``   ``alloc_counters() -> list | None``: ``__moxie_read_alloc_counters()``.
``dom_handle_count`` ``dom_handle_count() -> int | None``: ``__moxie_dom_handles()`` (``_elements.size``).

Options: ``--relaysim-browser chromium|firefox|remote``,
``--relaysim-app builtin|'builtin?leaks=..'|URL|DIR``, ``--relaysim-webdriver-url URL``,
``--relaysim-adapter FILE``. A test can pick its own app with
``@pytest.mark.relaysim_app("builtin?leaks=idle")``.

Assertion helpers (plain functions, also on the :class:`App`): :func:`assert_idle_rate`,
:func:`assert_heap_delta`, :func:`assert_dom_handles`, :func:`assert_subscriptions_closed`,
:func:`assert_thread_events_released`. They judge with :func:`relaysim.analysis.evaluate` and the seed's
thresholds, so a test fails with the same verdict and detail a ``relaysim run`` report would show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from relaysim import analysis as an
from relaysim.analysis import AssertionResult, Evidence, Sample, ThreadClose, Thresholds, Verdict

__all__ = [
    "App",
    "assert_dom_handles",
    "assert_heap_delta",
    "assert_idle_rate",
    "assert_subscriptions_closed",
    "assert_thread_events_released",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("relaysim", "relaysim: memory tests of web clients")
    group.addoption("--relaysim-browser", default="chromium", choices=("chromium", "firefox", "remote"),
                    help="browser for the relaysim fixtures (default chromium)")
    group.addoption("--relaysim-app", default="builtin",
                    help="app under test: builtin, 'builtin?leaks=...', an http(s) URL or a directory")
    group.addoption("--relaysim-webdriver-url", default=None, help="W3C WebDriver / Grid URL (remote)")
    group.addoption("--relaysim-adapter", default=None, help="adapter TOML for a non-builtin app")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "relaysim_app(spec): run this test against another app (e.g. a leak)")


# -- assertion helpers ---------------------------------------------------------------------------------


def _check(result: AssertionResult, allow_unavailable: bool = False) -> AssertionResult:
    if result.verdict == Verdict.FAIL or (result.verdict == Verdict.UNAVAILABLE and not allow_unavailable):
        measured = "unavailable" if result.measured is None else f"{result.measured:,.1f} {result.unit}"
        raise AssertionError(
            f"{result.name}: {measured} (must be {result.comparison} {result.threshold:,.0f} {result.unit})"
            f" -- {result.detail}"
        )
    return result


def _judge(name: str, evidence: Evidence, thresholds: Thresholds | None) -> AssertionResult:
    return an.evaluate(evidence, thresholds, (name,))[0]


def assert_idle_rate(outcome: Any, limit: float = 1024.0) -> AssertionResult:
    """The idle rate (probe cost taken out) is below ``limit`` B/s; names the grown sites on failure."""
    result = _judge(
        "idle_rate",
        Evidence(idle=outcome.measurement, idle_unavailable=outcome.unavailable,
                 subscriptions_open_when_idle=outcome.subscriptions_open),
        Thresholds(idle_rate_bps=limit),
    )
    if result.verdict == Verdict.FAIL:
        grown = an.top_sites(outcome.site_deltas, n=3)
        if grown:
            import dataclasses

            sites = ", ".join(f"{d.name} +{d.bytes:,} B" for d in grown)
            result = dataclasses.replace(result, detail=f"{result.detail}; grew while idle: {sites}")
    return _check(result)


def assert_subscriptions_closed(outcome: Any) -> AssertionResult:
    """When told to go idle the client held no subscription on the relay."""
    return _check(_judge("subscriptions_closed_when_idle",
                         Evidence(subscriptions_open_when_idle=outcome.subscriptions_open), None))


def assert_heap_delta(before: Sample, after: Sample, limit: float = 20 * 1024 * 1024) -> AssertionResult:
    """heapInuse grew by less than ``limit`` bytes between two samples."""
    return _check(_judge("heap_delta", Evidence(samples=(before, after)), Thresholds(heap_delta_bytes=limit)))


def assert_dom_handles(samples: Sequence[Sample], limit: float = 3000) -> AssertionResult:
    """The DOM handle table stayed below ``limit`` in every sample."""
    evidence = Evidence(samples=tuple(samples))
    return _check(_judge("dom_handles_max", evidence, Thresholds(dom_handles_max=limit)))


def assert_thread_events_released(closes: Sequence[ThreadClose], limit: float = 0) -> AssertionResult:
    """After every thread close the app holds at most ``limit`` threadEvents entries."""
    return _check(_judge("thread_events_released", Evidence(thread_closes=tuple(closes)),
                         Thresholds(thread_events_retained_max=limit)))


# -- the app under test --------------------------------------------------------------------------------


class App:
    """The app loaded in a browser, driven through its adapter, with a sampler running on demand."""

    def __init__(self, session: Any, relay: Any, url: str, adapter: Any, interval: float = 0.5) -> None:
        from relaysim.browser import Sampler

        self.session = session
        self.driver = session.driver
        self.relay = relay
        self.url = url
        self.adapter = adapter
        self.sampler = Sampler(session, interval=interval, relay_figures=self._relay_figures)
        self.thread_closes: list[ThreadClose] = []

    def _relay_figures(self) -> dict[str, Any]:
        return {an.RELAY_SUBSCRIPTIONS: self.relay.stats()["totals"].get("subscriptions_active")}

    def load(self) -> App:
        self.driver.get(self.url)
        self.adapter.wait_ready(self.driver)
        self.sampler.page_loaded()
        return self

    def do(self, action: str, arg: Any = None) -> Any:
        """Perform an adapter action (``feed``, ``scroll``, ``open_thread``, ``back`` ...), then sample."""
        result = self.adapter.perform(self.driver, action, arg)
        self.sampler.sample(action)
        return result

    def sample(self, phase: str = "") -> Sample:
        return self.sampler.sample(phase)

    def wait(self, seconds: float) -> list[Sample]:
        return self.sampler.run_for(seconds, "wait")

    def state(self) -> dict[str, Any] | None:
        self.sampler.sample("state")
        return self.sampler.last.state if self.sampler.last else None

    def open_and_close_thread(self, k: int = 0) -> ThreadClose:
        """Open the k-th thread, go back, and keep the samples around it for threadEvents checks."""
        before = self.sample("before-thread")
        self.do("open_thread", k)
        self.do("back")
        close = ThreadClose(before, self.sampler.samples[-1], f"thread {k}")
        self.thread_closes.append(close)
        return close

    def probe_cost(self, calls: int = 10) -> an.ProbeCost | None:
        from relaysim.browser import measure_probe_cost

        return measure_probe_cost(self.session, calls)

    def idle(self, window: float = 10.0, settle: float = 5.0, windows: int = 1) -> Any:
        """The idle protocol (close all, relay check, settle, measure); returns an IdleOutcome."""
        from relaysim.browser.idle import run_idle_protocol

        return run_idle_protocol(self.session, self.sampler, self.relay, window=window, windows=windows,
                                 settle=settle, probe_cost=self.probe_cost())

    @property
    def samples(self) -> list[Sample]:
        return self.sampler.samples


# -- fixtures ------------------------------------------------------------------------------------------


def _opt(config: pytest.Config, name: str, default: Any = None) -> Any:
    try:
        return config.getoption(name)
    except ValueError:
        return default


@pytest.fixture(scope="session")
def relaysim_app_spec(pytestconfig: pytest.Config) -> str:
    """The ``--relaysim-app`` value (``builtin`` by default)."""
    return str(_opt(pytestconfig, "--relaysim-app", "builtin"))


@pytest.fixture(scope="session")
def relay(relaysim_app_spec: str) -> Iterator[Any]:
    """One relay for the session: seed1, serving the builtin client or the ``--relaysim-app`` directory."""
    from relaysim.relay import SyncRelay
    from relaysim.scenario.runner import resolve_app

    target = resolve_app(relaysim_app_spec)
    kwargs: dict[str, Any] = {"dataset": "seed1", "port": 0}
    if target.static_dir is not None:
        kwargs["static"] = target.static_dir
    with SyncRelay(**kwargs) as r:
        yield r


@pytest.fixture
def browser(pytestconfig: pytest.Config) -> Iterator[Any]:
    """A fresh browser per test (a clean profile; ~1 s for Chromium)."""
    from relaysim.browser import BrowserSpec, open_browser

    spec = BrowserSpec(
        kind=_opt(pytestconfig, "--relaysim-browser", "chromium"),
        webdriver_url=_opt(pytestconfig, "--relaysim-webdriver-url"),
    )
    with open_browser(spec) as session:
        yield session


@pytest.fixture
def app(request: pytest.FixtureRequest, browser: Any, relay: Any, relaysim_app_spec: str) -> App:
    """The app under test, loaded and ready (the ``relaysim_app`` marker overrides ``--relaysim-app``)."""
    from relaysim.scenario.adapters import load_adapter
    from relaysim.scenario.runner import generic_adapter, resolve_app

    marker = request.node.get_closest_marker("relaysim_app")
    spec = marker.args[0] if marker else relaysim_app_spec
    target = resolve_app(spec)
    adapter_path = _opt(request.config, "--relaysim-adapter")
    if adapter_path:
        adapter = load_adapter(adapter_path)
    elif target.kind == "builtin":
        adapter = load_adapter("builtin")
    else:
        adapter = generic_adapter()
    return App(browser, relay, target.page_url(relay.http_url), adapter).load()


def _reader(app: App, key: str) -> Callable[[], Any]:
    from relaysim.browser import read_app

    def read() -> Any:
        sample = read_app(app.session)
        return {"mem": sample.mem, "sites": sample.sites, "handles": sample.handles}[key]

    return read


@pytest.fixture
def mem_stats(app: App) -> Callable[[], dict[str, float] | None]:
    """``mem_stats()``: the app's ``__moxie_mem_stats()`` now (None when the hook is missing)."""
    return _reader(app, "mem")


@pytest.fixture
def alloc_counters(app: App) -> Callable[[], list[dict[str, Any]] | None]:
    """``alloc_counters()``: the app's per-site ``__moxie_read_alloc_counters()`` now."""
    return _reader(app, "sites")


@pytest.fixture
def dom_handle_count(app: App) -> Callable[[], int | None]:
    """``dom_handle_count()``: the app's DOM handle table size (``__moxie_dom_handles()``) now."""
    return _reader(app, "handles")
