"""The scenario model: what a ``scenarios/*.toml`` file says, as frozen values.

A scenario is data (as in memlab and fuite: url, action, back): its steps are declared in
:mod:`relaysim.scenario.steps` (each step type once: arguments, checks, how it runs), and the runner
walks :func:`expand` of them. Parsing, validation and the file:line error messages live in
:mod:`relaysim.scenario.parse`; this module defines the scenario value.

Every step class has ``KIND`` (the ``do = "..."`` name in the file) and ``line`` (the 1-based line
of its ``[[steps]]`` header, for messages; ignored when steps are compared).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from relaysim.analysis import Thresholds
from relaysim.scenario._step import STEP_CLASSES, Step, walk
from relaysim.scenario.steps import Assert, CycleMark, Repeat, expand

__all__ = ["STEP_KINDS", "BrowserOptions", "Scenario", "min_duration"]

STEP_KINDS: tuple[str, ...] = tuple(sorted(STEP_CLASSES))
"""Every ``do = "..."`` value a step may have, sorted (as listed in error messages)."""

@dataclass(frozen=True)
class BrowserOptions:
    """The ``[browser]`` table; ``None`` = use the CLI's choice or the default. CLI flags win."""

    name: str | None = None
    headless: bool | None = None
    window_size: tuple[int, int] | None = None
    args: tuple[str, ...] = ()


def min_duration(steps: tuple[Step, ...]) -> float:
    """A lower bound on running time in seconds: waits, scroll pauses, idle settle + windows."""
    return sum(s.estimated_seconds() for s in expand(steps) if isinstance(s, Step))


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario file.

    ``app`` is "builtin", "builtin?leaks=..." or a URL / directory (the CLI's ``--app`` wins);
    ``dataset`` a dataset name or path; ``thresholds`` the defaults with ``threshold_overrides``
    applied; ``traffic`` the rates live traffic starts with (None = off until a traffic step);
    ``sample_interval`` seconds between samples until a ``sample`` step changes it; ``probe_calls``
    back-to-back calls used to measure the probe cost at the start; ``seed`` the traffic seed;
    ``faults`` the injected network faults the relay starts with (``--faults`` text, ``""`` = none,
    from the ``[faults]`` table) and ``faults_seed`` their seed (None: ``seed``).
    """

    name: str
    steps: tuple[Step, ...]
    description: str = ""
    app: str = "builtin"
    dataset: str = "seed1"
    seed: int = 1
    traffic: str | None = None
    sample_interval: float = 1.0
    probe_calls: int = 10
    thresholds: Thresholds = field(default_factory=Thresholds)
    threshold_overrides: Mapping[str, float] = field(default_factory=dict)
    browser: BrowserOptions = field(default_factory=BrowserOptions)
    path: str | None = None
    faults: str = ""
    faults_seed: int | None = None

    def walk(self) -> Iterator[Step]:
        """Every written step in document order (see :func:`walk`)."""
        return walk(self.steps)

    def expanded(self) -> Iterator[Step | CycleMark]:
        """The steps in the order they run, repeats unrolled (see :func:`expand`)."""
        return expand(self.steps)

    @property
    def min_duration_s(self) -> float:
        """Lower bound on running time (waits, scroll pauses, idle protocol), in seconds."""
        return min_duration(self.steps)

    @property
    def measured_repeat(self) -> Repeat | None:
        """The repeat marked ``measure_cycles`` (at most one per scenario), if any."""
        return next((s for s in self.walk() if isinstance(s, Repeat) and s.measure_cycles), None)

    @property
    def assertions(self) -> tuple[str, ...]:
        """Every assertion some ``assert`` step names, in first-mention order."""
        seen: dict[str, None] = {}
        for step in self.walk():
            if isinstance(step, Assert):
                seen.update(dict.fromkeys(step.names))
        return tuple(seen)


