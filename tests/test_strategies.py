"""relaysim.strategies: steps and sessions drawn from the step declarations (no browser)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from relaysim.scenario import STEP_CLASSES, Back, OpenProfile, OpenThread, Repeat, Scroll, Step, Wait, arg
from relaysim.scenario import _step as step_module
from relaysim.scenario._args import Choice, IntRange, Text
from relaysim.scenario._step import PageView
from relaysim.strategies import (
    CannotGenerate,
    browsing_classes,
    browsing_steps,
    composite_classes,
    sessions,
    step_strategy,
)

FAST = settings(max_examples=200, derandomize=True, suppress_health_check=list(HealthCheck), deadline=None)


def given_keys(step: Step) -> frozenset[str]:
    """The arguments that differ from their defaults (what a file would have to write)."""
    return frozenset(
        f.name for f in dataclasses.fields(step)
        if f.name != "line" and getattr(step, f.name) != f.default
    )


@FAST
@given(browsing_steps())
def test_browsing_steps_are_browsing_and_pass_their_own_checks(step: Step) -> None:
    assert type(step).BROWSING
    step.validate(given_keys(step), nested=False)  # what the parser would run
    if isinstance(step, OpenThread | OpenProfile):
        assert step.k_step == 0  # k_step needs an enclosing repeat
        assert 0 <= step.k <= 49  # the explore range, not the type's unbounded one
    if isinstance(step, Scroll):
        assert 1 <= step.n <= 3 and step.pause == 0.0  # a one-value explore range pins it


@FAST
@given(step_strategy(Repeat))
def test_repeats_hold_browsing_bodies_and_may_step_k(rep: Repeat) -> None:
    assert 2 <= rep.times <= 50 and not rep.measure_cycles
    assert 1 <= len(rep.steps) <= 3
    for body in rep.steps:
        assert type(body).BROWSING
        body.validate(given_keys(body), nested=True)


def test_k_step_is_drawn_inside_repeats_only() -> None:
    nested = find(step_strategy(OpenThread, nested=True), lambda s: s.k_step > 0)
    assert nested.k_step >= 1
    with pytest.raises(NoSuchExample):
        find(step_strategy(OpenThread), lambda s: s.k_step > 0, settings=settings(max_examples=300))


def test_open_profile_never_gets_k_and_from_thread_together() -> None:
    both = find(
        step_strategy(OpenProfile),
        lambda s: s.from_thread,
        settings=settings(max_examples=300, derandomize=True),
    )
    assert both.from_thread and both.k == 0  # the file would refuse k beside from_thread


def test_every_browsing_class_and_repeat_are_generated() -> None:
    kinds = {cls.KIND for cls in browsing_classes()}
    assert kinds == {k for k, cls in STEP_CLASSES.items() if cls.BROWSING}
    assert {"open", "feed", "scroll", "open_thread", "open_profile", "back"} <= kinds
    assert "wait" not in kinds
    assert composite_classes() == (Repeat,)
    for kind in kinds:
        find(sessions(max_steps=5), lambda s, kind=kind: any(kind == x.KIND for x in s),
             settings=settings(max_examples=2000, derandomize=True))


def test_a_newly_registered_browsing_step_is_generated(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Reload(Step):
        """Reload the page."""

        KIND: ClassVar[str] = "reload_test"
        BROWSING: ClassVar[bool] = True
        hard: bool = arg(Choice(("yes", "no")), "no", "bypass the cache")

    monkeypatch.setitem(step_module._STEPS, Reload.KIND, Reload)
    got = find(browsing_steps(), lambda s: isinstance(s, Reload) and s.hard == "yes")
    assert got == Reload(hard="yes")
    find(sessions(max_steps=3), lambda s: any(isinstance(x, Reload) for x in s))
    # and inside repeat bodies
    find(step_strategy(Repeat), lambda r: any(isinstance(x, Reload) for x in r.steps))


def test_sessions_with_harness_steps() -> None:
    got = find(sessions(max_steps=4, harness=("wait",)), lambda s: any(isinstance(x, Wait) for x in s))
    wait = next(x for x in got if isinstance(x, Wait))
    assert 0.5 <= wait.seconds <= 3.0
    with pytest.raises(CannotGenerate, match="unknown step type 'nap'"):
        sessions(harness=("nap",))


@FAST
@given(sessions(max_steps=6, min_steps=2))
def test_sessions_respect_their_bounds(session: list[Step]) -> None:
    assert 2 <= len(session) <= 6
    assert all(type(s).BROWSING or isinstance(s, Repeat) for s in session)


def test_an_argument_type_without_a_strategy_is_a_clear_error() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Named(Step):
        """Open a page by name."""

        KIND: ClassVar[str] = "named_test"
        name: str = arg(Text(), doc="a name")

    with pytest.raises(CannotGenerate, match=r"named_test.name: cannot generate values of type Text"):
        step_strategy(Named)

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Far(Step):
        """Go far."""

        KIND: ClassVar[str] = "far_test"
        n: int = arg(IntRange(0), 0, "how far")

    with pytest.raises(CannotGenerate, match=r"far_test.n: integer >= 0 has no upper bound; declare"):
        step_strategy(Far)

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Skewed(Step):
        """An explore range outside the type."""

        KIND: ClassVar[str] = "skewed_test"
        n: int = arg(IntRange(1, 5), 1, "n", explore=IntRange(0, 3))

    with pytest.raises(CannotGenerate, match="explore bound 0 is outside the type"):
        step_strategy(Skewed)


def test_preconditions_read_the_page_view() -> None:
    feed = PageView(page="feed", notes=50, authors=50, history=0, more=True)
    empty_profile = PageView(page="profile", notes=0, authors=0, history=2, more=True)
    thread = PageView(page="thread", notes=3, authors=3, history=1, more=False)
    assert OpenThread(k=3).possible(feed) and not OpenThread().possible(empty_profile)
    assert not Back().possible(feed) and Back(n=2).possible(empty_profile) and not Back(n=2).possible(thread)
    assert OpenProfile(from_thread=True).possible(thread) and not OpenProfile(from_thread=True).possible(feed)
    assert not OpenProfile(k=1).possible(empty_profile)
    assert Scroll().possible(feed) and not Scroll().possible(thread)
    # an app that tells nothing: everything goes
    assert OpenThread().possible(PageView.unknown()) and Back(n=1).possible(PageView.unknown())


def test_generated_values_are_typed_as_declared() -> None:
    @given(st.data())
    @settings(max_examples=50, derandomize=True)
    def check(data: st.DataObject) -> None:
        step = data.draw(browsing_steps(nested=True))
        for f in dataclasses.fields(step):
            if f.name == "line":
                continue
            spec = next(a for a in step_module.arguments(type(step)) if a.name == f.name)
            value = getattr(step, f.name)
            if value is not None and spec.generate:
                assert spec.type.check(value) == value

    check()
