"""Hypothesis strategies for scenario steps and whole browsing sessions, derived from the declarations.

Nothing here lists step types. :func:`step_strategy` reads a step class's declared arguments
(:func:`relaysim.scenario.arguments`): each argument is drawn from its ``explore`` type when it has
one (the narrower range worth exploring, e.g. ``k`` from 0 to 49), else from its own type; arguments
declared ``generate=False`` keep their default; an optional argument is sometimes left out, as a
person writing the file would, unless its ``explore`` range holds one value (that pins it: a
generated ``scroll`` never pauses). The drawn arguments go through the class's own ``validate`` (the same
check a scenario file meets), so a generated step is always one the parser would accept: when
``validate`` points at an optional argument (``BadStep.key``) that argument falls back to its
default; any other refusal discards the draw.

:func:`browsing_steps` is ``one_of`` over every registered step class with ``BROWSING = True``, read
from :data:`relaysim.scenario.STEP_CLASSES` when called -- a new step type appears in generated
sessions without a second list. :func:`sessions` draws whole sessions (lists of steps), with repeats
of browsing steps and, if asked, the harness's own steps such as ``wait``.

Sessions drawn here are data; running them needs a browser and a relay: see
:class:`relaysim.explore.BrowsingMachine` (preconditions, invariants, a clean state per example) and
the pytest plugin's ``explorer`` fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import strategies as st

from relaysim.scenario._args import (
    ArgType,
    Choice,
    Flag,
    FloatRange,
    IntRange,
    StepList,
    TrafficKind,
    options_of,
)
from relaysim.scenario._step import STEP_CLASSES, ArgSpec, BadStep, Step, arguments

__all__ = [
    "BODY_MAX",
    "CannotGenerate",
    "arg_strategy",
    "browsing_classes",
    "browsing_steps",
    "composite_classes",
    "harness_steps",
    "sessions",
    "step_strategy",
]

BODY_MAX = 3
"""Most steps in a generated repeat's body."""

_OMIT = object()


class CannotGenerate(TypeError):
    """A step argument's type has no strategy; the message says how to declare it."""


def browsing_classes() -> tuple[type[Step], ...]:
    """Every registered step class that acts in the app (``BROWSING = True``), in registration order."""
    return tuple(cls for cls in STEP_CLASSES.values() if cls.BROWSING)


def composite_classes() -> tuple[type[Step], ...]:
    """Registered step classes that hold a body of steps (a :class:`StepList` argument), e.g. ``repeat``:
    explore generates them with bodies of browsing steps."""
    return tuple(
        cls for cls in STEP_CLASSES.values()
        if not cls.BROWSING and any(isinstance(a.type, StepList) and a.generate for a in arguments(cls))
    )


def arg_strategy(arg_type: ArgType, where: str = "argument") -> st.SearchStrategy[Any]:
    """Values of ``arg_type`` (bounded types only); :class:`CannotGenerate` names ``where`` otherwise."""
    if isinstance(arg_type, IntRange):
        if arg_type.hi is None:
            raise CannotGenerate(
                f"{where}: {arg_type.describe()} has no upper bound; declare "
                "arg(..., explore=IntRange(lo, hi)) or generate=False"
            )
        return st.integers(arg_type.lo, arg_type.hi)
    if isinstance(arg_type, FloatRange):
        if arg_type.hi is None:
            raise CannotGenerate(
                f"{where}: {arg_type.describe()} has no upper bound; declare "
                "arg(..., explore=FloatRange(lo, hi=...)) or generate=False"
            )
        return st.floats(
            arg_type.lo, arg_type.hi, exclude_min=arg_type.strict, allow_nan=False, allow_infinity=False
        ).map(lambda x: round(x, 3)).filter(lambda x: x > arg_type.lo if arg_type.strict else True)
    if isinstance(arg_type, Flag):
        return st.booleans()
    if isinstance(arg_type, Choice | TrafficKind):
        return st.sampled_from(tuple(options_of(arg_type)))
    if isinstance(arg_type, StepList):
        return st.lists(st.deferred(lambda: browsing_steps(nested=True)), min_size=1, max_size=BODY_MAX).map(
            tuple
        )
    raise CannotGenerate(
        f"{where}: cannot generate values of type {type(arg_type).__name__} ({arg_type.describe()}); "
        "declare arg(..., generate=False) or give it an explore= type relaysim.strategies knows"
    )


