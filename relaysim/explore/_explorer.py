"""One browser and one relay kept across examples; a clean, replayable start for each example.

Theory of operation. Starting Chromium takes a second or two and a relay loads its dataset once, so
:class:`Explorer` keeps both for the whole search and makes each example independent instead:
:meth:`Explorer.begin` clears the page's storage (the reference client keeps its restart state in
localStorage), leaves the page so its websocket closes, resets the relay (store back to the dataset,
traffic to its seed, every subscription CLOSED: ``POST /control/reset``) and loads the app afresh with
a new :class:`~relaysim.scenario.runner.ScenarioRunner` (a new sampler, a new timeline). A session
that ``relaysim run`` replays from a fresh relay and a fresh browser therefore sees what the example
saw.

After every step the cheap assertions -- every run assertion that needs no idle point -- are judged on
the evidence gathered so far (:meth:`Explorer.failures`): exact counters, no waiting. The idle
protocol takes tens of seconds, so an example is only *screened* for it at its end
(:meth:`Explorer.idle_suspects`: close everything, check the relay holds nothing, read ``totalAlloc``
twice ``idle_sniff`` seconds apart); the real protocol (:meth:`Explorer.idle_failures`) runs on a
suspect, and once an assertion has been confirmed that way the screen is trusted for it (shrinking
replays many examples). The written scenario's replay runs the protocol once more.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from relaysim import analysis as an
from relaysim.analysis import AssertionResult, Thresholds, Verdict
from relaysim.browser.idle import close_everything, open_subscriptions
from relaysim.browser.probes import read_app
from relaysim.explore._judged import cheap_assertions, idle_assertions
from relaysim.scenario._step import PageView, Step
from relaysim.scenario.model import Scenario
from relaysim.scenario.runner import ScenarioRunner

__all__ = ["VIEW_JS", "ExploreOptions", "Explorer", "cheap_assertions", "idle_assertions"]

# The page view for preconditions, from the reference client's state and its DOM's test ids; an
# adapter may give its own script as `view` (same answer shape), and null means "unknown".
VIEW_JS = r"""
const s = typeof window.__relaysim_app_state === 'function' ? window.__relaysim_app_state() : null;
if (!s || !s.page) return null;
const root = document.querySelector('#page') || document;
const more = document.querySelector('[data-testid=load-more]');
return {page: s.page, history: (s.history || []).length,
        notes: root.querySelectorAll('[data-testid^="open-thread-"]').length,
        authors: root.querySelectorAll('[data-testid^="open-profile-"]').length,
        more: more ? !more.hidden : true};
"""

CLEAR_STORAGE_JS = r"""
try { localStorage.clear(); } catch (e) {}
try { sessionStorage.clear(); } catch (e) {}
if (!window.indexedDB || !indexedDB.databases) return true;
return indexedDB.databases().then((dbs) => Promise.all(dbs.map((d) => new Promise((done) => {
  const q = indexedDB.deleteDatabase(d.name); q.onsuccess = q.onerror = q.onblocked = () => done();
})))).then(() => true, () => true);
"""


@dataclass(frozen=True)
class ExploreOptions:
    """How examples are judged: the idle protocol's settle and window for a suspect (and for the
    written scenario), the idle screen's length, the thresholds (the seed's by default), and how long
    to wait for the old page's connection to leave the relay before a reset."""

    idle_settle: float = 5.0
    idle_window: float = 30.0
    idle_sniff: float = 0.3
    thresholds: Thresholds = field(default_factory=Thresholds)
    dataset: str = "seed1"
    traffic_seed: int = 1
    disconnect_timeout: float = 3.0


