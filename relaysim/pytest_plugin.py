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
``explorer``         an :class:`~relaysim.explore.Explorer` on ``browser`` and ``relay`` (the same app):
                     ``explorer.run_machine(MyMachine)`` runs a :class:`~relaysim.explore.BrowsingMachine`
                     (or your subclass) as a Hypothesis stateful test; ``explorer.run_session(steps)``
                     runs one generated session from a clean start.

Options: ``--relaysim-browser chromium|firefox|remote``,
``--relaysim-app builtin|'builtin?leaks=..'|URL|DIR``, ``--relaysim-webdriver-url URL``,
``--relaysim-adapter FILE``. A test can pick its own app with
``@pytest.mark.relaysim_app("builtin?leaks=idle")``.

Generated sessions (docs/explore.md): draw them with :func:`relaysim.strategies.sessions` and run each
with ``app.run_session(steps)`` -- a clean start (relay reset, storage cleared, page reloaded), every
step whose precondition holds, and after each step every assertion that needs no idle point; a failure
raises :class:`~relaysim.explore.AssertionFailed` naming the assertion. Hypothesis reruns the test body
on one ``app``, so tell it that is fine::

    from hypothesis import HealthCheck, given, settings
    from relaysim.strategies import sessions

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(steps=sessions(max_steps=8))
    def test_browsing_keeps_nothing(app, steps):
        app.run_session(steps)

Or subclass the machine for your own app (extra rules, invariants, a different ``view``) and run it::

    from relaysim.explore import BrowsingMachine

    class MyMachine(BrowsingMachine):
        ...

    def test_my_app(explorer):
        explorer.run_machine(MyMachine)

Assertion helpers: :func:`assert_passes` judges any registered assertion by name on an
:class:`~relaysim.analysis.Evidence` (threshold keys as keyword overrides); :func:`assert_idle_rate`,
:func:`assert_heap_delta`, :func:`assert_dom_handles`, :func:`assert_subscriptions_closed` and
:func:`assert_thread_events_released` are short forms of it. They judge through the assertion registry
with the seed's thresholds, so a test fails with the same verdict and detail a ``relaysim run`` report
would show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from relaysim import analysis as an
from relaysim.analysis import AssertionResult, Evidence, Sample, ThreadClose, Thresholds, Verdict

if TYPE_CHECKING:
    from relaysim.browser.idle import IdleOutcome

# Browser and scenario modules are imported inside the fixtures that need them: this plugin loads in
# every pytest run of a project that has relaysim installed, and selenium should not slow those down.