def _checked_bounds(spec: ArgSpec, where: str) -> None:
    """An ``explore`` range must lie inside the argument's own type (else a written file would not parse)."""
    ex = spec.explore
    if isinstance(ex, IntRange | FloatRange):
        for bound in (ex.lo, ex.hi):
            if bound is None:
                continue
            try:
                spec.type.check(bound)
            except Exception as exc:  # BadValue: the declaration is inconsistent
                raise CannotGenerate(f"{where}: explore bound {bound!r} is outside the type: {exc}") from None


def _pinned(explore: ArgType | None) -> bool:
    """An explore range of one value: the argument is always given, with that value."""
    return isinstance(explore, IntRange | FloatRange) and explore.hi is not None and explore.lo == explore.hi


def step_strategy(cls: type[Step], *, nested: bool = False) -> st.SearchStrategy[Step]:
    """Steps of ``cls`` with arguments drawn from its declaration (module docstring).

    ``nested``: the step sits in a repeat's body (arguments such as ``k_step`` are allowed only there).
    Raises :class:`CannotGenerate` when an argument that must be drawn has a type with no strategy.
    """
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for spec in arguments(cls):
        where = f"{cls.KIND}.{spec.name}"
        if not spec.generate:
            if spec.required:
                raise CannotGenerate(f"{where} is required but declared generate=False")
            continue
        _checked_bounds(spec, where)
        strategy = arg_strategy(spec.explore or spec.type, where)
        (required if spec.required or _pinned(spec.explore) else optional)[spec.name] = strategy
    optional_names = frozenset(optional)

    def build(values: dict[str, Any]) -> Step | None:
        values = dict(values)
        for _ in range(len(values) + 1):
            try:
                step = cls(**values)
                step.validate(frozenset(values), nested)
                return step
            except BadStep as exc:
                if exc.key in optional_names and exc.key in values:
                    del values[exc.key]  # leave it at its default, as the file would
                    continue
                return None
        return None  # pragma: no cover - each pass removes one key

    drawn = st.fixed_dictionaries(required, optional=optional).map(build)
    return drawn.filter(lambda s: s is not None)  # type: ignore[return-value]


def _one_of(classes: Iterable[type[Step]], make: Callable[[type[Step]], st.SearchStrategy[Step]]) -> Any:
    strategies = [make(cls) for cls in classes]
    if not strategies:
        raise CannotGenerate("no step classes to generate from")
    return st.one_of(strategies)


def browsing_steps(*, nested: bool = False) -> st.SearchStrategy[Step]:
    """Any registered browsing step (one_of over :func:`browsing_classes`, read now)."""
    return _one_of(browsing_classes(), lambda cls: step_strategy(cls, nested=nested))  # type: ignore[no-any-return]


def harness_steps(kinds: Iterable[str] = ("wait",)) -> st.SearchStrategy[Step]:
    """The harness's own steps of these kinds (default: ``wait``), e.g. to let time pass in a session."""
    classes = []
    for kind in kinds:
        if kind not in STEP_CLASSES:
            raise CannotGenerate(f"unknown step type {kind!r} (expected one of: {', '.join(STEP_CLASSES)})")
        classes.append(STEP_CLASSES[kind])
    return _one_of(classes, step_strategy)  # type: ignore[no-any-return]


def sessions(
    max_steps: int = 20,
    *,
    min_steps: int = 1,
    repeats: bool = True,
    harness: Iterable[str] = (),
) -> st.SearchStrategy[list[Step]]:
    """Browsing sessions: lists of ``min_steps`` to ``max_steps`` steps drawn from every browsing step
    type, plus repeats of browsing steps (``repeats``) and the harness steps named in ``harness``
    (e.g. ``("wait",)``). Steps are top-level steps of a scenario; a repeat counts as one."""
    if not 0 <= min_steps <= max_steps:
        raise ValueError(f"sessions(): need 0 <= min_steps <= max_steps, got {min_steps}, {max_steps}")
    parts: list[st.SearchStrategy[Step]] = [browsing_steps()]
    if repeats:
        parts.extend(step_strategy(cls) for cls in composite_classes())
    harness = tuple(harness)
    if harness:
        parts.append(harness_steps(harness))
    return st.lists(st.one_of(parts), min_size=min_steps, max_size=max_steps)
