"""What a scenario step is: one declaration per step type, from which everything else derives.

A step type is a frozen dataclass registered with :func:`step_type`. Its fields are its arguments,
each made with :func:`arg` (type, default, what it means, how explore may generate it); its class
variables say what it is (``KIND``: the ``do = "..."`` name; ``BROWSING``: an action in the app, as
opposed to the harness's own waiting, sampling and judging; ``PROVIDES``: capabilities an assertion
may require, e.g. ``"idle"``); :meth:`Step.validate` holds the checks that span arguments,
:meth:`Step.run` how it runs, against the small :class:`StepContext` protocol the runner implements, and
:meth:`Step.possible` when explore may take it (its precondition on the :class:`PageView` shown).

From that one declaration the parser reads and checks files (:mod:`relaysim.scenario.parse`), the
runner runs (:mod:`relaysim.scenario.runner`), the docs table is written
(:func:`relaysim.scenario.doc_tables.steps_table`) and :mod:`relaysim.strategies` generates steps.
Adding a step type is one class in :mod:`relaysim.scenario.steps` plus its test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, TypeVar

from relaysim.scenario._args import ArgType
from relaysim.scenario.adapters import Action

__all__ = [
    "STEP_CLASSES",
    "ArgSpec",
    "BadStep",
    "PageView",
    "Step",
    "StepContext",
    "arg",
    "arguments",
    "step_type",
]


class BadStep(Exception):
    """A step's arguments do not fit together; ``key`` is the argument to point at (None: the step)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class ArgSpec:
    """One argument as declared: its type, whether the file must give it, its meaning, and for explore
    the narrower type to generate from (``explore``) or ``generate=False`` to leave it at its default."""

    name: str
    type: ArgType
    required: bool
    default: Any
    doc: str
    explore: ArgType | None
    generate: bool


_NO_DEFAULT: Any = dataclasses.MISSING


def arg(
    type_: ArgType,
    default: Any = _NO_DEFAULT,
    doc: str = "",
    *,
    explore: ArgType | None = None,
    generate: bool = True,
) -> Any:
    """A step argument (a dataclass field carrying its declaration); no ``default`` = required."""
    meta = {"arg": (type_, doc, explore, generate)}
    if default is _NO_DEFAULT:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def arguments(cls: type[Step]) -> tuple[ArgSpec, ...]:
    """The declared arguments of a step class, in declaration order."""
    out = []
    for f in dataclasses.fields(cls):
        if "arg" not in f.metadata:
            continue
        type_, doc, explore, generate = f.metadata["arg"]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out.append(ArgSpec(f.name, type_, required, None if required else f.default, doc, explore, generate))
    return tuple(out)


class StepContext(Protocol):
    """What a step may ask of the runner (implemented by :class:`relaysim.scenario.runner.ScenarioRunner`).

    Navigation goes through :meth:`act` then :meth:`arrived` (so a thread left is observed); a plain
    page's ``click``/``type``/``js`` through :meth:`perform` (an action built by the step, not the
    adapter's) and a URL or hash through :meth:`navigate`; sampling
    through :meth:`sample` and :meth:`run_for`; the harness's own work through the rest.
    """

    def act(self, action: str, arg: Any = None) -> None: ...
    def perform(self, action: Action, arg: Any = None) -> Any: ...
    def navigate(self, to: str) -> str: ...
    def supports(self, action: str) -> bool: ...
    def arrived(self, page: str) -> None: ...
    def open_thread(self, k: int | str) -> None: ...
    def current_page(self) -> str: ...
    def sample(self, phase: str) -> None: ...
    def run_for(self, seconds: float, phase: str) -> None: ...
    def set_interval(self, seconds: float) -> None: ...
    def traffic(self, mode: str, kind: str | None, n: int | None) -> str: ...
    def faults(self, spec: str) -> str: ...
    def close_all(self) -> str: ...
    def measure_idle(self, settle: float, window: float, windows: int) -> str: ...
    def judge(self, names: tuple[str, ...], where: str) -> str: ...


@dataclass(frozen=True)
class PageView:
    """What the app shows now, as explore's preconditions see it (read after every step).

    ``page`` is the page's name ("feed", "thread", ... or "unknown"); ``notes`` how many notes offer a
    thread to open; ``authors`` how many author links offer a profile; ``history`` how many pages
    ``back`` can return to; ``more`` whether the page can load older notes. An app that reports none of
    this gets :meth:`unknown`, under which every step is possible.
    """

    page: str = "unknown"
    notes: int = 1
    authors: int = 1
    history: int = 1
    more: bool = True

    @classmethod
    def unknown(cls) -> PageView:
        return cls()


@dataclass(frozen=True, kw_only=True)
class Step:
    """Base of every step; ``line`` is where it was written (None when built in code)."""

    KIND: ClassVar[str] = ""
    BROWSING: ClassVar[bool] = False
    PROVIDES: ClassVar[frozenset[str]] = frozenset()
    line: int | None = field(default=None, compare=False)

    def provides(self) -> frozenset[str]:
        """Capabilities this step gives the scenario (an assertion's ``requires``); default ``PROVIDES``."""
        return self.PROVIDES

    def validate(self, given: frozenset[str], nested: bool) -> None:
        """Checks across arguments (``given``: keys written in the file; ``nested``: inside a repeat).

        Raise :class:`BadStep` to refuse the step."""

    def possible(self, view: PageView) -> bool:
        """Whether explore may take this step on the page ``view`` describes (its precondition:
        e.g. no thread to open when no note is shown). Default: always."""
        return True

    def children(self) -> tuple[Step, ...]:
        """Steps inside this one (a repeat's body)."""
        return ()

    def run(self, ctx: StepContext) -> str | None:
        """Do the step, taking the samples it needs through ``ctx``; return a detail for the step
        record (or None)."""
        raise NotImplementedError(f"step {self.KIND!r} cannot run")

    def at_iteration(self, iteration: int) -> Step:
        """This step as it runs in pass ``iteration`` of its innermost repeat (default: unchanged)."""
        return self

    def estimated_seconds(self) -> float:
        """A lower bound on how long the step takes (waits, pauses, idle windows)."""
        return 0.0


_STEPS: dict[str, type[Step]] = {}
STEP_CLASSES: Mapping[str, type[Step]] = MappingProxyType(_STEPS)
"""Every registered step type by its ``do`` name, in registration order."""

S = TypeVar("S", bound=type[Step])


def step_type(cls: S) -> S:
    """Register a step class (a frozen, kw-only dataclass subclass of :class:`Step` with a new ``KIND``)."""
    if not cls.KIND or cls.KIND in _STEPS:
        raise ValueError(f"step class {cls.__name__}: KIND {cls.KIND!r} is empty or taken")
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"step class {cls.__name__} must be a dataclass")
    undeclared = [
        f.name for f in dataclasses.fields(cls) if f.name != "line" and "arg" not in f.metadata
    ]
    if undeclared:
        raise TypeError(f"step class {cls.__name__}: fields {undeclared} are not declared with arg()")
    _STEPS[cls.KIND] = cls
    return cls


def walk(steps: tuple[Step, ...]) -> Iterator[Step]:
    """Every step in document order, bodies once each (the enclosing step before its body)."""
    for s in steps:
        yield s
        yield from walk(s.children())