__all__ = [
    "App",
    "assert_dom_handles",
    "assert_heap_delta",
    "assert_idle_rate",
    "assert_passes",
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


def assert_passes(
    name: str, evidence: Evidence, *, allow_unavailable: bool = False, **thresholds: float
) -> AssertionResult:
    """Judge the registered assertion ``name`` on ``evidence`` (threshold keys as keyword overrides, e.g.
    ``idle_rate_bps=2048``) and raise ``AssertionError`` with its verdict and detail unless it passes.

    Every assertion in :data:`relaysim.analysis.ASSERTIONS` works here, the shipped ones and any a
    project registers, with the same detail a ``relaysim run`` report would show."""
    return _require(_judge(name, evidence, thresholds), allow_unavailable)


def _judge(name: str, evidence: Evidence, limits: dict[str, float]) -> AssertionResult:
    return an.get_assertion(name).judge(evidence, Thresholds(**limits))


def _require(result: AssertionResult, allow_unavailable: bool = False) -> AssertionResult:
    if result.verdict == Verdict.FAIL or (result.verdict == Verdict.UNAVAILABLE and not allow_unavailable):
        measured = "unavailable" if result.measured is None else f"{result.measured:,.1f} {result.unit}"
        raise AssertionError(
            f"{result.name}: {measured} (must be {result.comparison} {result.threshold:,.0f} {result.unit})"
            f" -- {result.detail}"
        )
    return result


def idle_evidence(outcome: IdleOutcome) -> Evidence:
    """The evidence an idle protocol outcome gives (rate, sites that grew, subscriptions held)."""
    return Evidence(
        idle=outcome.measurement,
        idle_unavailable=outcome.unavailable,
        idle_site_deltas=tuple(outcome.site_deltas),
        subscriptions_open_when_idle=outcome.subscriptions_open,
        subscriptions_detail=outcome.open_detail or None,
    )


def _limits(**given: float | None) -> dict[str, float]:
    """The limits a helper was given; the rest stay at the registry's defaults (the seed's)."""
    return {key: value for key, value in given.items() if value is not None}


def assert_idle_rate(outcome: IdleOutcome, limit: float | None = None) -> AssertionResult:
    """The idle rate (probe cost taken out) is below ``limit`` B/s (default: the seed's 1024); names the
    grown sites on failure."""
    return _require(_judge("idle_rate", idle_evidence(outcome), _limits(idle_rate_bps=limit)))


def assert_subscriptions_closed(outcome: IdleOutcome) -> AssertionResult:
    """When told to go idle the client held no subscription on the relay."""
    return _require(_judge("subscriptions_closed_when_idle", idle_evidence(outcome), {}))


def assert_heap_delta(before: Sample, after: Sample, limit: float | None = None) -> AssertionResult:
    """heapInuse grew by less than ``limit`` bytes between two samples (default: the seed's 20 MiB)."""
    return _require(_judge("heap_delta", Evidence(samples=(before, after)), _limits(heap_delta_bytes=limit)))


def assert_dom_handles(samples: Sequence[Sample], limit: float | None = None) -> AssertionResult:
    """The DOM handle table stayed below ``limit`` in every sample (default: the seed's 3000)."""
    evidence = Evidence(samples=tuple(samples))
    return _require(_judge("dom_handles_max", evidence, _limits(dom_handles_max=limit)))


def assert_thread_events_released(
    closes: Sequence[ThreadClose], limit: float | None = None
) -> AssertionResult:
    """After every thread close the app holds at most ``limit`` threadEvents entries (default 0)."""
    evidence = Evidence(thread_closes=tuple(closes))
    return _require(_judge("thread_events_released", evidence, _limits(thread_events_retained_max=limit)))


# -- the app under test --------------------------------------------------------------------------------


class App:
    """The app loaded in a browser, driven through its adapter, with a sampler running on demand."""

    def __init__(self, session: Any, relay: Any, url: str, adapter: Any, interval: float = 0.5) -> None:
        from relaysim.browser import Sampler
        from relaysim.browser.idle import relay_figures

        self.session = session
        self.driver = session.driver
        self.relay = relay
        self.url = url
        self.adapter = adapter
        self.sampler = Sampler(session, interval=interval, relay_figures=lambda: relay_figures(relay))
        self.thread_closes: list[ThreadClose] = []

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

    def explorer(self) -> Any:
        """An :class:`~relaysim.explore.Explorer` on this app's browser, relay and adapter."""
        from relaysim.explore import Explorer

        return Explorer(self.session, self.relay, self.url, self.adapter)

    def run_session(self, steps: Sequence[Any], *, idle: bool = False) -> list[Any]:
        """Run a generated session from a clean start, judging after every step (module docstring);
        returns the steps that ran. ``idle``: screen for the idle assertions at the end too."""
        return list(self.explorer().run_session(steps, idle=idle))


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
    from relaysim.relay import RelayConfig, SyncRelay
    from relaysim.scenario.runner import resolve_app

    target = resolve_app(relaysim_app_spec)
    with SyncRelay(RelayConfig(dataset="seed1", static=target.static_dir)) as r:
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
    from relaysim.scenario._app import adapter_for, resolve_app

    marker = request.node.get_closest_marker("relaysim_app")
    target = resolve_app(marker.args[0] if marker else relaysim_app_spec)
    adapter = adapter_for(target, _opt(request.config, "--relaysim-adapter"))
    return App(browser, relay, target.page_url(relay.http_url), adapter).load()


@pytest.fixture
def explorer(app: App) -> Any:
    """An :class:`~relaysim.explore.Explorer` on the ``app`` fixture's browser, relay and adapter."""
    return app.explorer()


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
