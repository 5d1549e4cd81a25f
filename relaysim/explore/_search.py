"""The search loop: Hypothesis with a seed and a time budget finds a failing session; the step
shrinker makes it small.

:class:`Search` runs :class:`~relaysim.explore.BrowsingMachine` under
:func:`hypothesis.stateful.run_state_machine_as_test` with ``@seed(S)``, no deadline and no example
database (a second run must not start from the first one's failure). It is also the explorer's
listener: it counts examples and enforces the budget -- an example that would start after the
budget raises :class:`BudgetSpent`, a ``BaseException`` Hypothesis does not treat as a failure, so
the search ends at once. The first failing example ends the search the same way (:class:`Found`),
and :func:`relaysim.explore._shrink.shrink` cuts its steps down for up to ``shrink_budget`` seconds:
Hypothesis's own shrinker works on the choices that generated the session and measured far slower
here (module docstring of :mod:`relaysim.explore._shrink`).

With ``targeting`` the search runs in rounds of ``round_examples`` examples (seed S, then
S + 1000003 r): Hypothesis starts its targeting phase -- climbing towards the assertion that came
closest to failing (each example reports measured / threshold per assertion) -- half way through a
run's ``max_examples``, so a run sized to the budget gets there, and a round that ends before the
budget is followed by another. It is off by default: climbing also follows what a sound client
does (more scrolling, more handles, fuller caches) and spent a third of a 5-minute budget there on
the reference client. ``--max-examples`` caps the total either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, seed, settings
from hypothesis.errors import HypothesisException
from hypothesis.stateful import run_state_machine_as_test

from relaysim.explore._explorer import Explorer
from relaysim.explore._file import browsing_actions
from relaysim.explore._progress import Progress
from relaysim.explore._shrink import shrink
from relaysim.explore.machine import BrowsingMachine
from relaysim.scenario._step import Step

__all__ = ["BudgetSpent", "Finding", "Found", "Search", "SearchReport"]


class BudgetSpent(BaseException):
    """The time budget is used up: end the search (not a failure Hypothesis would shrink)."""


class Found(BaseException):
    """The first failing example: end Hypothesis's search here; the step shrinker takes over."""


@dataclass(frozen=True)
class Finding:
    """A failing session: the assertion, its detail, the steps that ran."""

    assertion: str
    detail: str
    steps: tuple[Step, ...]

    @property
    def actions(self) -> int:
        return browsing_actions(self.steps)

    def describe(self) -> str:
        return f"{self.assertion} after {self.actions} browsing action(s)"