class Explorer:
    """The live things explore needs (browser session, relay, app URL, adapter) and what it does with
    them per example; see the module docstring. ``listener`` (optional) is told when an example starts
    and ends (the search's budget and bookkeeping)."""

    def __init__(
        self,
        session: Any,
        relay: Any,
        page_url: str,
        adapter: Any,
        *,
        app: str = "builtin",
        options: ExploreOptions | None = None,
        listener: Any = None,
    ) -> None:
        self.session = session
        self.relay = relay
        self.page_url = page_url
        self.adapter = adapter
        self.app = app
        self.options = options or ExploreOptions()
        self.listener = listener
        self.confirmed: dict[str, AssertionResult] = {}  # idle assertions the protocol has confirmed
        self.idle_checks = 0
        self.idle_false_alarms = 0
        self.scenario = Scenario(
            name="explore",
            steps=(),
            app=app,
            dataset=self.options.dataset,
            seed=self.options.traffic_seed,
            thresholds=self.options.thresholds,
        )
        self.cheap = cheap_assertions()
        self.idle = idle_assertions()

    # -- one example -----------------------------------------------------------------------------

    def begin(self) -> ScenarioRunner:
        """A clean start (module docstring) and a runner on the freshly loaded app."""
        driver = self.session.driver
        with contextlib.suppress(Exception):  # nothing to clear before the first page
            if driver.current_url.startswith(("http://", "https://")):
                driver.execute_script(CLEAR_STORAGE_JS)
                if self.session.has_cdp:
                    origin = "/".join(driver.current_url.split("/")[:3])
                    self.session.cdp("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"})
        driver.get("about:blank")
        self._wait_disconnected()
        self.relay.reset()
        runner = ScenarioRunner(
            self.scenario,
            self.session,
            self.relay,
            self.page_url,
            self.adapter,
            app=self.app,
            traffic=getattr(self.relay, "traffic", None),
        )
        runner.start()
        return runner

    def _wait_disconnected(self) -> None:
        deadline = time.monotonic() + self.options.disconnect_timeout
        while self.relay.stats().get("totals", {}).get("connections_open") and time.monotonic() < deadline:
            time.sleep(0.02)

    def view(self) -> PageView:
        """The page shown now, for preconditions (the adapter's ``view`` script, else :data:`VIEW_JS`)."""
        script = (getattr(self.adapter, "extra", None) or {}).get("view", VIEW_JS)
        got = self.session.driver.execute_script(script)
        if not isinstance(got, dict):
            return PageView.unknown()
        return PageView(
            page=str(got.get("page", "unknown")),
            notes=int(got.get("notes", 1)),
            authors=int(got.get("authors", 1)),
            history=int(got.get("history", 1)),
            more=bool(got.get("more", True)),
        )

    def run(self, runner: ScenarioRunner, step: Step) -> None:
        """Run one plain step (not a repeat) through the runner, as ``relaysim run`` would."""
        runner.run_step(step)

    def judge(self, runner: ScenarioRunner) -> list[AssertionResult]:
        """Every cheap assertion on the evidence so far."""
        return an.evaluate(runner.evidence(), self.options.thresholds, self.cheap)

    def failures(self, runner: ScenarioRunner) -> list[AssertionResult]:
        """The cheap assertions that fail on the evidence so far (UNAVAILABLE ones are not failures)."""
        return [r for r in self.judge(runner) if r.verdict == Verdict.FAIL]

    def idle_suspects(self, runner: ScenarioRunner) -> list[str]:
        """The end-of-example screen for the idle assertions (module docstring): which ones may fail."""
        if not self.idle:
            return []
        close_everything(self.session, self.relay)
        deadline = time.monotonic() + 1.0
        while (held := open_subscriptions(self.relay.stats())) and time.monotonic() < deadline:
            time.sleep(0.02)
        if held and "subscriptions_closed_when_idle" in self.idle:
            return ["subscriptions_closed_when_idle"]
        if "idle_rate" not in self.idle:
            return []
        a = read_app(self.session)
        time.sleep(self.options.idle_sniff)
        b = read_app(self.session)
        if a.total_alloc is None or b.total_alloc is None or b.t <= a.t:
            return []
        probe = runner.result.probe_cost
        cost = probe.bytes_per_probe if probe is not None else 0.0
        rate = (b.total_alloc - a.total_alloc - cost) / (b.t - a.t)
        return ["idle_rate"] if rate >= self.options.thresholds.idle_rate_bps else []

    # -- outside a search (pytest) ---------------------------------------------------------------------

    def run_session(self, steps: Any, *, idle: bool = False, machine: Any = None) -> list[Step]:
        """From a clean start run ``steps`` as the machine would (steps not possible on the page shown
        are skipped), judging the cheap assertions after each; with ``idle`` the idle screen at the
        end. Raises :class:`~relaysim.explore.AssertionFailed` on a failure; returns the steps that ran.
        For ``@given(sessions())`` tests (pytest plugin: ``app.run_session``)."""
        from relaysim.explore.machine import BrowsingMachine

        m = (machine or BrowsingMachine)(self)
        m.report_targets = False
        for step in steps:
            m.take(step)
            m.check_all()
        if idle:
            m.teardown()
        return list(m.steps)

    def run_machine(self, machine: Any = None, settings: Any = None) -> None:
        """Run ``machine`` (a :class:`~relaysim.explore.BrowsingMachine` subclass) as a Hypothesis
        stateful test against this explorer's app (default settings: 10 examples of up to 10 steps)."""
        from hypothesis import HealthCheck
        from hypothesis import settings as Settings
        from hypothesis.stateful import run_state_machine_as_test

        from relaysim.explore.machine import BrowsingMachine

        cls = machine or BrowsingMachine
        chosen = settings or Settings(
            max_examples=10, stateful_step_count=10, deadline=None, suppress_health_check=list(HealthCheck)
        )
        run_state_machine_as_test(lambda: cls(self), settings=chosen)  # type: ignore[no-untyped-call]

    def idle_failures(self, runner: ScenarioRunner, suspects: list[str]) -> list[AssertionResult]:
        """The suspects that fail: trusted once confirmed, else judged after the real idle protocol."""
        if all(s in self.confirmed for s in suspects):
            return [self.confirmed[s] for s in suspects]  # the protocol's own verdict and detail
        self.idle_checks += 1
        o = self.options
        runner.measure_idle(o.idle_settle, o.idle_window, 1)
        results = an.evaluate(runner.evidence(), o.thresholds, self.idle)
        failed = [r for r in results if r.verdict == Verdict.FAIL]
        self.confirmed.update((r.name, r) for r in failed)
        if not failed:
            self.idle_false_alarms += 1
        return failed
