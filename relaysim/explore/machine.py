"""The browsing state machine: Hypothesis drives the app, the assertion registry judges it.

:class:`BrowsingMachine` is a :class:`hypothesis.stateful.RuleBasedStateMachine` built from the
declarations, not from a list: one rule per registered browsing step type (``BROWSING = True``) plus
one per step type that holds a body (``repeat``), each drawing its step from
:func:`relaysim.strategies.step_strategy`; one invariant per run assertion that needs no idle point,
judged after every step on the evidence the runner gathered. A subclass made after a new step type
or assertion was registered gets its rule or invariant too (rules are built in ``__init_subclass__``).

Each example starts clean (:meth:`relaysim.explore.Explorer.begin`). A rule runs its step only when
the step's precondition holds on the page shown now (:meth:`relaysim.scenario.Step.possible`: no
thread to open when no note is shown, no ``back`` without history); a step that is not possible is
skipped and leaves no trace, so ``steps`` is exactly what ran and what a written scenario replays.
The precondition is checked inside the rule, not with Hypothesis's ``@precondition``: that would make
the choice of rule depend on a live page, and any difference between two runs of the same prefix
(an app is a real program with timers and a network) ends the whole search with
``FlakyStrategyDefinition`` -- which a first version of this machine did. Skipped draws cost
nothing; shrinking removes them.
A repeat runs pass by pass and stops before a body step that is not possible; it is recorded as the
passes that ran (and the steps of a pass cut short, as plain steps). At the end of an example that
passed, the idle screen runs (and the idle protocol on a suspect). Each example also reports, per
assertion, how close it came to failing (measured / threshold) as a Hypothesis ``target``, so the
targeting phase climbs towards a failure (a longer hop over profiles, a larger handle table).

A failure raises :class:`AssertionFailed` -- a subclass per assertion, so Hypothesis (in pytest, where
it shrinks) keeps each assertion's failure apart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from hypothesis import currently_in_test_context, reject, target
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from relaysim.analysis import AssertionResult, Verdict
from relaysim.explore._judged import cheap_assertions
from relaysim.scenario._step import Step
from relaysim.scenario.adapters import AdapterError
from relaysim.scenario.steps import Repeat, expand
from relaysim.strategies import browsing_classes, composite_classes, step_strategy

if TYPE_CHECKING:
    from relaysim.explore._explorer import Explorer

__all__ = ["AssertionFailed", "BrowsingMachine", "ExploreAborted", "failure_type"]


class ExploreAborted(BaseException):
    """The browser or the relay broke (not the app under test): end the search, do not shrink it."""


@contextlib.contextmanager
def _guard() -> Iterator[None]:
    from selenium.common.exceptions import WebDriverException

    from relaysim.errors import RelaysimError

    try:
        yield
    except AdapterError:
        raise
    except (WebDriverException, RelaysimError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExploreAborted(f"{type(exc).__name__}: {first}") from exc


class AssertionFailed(AssertionError):
    """An assertion failed during an example; ``result`` is its verdict and detail, ``steps`` what ran."""

    def __init__(self, result: AssertionResult, steps: tuple[Step, ...]) -> None:
        super().__init__(f"{result.name}: {result.detail}")
        self.result = result
        self.steps = steps


_TYPES: dict[str, type[AssertionFailed]] = {}


def failure_type(name: str) -> type[AssertionFailed]:
    """The :class:`AssertionFailed` subclass for assertion ``name`` (one per assertion)."""
    if name not in _TYPES:
        _TYPES[name] = type(f"AssertionFailed_{name}", (AssertionFailed,), {"__module__": __name__})
    return _TYPES[name]


def _rule_for(cls: type[Step]) -> Callable[..., None]:
    def take(self: BrowsingMachine, step: Step) -> None:
        self.take(step)

    take.__name__ = take.__qualname__ = cls.KIND
    return rule(step=step_strategy(cls))(take)


def _invariant_for(name: str) -> Callable[..., None]:
    def holds(self: BrowsingMachine) -> None:
        self.check(name)

    holds.__name__ = holds.__qualname__ = f"holds_{name}"
    return invariant()(holds)


class BrowsingMachine(RuleBasedStateMachine):
    """Browsing sessions against a live app (module docstring).

    Give it an :class:`Explorer` (``BrowsingMachine(explorer)``; the pytest plugin's ``explorer``
    fixture has ``run_machine(cls)`` for that). ``steps`` holds the steps that ran, as a scenario
    file would write them.
    """

    explorer_default: ClassVar[Explorer | None] = None

    def __init__(self, explorer: Explorer | None = None) -> None:
        super().__init__()
        found = explorer or type(self).explorer_default
        if found is None:
            raise TypeError(
                f"{type(self).__name__} needs an Explorer: BrowsingMachine(explorer), or in pytest "
                "explorer.run_machine(cls) with the `explorer` fixture"
            )
        self.explorer: Explorer = found
        self.steps: list[Step] = []
        self.failed: AssertionResult | None = None
        self.rejected = False
        if self.explorer.listener is not None:
            self.explorer.listener.example_started(self)
        with _guard():
            self.runner = self.explorer.begin()
            self.view = self.explorer.view()
        self._judged_at = -1
        self._failures: dict[str, AssertionResult] = {}
        self.closest: dict[str, float] = {}  # per assertion: the largest measured / threshold seen
        self.report_targets = True  # off outside a state-machine run (one target() per label per test)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _install(cls)

    # -- running steps -----------------------------------------------------------------------------

    def take(self, step: Step) -> None:
        """Run ``step`` if its precondition holds (a repeat pass by pass); record what ran."""
        if isinstance(step, Repeat):
            self._take_repeat(step)
        elif step.possible(self.view):
            self._run(step)
            self.steps.append(step)

    def _take_repeat(self, rep: Repeat) -> None:
        passes = 0
        partial: list[Step] = []
        for i in range(rep.times):
            partial = []
            for s in expand(rep.steps, i):
                if not isinstance(s, Step) or not s.possible(self.view):
                    break
                self._run(s)
                partial.append(s)
            else:
                passes += 1
                continue
            break
        else:
            partial = []
        if passes == 1:
            self.steps.extend(s for s in expand(rep.steps, 0) if isinstance(s, Step))
        elif passes > 1:
            self.steps.append(Repeat(times=passes, steps=rep.steps))
        self.steps.extend(partial)

    def _run(self, step: Step) -> None:
        try:
            with _guard():
                self.explorer.run(self.runner, step)
        except AdapterError:
            # The app refused an action its page seemed to offer: not a finding, not replayable.
            self.rejected = True
            if self.explorer.listener is not None:
                self.explorer.listener.step_error(self, step)
            if not currently_in_test_context():
                raise  # run_session outside Hypothesis: the caller sees the app's refusal
            reject()
        with _guard():
            self.view = self.explorer.view()

    # -- judging -------------------------------------------------------------------------------------

    def check(self, name: str) -> None:
        """Raise if assertion ``name`` fails on the evidence so far (judged once per step for all)."""
        done = len(self.runner.result.steps)
        if done != self._judged_at:
            self._judged_at = done
            with _guard():
                results = self.explorer.judge(self.runner)
            self._failures = {r.name: r for r in results if r.verdict == Verdict.FAIL}
            for r in results:
                if r.measured is not None:
                    score = r.measured / r.threshold if r.threshold > 0 else float(r.measured)
                    self.closest[r.name] = max(score, self.closest.get(r.name, score))
        if name in self._failures:
            self._fail(self._failures[name])

    def check_all(self) -> None:
        """Raise for the first cheap assertion that fails on the evidence so far."""
        with _guard():
            failed = self.explorer.failures(self.runner)
        if failed:
            self._fail(failed[0])

    def _fail(self, result: AssertionResult) -> None:
        self.failed = result
        raise failure_type(result.name)(result, tuple(self.steps))

    def teardown(self) -> None:
        """The idle screen at the end of an example that passed; tell the listener how it went."""
        try:
            if self.report_targets:
                for name, score in self.closest.items():
                    target(score, label=name)
            if self.failed is None and not self.rejected:
                with _guard():
                    suspects = self.explorer.idle_suspects(self.runner)
                    failed = self.explorer.idle_failures(self.runner, suspects) if suspects else []
                if failed:
                    self._fail(failed[0])
        finally:
            if self.explorer.listener is not None:
                self.explorer.listener.example_finished(self)


def _install(cls: type[BrowsingMachine]) -> None:
    """Give ``cls`` a rule per browsing/composite step type and an invariant per cheap assertion
    that it does not define itself."""
    for step_cls in (*browsing_classes(), *composite_classes()):
        if step_cls.KIND not in cls.__dict__:
            setattr(cls, step_cls.KIND, _rule_for(step_cls))
    for name in cheap_assertions():
        attr = f"holds_{name}"
        if attr not in cls.__dict__:
            setattr(cls, attr, _invariant_for(name))


_install(BrowsingMachine)
