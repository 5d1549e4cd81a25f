"""Shrinking a failing session as steps, not as Hypothesis's choice sequence.

Why not Hypothesis's own shrinker: it shrinks the sequence of choices that generated the session,
and each candidate costs a full example in a real browser. Measured on the reference client
(``leaks=thread-profile``): a 35-action failing session (299 steps with its repeats) was not made one
step smaller in 317 s -- most mutations of the choices change which pages are visited, so the
failure vanishes, and each try replays ~10 s of browsing.

This shrinker works on the concrete steps that ran, the way a person would cut a scenario down
(delta debugging): drop chunks of top-level steps, halving the chunk size down to one step; make
each repeat a single pass, then fewer passes, then a smaller body; make ``n`` of a step 1; when
nothing more helps, unroll a small repeat into its passes and cut again. A candidate is kept when
running it from a clean start (:meth:`relaysim.explore.Explorer.run_session`) fails the *same*
assertion; the session kept is what actually ran (a step that was not possible on
the page shown is dropped by the run itself). Every try is deterministic, and the sessions get
shorter, so tries get cheaper. ``deadline`` bounds the whole thing; the best session so far is the
answer when it passes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from hypothesis.errors import UnsatisfiedAssumption

from relaysim.explore._explorer import Explorer
from relaysim.explore._file import browsing_actions
from relaysim.explore.machine import AssertionFailed
from relaysim.scenario._step import Step
from relaysim.scenario.adapters import AdapterError
from relaysim.scenario.steps import Repeat, expand

__all__ = ["ShrinkResult", "shrink"]


@dataclass
class ShrinkResult:
    """The smallest failing session found, its detail, how many tries it took, and whether the
    original failing session failed again at all (``reproduced``)."""

    steps: tuple[Step, ...]
    detail: str
    tries: int = 0
    kept: int = 0
    reproduced: bool = True
    finished: bool = False


def _size(steps: Sequence[Step]) -> tuple[int, int, int]:
    """Smaller is better: browsing actions, steps as run (repeats unrolled), top-level steps."""
    return browsing_actions(steps), sum(1 for _ in expand(tuple(steps))), len(steps)


def _candidates(steps: tuple[Step, ...]) -> Iterator[tuple[Step, ...]]:
    """Smaller sessions to try, the biggest cuts first."""
    n = len(steps)
    size = n // 2
    while size >= 1:
        for start in range(n - size, -1, -size):  # from the end: late steps rarely set up the failure
            yield steps[:start] + steps[start + size:]
        size //= 2
    for i, s in enumerate(steps):
        if isinstance(s, Repeat):
            one_pass = tuple(x for x in expand(s.steps, 0) if isinstance(x, Step))
            yield steps[:i] + one_pass + steps[i + 1:]
            for times in sorted({s.times // 2, s.times - 1} - {0, 1, s.times}):
                yield (*steps[:i], dataclasses.replace(s, times=times), *steps[i + 1:])
            for j in range(len(s.steps)):
                body = s.steps[:j] + s.steps[j + 1:]
                if body:
                    yield (*steps[:i], dataclasses.replace(s, steps=body), *steps[i + 1:])
        elif getattr(s, "n", 1) not in (None, 1):
            yield (*steps[:i], dataclasses.replace(s, n=1), *steps[i + 1:])  # type: ignore[call-arg]


def shrink(
    explorer: Explorer,
    steps: Sequence[Step],
    assertion: str,
    *,
    idle: bool,
    deadline: float,
    on_smaller: Callable[[tuple[Step, ...], str], None] | None = None,
) -> ShrinkResult:
    """The smallest session found that still fails ``assertion`` (module docstring); ``idle``: the
    assertion is judged at the idle screen. ``deadline`` is a ``time.monotonic()`` value."""
    best = tuple(steps)
    result = ShrinkResult(best, "")

    def fails(candidate: tuple[Step, ...]) -> tuple[tuple[Step, ...], str] | None:
        result.tries += 1
        try:
            explorer.run_session(candidate, idle=idle)
        except AssertionFailed as exc:
            if exc.result.name == assertion:
                return exc.steps, exc.result.detail
        except (UnsatisfiedAssumption, AdapterError):  # a step the app refused: not this failure
            pass
        return None

    got = fails(best)
    if got is None:
        result.reproduced = False
        return result
    best, result.detail = got
    result.steps = best

    def keep(steps: tuple[Step, ...], detail: str) -> None:
        result.steps, result.detail, result.kept = steps, detail, result.kept + 1
        if on_smaller is not None:
            on_smaller(steps, detail)

    def descend(start: tuple[Step, ...]) -> tuple[Step, ...] | None:
        """Greedy cuts from ``start`` until none helps; None when the deadline passed."""
        current = start
        improved = True
        while improved:
            improved = False
            for candidate in _candidates(current):
                if time.monotonic() >= deadline:
                    return None
                if _size(candidate) >= _size(current):
                    continue
                got = fails(candidate)
                if got is not None and _size(got[0]) < _size(current):
                    current = got[0]
                    if _size(current) < _size(result.steps):
                        keep(current, got[1])
                    improved = True
                    break  # start again from the new, smaller session
        return current

    # Cut; then unroll each small repeat into its passes and cut again: a repeat whose passes only
    # fail together (back in one pass, the thread it returns to in the next) shrinks no other way.
    settled = descend(best)
    tried: set[tuple[Step, ...]] = set()
    while settled is not None:
        unrolled = next((u for u in _unrollings(settled) if u not in tried), None)
        if unrolled is None:
            result.finished = True
            break
        tried.add(unrolled)
        if fails(unrolled) is None:
            continue
        again = descend(unrolled)
        if again is None:
            break
        if _size(again) < _size(settled):
            settled = again
    return result


def _unrollings(steps: tuple[Step, ...], limit: int = 16) -> Iterator[tuple[Step, ...]]:
    """The session with one repeat replaced by all its passes as plain steps (small repeats only)."""
    for i, s in enumerate(steps):
        if isinstance(s, Repeat) and s.times * len(s.steps) <= limit:
            passes = tuple(x for x in s.unroll() if isinstance(x, Step))
            yield (*steps[:i], *passes, *steps[i + 1:])