@dataclass
class SearchReport:
    """What a search did (``search.json``); times in seconds from the search's start."""

    seed: int
    budget_s: float
    shrink_budget_s: float
    max_examples: int
    steps_per_example: int
    examples: int = 0
    failing_examples: int = 0
    rejected_examples: int = 0
    step_errors: int = 0
    idle_checks: int = 0
    idle_false_alarms: int = 0
    first_failure_s: float | None = None
    first: Finding | None = None
    minimal: Finding | None = None
    seconds: float = 0.0
    stopped: str = ""
    note: str = ""
    rounds: int = 0
    shrink_tries: int = 0
    shrink_kept: int = 0
    shrink_finished: bool = False
    reproduced: bool | None = None
    example_seconds: list[float] = field(default_factory=list)

    @property
    def shrink_s(self) -> float | None:
        return None if self.first_failure_s is None else self.seconds - self.first_failure_s

    @property
    def examples_per_minute(self) -> float:
        return 60.0 * self.examples / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        def finding(f: Finding | None) -> dict[str, Any] | None:
            return None if f is None else {
                "assertion": f.assertion, "detail": f.detail, "actions": f.actions, "steps": len(f.steps)
            }

        return {
            "seed": self.seed,
            "budget_s": self.budget_s,
            "shrink_budget_s": self.shrink_budget_s,
            "max_examples": self.max_examples,
            "steps_per_example": self.steps_per_example,
            "examples": self.examples,
            "examples_per_minute": round(self.examples_per_minute, 1),
            "failing_examples": self.failing_examples,
            "rejected_examples": self.rejected_examples,
            "step_errors": self.step_errors,
            "idle_checks": self.idle_checks,
            "idle_false_alarms": self.idle_false_alarms,
            "found": self.minimal is not None,
            "assertion": self.minimal.assertion if self.minimal else None,
            "time_to_find_s": _round(self.first_failure_s),
            "time_to_shrink_s": _round(self.shrink_s),
            "seconds": _round(self.seconds),
            "first": finding(self.first),
            "minimal": finding(self.minimal),
            "stopped": self.stopped,
            "rounds": self.rounds,
            "shrink_tries": self.shrink_tries,
            "shrink_kept": self.shrink_kept,
            "shrink_finished": self.shrink_finished,
            "first_reproduced": self.reproduced,
            "note": self.note,
            "hypothesis": hypothesis.__version__,
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


class Search:
    """Searches with ``machine`` on ``explorer`` (module docstring); :meth:`run` returns the report."""

    def __init__(
        self,
        explorer: Explorer,
        *,
        seed: int = 0,
        budget: float = 600.0,
        shrink_budget: float | None = None,
        max_examples: int = 100_000,
        steps: int = 30,
        round_examples: int = 60,
        targeting: bool = False,
        machine: type[BrowsingMachine] = BrowsingMachine,
        progress: Progress | None = None,
    ) -> None:
        self.explorer = explorer
        self.seed = seed
        self.budget = budget
        self.shrink_budget = budget if shrink_budget is None else shrink_budget
        self.max_examples = max_examples
        self.steps = steps
        self.round_examples = round_examples if targeting else max_examples
        self.targeting = targeting
        self.machine = machine
        self.progress = progress
        self.report = SearchReport(seed, budget, self.shrink_budget, max_examples, steps)
        self._t0 = 0.0
        self._example_t0 = 0.0
        self._spent = False
        explorer.listener = self

    # -- listener ------------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def example_started(self, machine: BrowsingMachine) -> None:
        r = self.report
        found = r.first_failure_s
        limit = self.budget if found is None else max(self.budget, found) + self.shrink_budget
        if self.elapsed() >= limit:
            self._spent = True
            raise BudgetSpent()
        r.examples += 1
        self._example_t0 = time.monotonic()
        self._status()

    def example_finished(self, machine: BrowsingMachine) -> None:
        r = self.report
        r.example_seconds.append(round(time.monotonic() - self._example_t0, 3))
        r.idle_checks = self.explorer.idle_checks
        r.idle_false_alarms = self.explorer.idle_false_alarms
        if machine.rejected:
            r.rejected_examples += 1
        elif machine.failed is not None:
            r.failing_examples += 1
            r.first_failure_s = self.elapsed()
            r.first = r.minimal = Finding(machine.failed.name, machine.failed.detail, tuple(machine.steps))
            took = f"{r.examples} examples, {self.elapsed():.0f} s"
            self._event(f"found {r.first.describe()} after {took}; shrinking")
            raise Found()
        self._status()

    def step_error(self, machine: BrowsingMachine, step: Step) -> None:
        self.report.step_errors += 1

    def _status(self) -> None:
        if self.progress is None:
            return
        r = self.report
        self.progress.update({
            "phase": "searching" if r.first is None else "shrinking",
            "examples": r.examples,
            "failing": r.failing_examples,
            "best": r.minimal.describe() if r.minimal else None,
            "elapsed": self.elapsed(),
            "budget": self.budget if r.first_failure_s is None else r.first_failure_s + self.shrink_budget,
        })

    def _event(self, text: str) -> None:
        if self.progress is not None:
            self.progress.event(text)

    # -- the run -------------------------------------------------------------------------------------

    def settings(self, max_examples: int | None = None) -> settings:
        return settings(
            max_examples=max_examples or self.max_examples,
            stateful_step_count=self.steps,
            deadline=None,
            database=None,
            phases=(Phase.generate, Phase.target) if self.targeting else (Phase.generate,),
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            verbosity=Verbosity.quiet,
            print_blob=False,
        )

    def run(self) -> SearchReport:
        """Search, shrink, and say what was found (``report.minimal``) and why the search stopped."""
        r = self.report
        self._t0 = time.monotonic()
        explorer, machine = self.explorer, self.machine

        def factory() -> BrowsingMachine:
            return machine(explorer)

        try:
            for n in range(1_000_000):
                left = self.max_examples - r.examples
                if left <= 0:
                    r.stopped = "max_examples"
                    break
                r.rounds = n + 1
                run_seed = self.seed + 1_000_003 * n
                settings_ = self.settings(min(left, self.round_examples))
                run_state_machine_as_test(seed(run_seed)(factory), settings=settings_)  # type: ignore[no-untyped-call]
        except BudgetSpent:
            r.stopped = "budget"
        except Found:
            r.stopped = "found"
        except HypothesisException as exc:
            if self._spent:  # Hypothesis may answer our BudgetSpent with a Flaky error of its own
                r.stopped = "budget"
            else:
                r.stopped = "hypothesis"
                r.note = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if r.first is not None:
            self._shrink(r.first)
        r.seconds = self.elapsed()
        if self.progress is not None:
            self.progress.close()
        return r

    def _shrink(self, first: Finding) -> None:
        r = self.report
        listener, self.explorer.listener = self.explorer.listener, None  # tries are not examples

        def smaller(steps: tuple[Step, ...], detail: str) -> None:
            r.minimal = Finding(first.assertion, detail, steps)
            self._event(f"smaller: {r.minimal.describe()}")
            self._status()

        try:
            got = shrink(
                self.explorer,
                first.steps,
                first.assertion,
                idle=first.assertion in self.explorer.idle,
                deadline=time.monotonic() + self.shrink_budget,
                on_smaller=smaller,
            )
        finally:
            self.explorer.listener = listener
        r.shrink_tries, r.shrink_kept, r.shrink_finished = got.tries, got.kept, got.finished
        r.reproduced = got.reproduced
        r.minimal = Finding(first.assertion, got.detail or first.detail, got.steps)
        r.stopped = "shrunk" if got.finished else "shrink budget"
        if not got.reproduced:
            r.note = "the first failing session did not fail again when replayed from a clean start"
