"""Traffic rates: the ``--traffic notes=2/s,reactions=10/s`` mini-language.

Rates are kept as exact fractions of events per second so the generator's schedule
(the k-th event of a kind is due at ``start + k / rate``) has no floating-point drift: over an
hour at ``zaps=0.1/s`` exactly 360 zaps are due, not 359 or 361.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

from relaysim.errors import UsageError

__all__ = ["KIND_NAMES", "MAX_RATE_PER_SECOND", "NOSTR_KINDS", "Rates", "parse_rates"]

#: The traffic kinds in the order the generator emits them within one call.
KIND_NAMES: tuple[str, ...] = ("notes", "replies", "reactions", "reposts", "zaps", "profiles")

#: The Nostr event kind each traffic kind produces.
NOSTR_KINDS: Mapping[str, int] = MappingProxyType(
    {"notes": 1, "replies": 1, "reactions": 7, "reposts": 6, "zaps": 9735, "profiles": 0}
)

#: A ceiling that keeps one generator within what one core can sign (~13k signatures/s).
MAX_RATE_PER_SECOND = 1000

_UNITS: Mapping[str, int] = MappingProxyType({"s": 1, "m": 60, "h": 3600})
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)")
_VALID = ", ".join(KIND_NAMES)


@dataclass(frozen=True)
class Rates:
    """Events per second for each traffic kind (exact fractions; absent kinds are zero)."""

    per_second: Mapping[str, Fraction] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, rate in self.per_second.items():
            if name not in NOSTR_KINDS:
                raise UsageError(f"unknown traffic kind '{name}' (valid: {_VALID})")
            if rate < 0:
                raise UsageError(f"traffic rate for {name} must not be negative")
        # Freeze a private copy so a caller's dict cannot change the schedule afterwards.
        object.__setattr__(self, "per_second", MappingProxyType(dict(self.per_second)))

    def rate(self, name: str) -> Fraction:
        """Events per second for ``name`` (0 when not configured)."""
        return self.per_second.get(name, Fraction(0))

    def __iter__(self) -> Iterator[tuple[str, Fraction]]:
        """(name, rate) for every configured kind with a positive rate, in :data:`KIND_NAMES` order."""
        for name in KIND_NAMES:
            rate = self.rate(name)
            if rate > 0:
                yield name, rate

    def describe(self) -> str:
        """The spec in per-second form, e.g. ``notes=2/s,zaps=6/m`` -> ``notes=2/s,zaps=0.1/s``."""
        return ",".join(f"{name}={_format(rate)}/s" for name, rate in self)


def _format(rate: Fraction) -> str:
    if rate.denominator == 1:
        return str(rate.numerator)
    return f"{float(rate):g}"


def parse_rates(spec: str) -> Rates:
    """Parse ``kind=N/unit[,kind=N/unit...]`` (unit ``s``, ``m`` or ``h``) into :class:`Rates`.

    Raises :class:`UsageError` with a one-line message naming the bad item and what would fix it.
    """
    text = spec.strip()
    if not text:
        raise UsageError("empty traffic spec: expected kind=N/unit items like notes=2/s,reactions=10/s")
    rates: dict[str, Fraction] = {}
    for raw_item in text.split(","):
        item = raw_item.strip()
        if not item:
            raise UsageError(f"empty item in traffic spec '{spec}'")
        name, sep, value = item.partition("=")
        name = name.strip()
        value = value.strip()
        if not sep:
            raise UsageError(f"bad traffic item '{item}': expected kind=N/unit like notes=2/s")
        if name not in NOSTR_KINDS:
            raise UsageError(f"unknown traffic kind '{name}' in '{item}' (valid: {_VALID})")
        if name in rates:
            raise UsageError(f"traffic kind '{name}' given twice in '{spec}'")
        number, slash, unit = value.partition("/")
        number = number.strip()
        unit = unit.strip()
        if not _NUMBER.fullmatch(number):
            raise UsageError(f"bad rate '{number}' in '{item}': expected a non-negative number like 2 or 0.5")
        if not slash:
            raise UsageError(f"missing unit in '{item}': expected /s, /m or /h after the number")
        if unit not in _UNITS:
            raise UsageError(f"bad unit '{unit}' in '{item}': expected /s, /m or /h")
        rate = Fraction(number) / _UNITS[unit]
        if rate > MAX_RATE_PER_SECOND:
            raise UsageError(f"rate in '{item}' is too high: at most {MAX_RATE_PER_SECOND}/s per kind")
        rates[name] = rate
    return Rates(rates)
