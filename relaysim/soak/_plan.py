"""What a soak does next: seeded random browsing drawn from the step declarations, and idle periods.

Theory of operation. A soak alternates *browsing bursts* and *idle periods*. A burst lasts a drawn
number of seconds (uniform in 0.5..1.5 x ``browse_s``) and is a sequence of browsing steps, each
followed by a short think pause; an idle period is the seed's idle protocol (close every
subscription, settle, measure). The browsing steps are the registered step types with
``BROWSING = True`` (:data:`relaysim.scenario.STEP_CLASSES`), each built from its own declaration:
every argument with ``generate=True`` is drawn from its ``explore`` bounds (or its type's), the
others keep their defaults, and the step's own ``validate`` refuses combinations the parser would
refuse. Adding a browsing step type adds it to soaks with no change here.

Pure and deterministic: everything comes from one :class:`random.Random`. A resumed soak seeds a
new generator with ``f"{seed}:{resumes}"`` (:func:`plan_rng`), so a resumed run browses differently
from the first process yet is itself reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from relaysim.scenario import STEP_CLASSES, ArgSpec, BadStep, Feed, Step, arguments
from relaysim.scenario._args import ArgType, Flag, FloatRange, IntRange, options_of

__all__ = ["Activity", "BrowsePlan", "browsing_step_types", "draw_step", "plan_rng"]

MAX_DRAWS = 50
"""Attempts to draw a step that its own ``validate`` accepts before giving up on that type."""


def plan_rng(seed: int, resumes: int = 0) -> random.Random:
    """The generator of one soak process: ``seed`` for the first, ``"seed:k"`` after the k-th resume."""
    return random.Random(seed if resumes == 0 else f"{seed}:{resumes}")


def _generable(spec: ArgSpec) -> bool:
    return spec.generate and _bounds(spec) is not None


def _bounds(spec: ArgSpec) -> ArgType | None:
    t = spec.explore or spec.type
    if isinstance(t, IntRange | FloatRange | Flag) or options_of(t):
        return t
    return None


def browsing_step_types() -> tuple[type[Step], ...]:
    """Registered browsing step types whose required arguments can all be drawn."""
    out = []
    for cls in STEP_CLASSES.values():
        if not cls.BROWSING:
            continue
        if all(_generable(a) for a in arguments(cls) if a.required):
            out.append(cls)
    return tuple(out)


def _draw_value(t: ArgType, rng: random.Random) -> object:
    if isinstance(t, Flag):
        return rng.random() < 0.5
    if isinstance(t, IntRange):
        return rng.randint(t.lo, t.hi if t.hi is not None else t.lo + 9)
    if isinstance(t, FloatRange):
        return round(rng.uniform(t.lo, t.hi if t.hi is not None else t.lo + 3.0), 3)
    return rng.choice(tuple(options_of(t)))


def draw_step(cls: type[Step], rng: random.Random) -> Step | None:
    """One step of type ``cls`` with drawn arguments its ``validate`` accepts (None: none found)."""
    for _ in range(MAX_DRAWS):
        values: dict[str, object] = {}
        for spec in arguments(cls):
            bounds = _bounds(spec)
            if not spec.generate or bounds is None:
                continue
            if not spec.required and rng.random() < 0.5:
                continue  # leave an optional argument at its default half of the time
            values[spec.name] = _draw_value(bounds, rng)
        step = cls(**values)  # type: ignore[arg-type]
        try:
            step.validate(frozenset(values), False)
        except BadStep:
            continue
        return step
    return None


@dataclass(frozen=True)
class Activity:
    """One thing the soak does: a browsing ``step`` followed by ``pause_s`` of think time, or an idle
    period (``step`` None)."""

    step: Step | None
    pause_s: float = 0.0

    @property
    def idle(self) -> bool:
        return self.step is None


class BrowsePlan:
    """An endless, seeded stream of :class:`Activity`: bursts of browsing, then an idle period.

    ``browse_s`` is the mean burst length; ``pause_s`` the (lo, hi) think time after each step. A
    burst opens with the feed (the page a person comes back to), so the subscriptions closed for
    the idle period before it are opened again. Types in ``unsupported`` (actions the app's adapter
    lacks) are not drawn again.
    """

    def __init__(
        self,
        rng: random.Random,
        *,
        browse_s: float = 90.0,
        pause_s: tuple[float, float] = (1.0, 4.0),
        types: Sequence[type[Step]] | None = None,
    ) -> None:
        self.rng = rng
        self.browse_s = browse_s
        self.pause_s = pause_s
        self.types = list(types if types is not None else browsing_step_types())
        self.unsupported: set[type[Step]] = set()
        self._burst_left = 0.0
        self._fresh = True

    def drop(self, cls: type[Step]) -> None:
        """Never draw ``cls`` again (its action is missing from the adapter)."""
        self.unsupported.add(cls)

    def new_burst(self) -> float:
        """Start a browsing burst; returns its drawn length in seconds."""
        self._burst_left = self.rng.uniform(0.5, 1.5) * self.browse_s
        self._fresh = True
        return self._burst_left

    def burst_over(self, elapsed_s: float) -> bool:
        """Account ``elapsed_s`` of browsing; True once the burst's time is used up."""
        self._burst_left -= elapsed_s
        return self._burst_left <= 0

    def next_step(self) -> Activity:
        """The next browsing step of the current burst, with its think pause."""
        pause = round(self.rng.uniform(*self.pause_s), 3)
        if self._fresh and Feed not in self.unsupported:
            self._fresh = False
            return Activity(Feed(), pause)
        self._fresh = False
        candidates = [c for c in self.types if c not in self.unsupported]
        for _ in range(MAX_DRAWS):
            if not candidates:
                break
            cls = self.rng.choice(candidates)
            step = draw_step(cls, self.rng)
            if step is not None:
                return Activity(step, pause)
            candidates.remove(cls)
        return Activity(None, pause)  # nothing can be drawn: idle instead
