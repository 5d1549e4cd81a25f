"""Argument types of scenario steps: each checks a TOML value, describes itself, and bounds generation.

A step declares its arguments as dataclass fields made with :func:`relaysim.scenario._step.arg`, each
with one of these types. The parser calls :meth:`ArgType.check` (raising :class:`BadValue` with the
end of a sentence: "must be an integer >= 1, got 0"), the docs table prints :meth:`ArgType.describe`,
and :mod:`relaysim.strategies` turns the type's bounds into a Hypothesis strategy. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from relaysim.analysis import assertion_names
from relaysim.errors import UsageError
from relaysim.relay.faults import parse_faults
from relaysim.traffic.rates import KIND_NAMES, parse_rates

__all__ = [
    "ArgType",
    "AssertionNames",
    "BadValue",
    "Choice",
    "FaultsText",
    "Flag",
    "FloatRange",
    "IntRange",
    "PageArg",
    "Rates",
    "SiteNames",
    "StepList",
    "Text",
    "TrafficKind",
    "UnknownName",
]


class BadValue(Exception):
    """A value is wrong; the message completes "<step>.<arg> ..." (e.g. "must be an integer >= 1, got 0")."""


class UnknownName(BadValue):
    """Like :class:`BadValue`, but the message stands on its own (no "<step>.<arg>" prefix)."""


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


class ArgType:
    """Base of the argument types: ``check(value) -> value`` or :class:`BadValue`; ``describe()``."""

    def check(self, value: object) -> object:  # pragma: no cover - every type overrides it
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - every type overrides it
        raise NotImplementedError


@dataclass(frozen=True)
class IntRange(ArgType):
    lo: int
    hi: int | None = None

    def check(self, value: object) -> int:
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < self.lo
            or (self.hi is not None and value > self.hi)
        ):
            raise BadValue(f"must be an integer {self._range()}, got {value!r}")
        return value

    def _range(self) -> str:
        return f">= {self.lo}" if self.hi is None else f"from {self.lo} to {self.hi}"

    def describe(self) -> str:
        return f"integer {self._range()}"


@dataclass(frozen=True)
class FloatRange(ArgType):
    """A finite number above ``lo`` (``strict``: strictly above), at most ``hi`` when given."""

    lo: float
    strict: bool = False
    hi: float | None = None

    def check(self, value: object) -> float:
        ok = _is_number(value) and (value > self.lo if self.strict else value >= self.lo)  # type: ignore[operator]
        if ok and self.hi is not None:
            ok = value <= self.hi  # type: ignore[operator]
        if not ok:
            raise BadValue(f"must be a number {self._range()}, got {value!r}")
        return float(value)  # type: ignore[arg-type]

    def _range(self) -> str:
        low = f"{'>' if self.strict else '>='} {self.lo:g}"
        return low if self.hi is None else f"{low} and <= {self.hi:g}"

    def describe(self) -> str:
        return f"number {self._range()}"


@dataclass(frozen=True)
class Flag(ArgType):
    def check(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise BadValue(f"must be true or false, got {value!r}")
        return value

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Text(ArgType):
    """A string; ``nonempty`` refuses blank ones."""

    nonempty: bool = True

    def check(self, value: object) -> str:
        if not isinstance(value, str) or (self.nonempty and not value.strip()):
            raise BadValue(f"must be a {'non-empty ' if self.nonempty else ''}string, got {value!r}")
        return value

    def describe(self) -> str:
        return "non-empty string" if self.nonempty else "string"


@dataclass(frozen=True)
class Choice(ArgType):
    options: tuple[str, ...]

    def check(self, value: object) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise BadValue(f"must be one of: {', '.join(self.options)}; got {value!r}")
        return value

    def describe(self) -> str:
        return " | ".join(f'"{o}"' for o in self.options)


@dataclass(frozen=True)
class PageArg(ArgType):
    """What a page shows: the k-th item of the list (an index) or an id string."""

    def check(self, value: object) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str) and value.strip():
            return value
        raise BadValue(f"must be an index >= 0 or an id string, got {value!r}")

    def describe(self) -> str:
        return "index >= 0 or id string"


@dataclass(frozen=True)
class Rates(ArgType):
    """A traffic spec such as ``notes=2/s,reactions=10/s`` (docs/traffic.md)."""

    def check(self, value: object) -> str:
        text = Text().check(value)
        try:
            parse_rates(text)
        except UsageError as exc:
            raise BadValue(f"is not a traffic spec: {exc}") from None
        return text

    def describe(self) -> str:
        return 'traffic spec ("notes=2/s,...")'


@dataclass(frozen=True)
class FaultsText(ArgType):
    """Injected faults as ``--faults`` text, e.g. ``disconnect-every=3s,delay=50ms``; ``off`` = none."""

    def check(self, value: object) -> str:
        if not isinstance(value, str):
            raise BadValue(f'must be --faults text such as "drop=0.01,delay=50ms" or "off", got {value!r}')
        try:
            spec = parse_faults(value)
        except UsageError as exc:
            raise BadValue(f"is not a faults spec: {exc}") from None
        return spec.describe()

    def describe(self) -> str:
        return 'faults spec ("disconnect-every=3s,..." or "off")'


@dataclass(frozen=True)
class TrafficKind(ArgType):
    def check(self, value: object) -> str:
        return Choice(tuple(KIND_NAMES)).check(value)

    def describe(self) -> str:
        return "traffic kind (" + ", ".join(KIND_NAMES) + ")"


@dataclass(frozen=True)
class AssertionNames(ArgType):
    """``"all"``, one assertion name, or a list of them (the registry's names)."""

    def check(self, value: object) -> tuple[str, ...]:
        known = assertion_names()
        if value == "all":
            return known
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
            raise BadValue(f'must be "all" or a non-empty list of assertion names, got {value!r}')
        for name in value:
            if name not in known:
                raise UnknownName(f"unknown assertion {name!r} (expected one of: all, {', '.join(known)})")
        return tuple(dict.fromkeys(value))

    def describe(self) -> str:
        return '"all" or assertion names'


@dataclass(frozen=True)
class SiteNames(ArgType):
    def check(self, value: object) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
            raise BadValue(f"must be a list of allocation site names, got {value!r}")
        return tuple(dict.fromkeys(value))

    def describe(self) -> str:
        return "list of allocation site names"


@dataclass(frozen=True)
class StepList(ArgType):
    """A nested list of steps (``[[steps.steps]]``); the parser reads it, this type only names it."""

    def check(self, value: object) -> object:
        return value

    def describe(self) -> str:
        return "steps ([[steps.steps]])"


def options_of(arg_type: ArgType) -> Sequence[str]:
    """The allowed strings of a choice-like type (for strategies and docs), else ()."""
    if isinstance(arg_type, Choice):
        return arg_type.options
    if isinstance(arg_type, TrafficKind):
        return tuple(KIND_NAMES)
    return ()
