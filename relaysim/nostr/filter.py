"""NIP-01 filters: validation of a decoded JSON filter, and matching against events.

Theory of operation: :func:`parse_filter` turns the JSON object from a REQ or COUNT into a
frozen :class:`Filter`, or raises :class:`~relaysim.errors.InvalidFilter` whose ``reason`` is the
CLOSED message to send (``invalid: ...`` or ``unsupported: ...``) and names the offending key.
Every list becomes a ``frozenset`` so :meth:`Filter.matches` is a handful of set look-ups; the
relay calls it once per live subscription for every new event, so it is on the hot path.

Decisions (NIP-01 "Communicating between clients and relays"):

* ``ids``, ``authors``, ``#e`` and ``#p`` values must be exactly 64 lowercase hex characters
  (prefix search was removed from NIP-01).
* ``kinds`` are integers 0..65535; ``since``/``until`` are integers, both inclusive; ``limit``
  is an integer >= 0. JSON ``true``/``false`` and floats such as ``1.0`` are not integers.
* ``#<letter>`` for any single letter a-z/A-Z is a list of strings matched against the *first
  value* of tags with that name (NIP-01 indexes only ``tag[1]``).
* An empty list matches nothing (as in nostr-tools and go-nostr): ``{"ids": []}`` is valid and
  selects no event. :attr:`Filter.never_matches` tells a store it can skip the filter.
* Any other key (``search``, ``#ab``, ``ids_prefix``, ...) is refused with
  ``unsupported: filter contains unknown element '<key>'``, the wording of NIP-01's CLOSED
  example, as strfry does, rather than silently ignored: a filter we only half understand
  would return wrong results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from relaysim.errors import InvalidFilter
from relaysim.nostr.event import Event, is_lower_hex

__all__ = ["Filter", "matches_any", "parse_filter"]

_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX_TAGS = frozenset(("e", "p"))
_MAX_KIND = 65535
_EMPTY_TAGS: Mapping[str, frozenset[str]] = MappingProxyType({})


def _freeze_tags(tags: Mapping[str, Iterable[str]]) -> Mapping[str, frozenset[str]]:
    return MappingProxyType({name: frozenset(values) for name, values in tags.items()})


@dataclass(frozen=True)
class Filter:
    """One NIP-01 filter. Build it with :func:`parse_filter` (validated) or directly (trusted).

    ``None`` means "no condition"; an empty set means "matches nothing". ``tags`` maps a single
    letter (without ``#``) to the accepted first values. Iterables passed to the constructor are
    frozen, so ``Filter(kinds=[1], tags={"p": [pk]})`` is fine in tests and in the harness.
    """

    ids: frozenset[str] | None = None
    authors: frozenset[str] | None = None
    kinds: frozenset[int] | None = None
    tags: Mapping[str, frozenset[str]] = field(default_factory=lambda: _EMPTY_TAGS)
    since: int | None = None
    until: int | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        for name in ("ids", "authors", "kinds"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))
        if not isinstance(self.tags, MappingProxyType) or not all(
            isinstance(values, frozenset) for values in self.tags.values()
        ):
            bad = [name for name in self.tags if not (len(name) == 1 and name in _LETTERS)]
            if bad:
                raise ValueError(f"Filter tags are keyed by a single letter without '#', got {bad[0]!r}")
            object.__setattr__(self, "tags", _freeze_tags(self.tags))
        # A tuple is faster to walk than a mapping view, and matches() walks it per event.
        object.__setattr__(self, "_tag_items", tuple(self.tags.items()))

    def __hash__(self) -> int:
        return hash(
            (
                self.ids,
                self.authors,
                self.kinds,
                frozenset(self.tags.items()),
                self.since,
                self.until,
                self.limit,
            )
        )

    @property
    def never_matches(self) -> bool:
        """True when no event can match (an empty list, or ``since`` after ``until``).

        ``limit`` is left out on purpose: ``limit: 0`` stops the stored-events query but the
        subscription still receives new events (NIP-01; relay-tester ``limit_zero``).
        """
        if self.ids == frozenset() or self.authors == frozenset() or self.kinds == frozenset():
            return True
        if any(not values for values in self.tags.values()):
            return True
        return self.since is not None and self.until is not None and self.since > self.until

    def matches(self, event: Event) -> bool:
        """True when ``event`` satisfies every condition of this filter (``limit`` aside)."""
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.authors is not None and event.pubkey not in self.authors:
            return False
        if self.ids is not None and event.id not in self.ids:
            return False
        if self.since is not None and event.created_at < self.since:
            return False
        if self.until is not None and event.created_at > self.until:
            return False
        for name, values in self._tag_items:  # type: ignore[attr-defined]
            for tag in event.tags:
                if len(tag) >= 2 and tag[0] == name and tag[1] in values:
                    break
            else:
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """The filter as a JSON object; ``parse_filter(f.to_dict()) == f``. Lists come out sorted."""
        out: dict[str, Any] = {}
        if self.ids is not None:
            out["ids"] = sorted(self.ids)
        if self.authors is not None:
            out["authors"] = sorted(self.authors)
        if self.kinds is not None:
            out["kinds"] = sorted(self.kinds)
        for name in sorted(self.tags):
            out["#" + name] = sorted(self.tags[name])
        if self.since is not None:
            out["since"] = self.since
        if self.until is not None:
            out["until"] = self.until
        if self.limit is not None:
            out["limit"] = self.limit
        return out


def matches_any(filters: Iterable[Filter], event: Event) -> bool:
    """NIP-01: several filters of one REQ are OR-ed."""
    return any(f.matches(event) for f in filters)


def _is_int(value: object) -> bool:
    # bool is an int in Python but not a JSON number.
    return isinstance(value, int) and not isinstance(value, bool)


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj[key]
    if not isinstance(value, list):
        raise InvalidFilter(f"invalid: filter '{key}' must be an array")
    return value


def _hex_set(obj: Mapping[str, Any], key: str) -> frozenset[str]:
    values = _list(obj, key)
    for index, value in enumerate(values):
        if not is_lower_hex(value, 64):
            raise InvalidFilter(f"invalid: filter '{key}' item {index} must be 64 lowercase hex characters")
    return frozenset(values)


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj[key]
    if not _is_int(value):
        raise InvalidFilter(f"invalid: filter '{key}' must be an integer")
    return int(value)


def parse_filter(obj: object) -> Filter:
    """Validate one decoded JSON filter; raise :class:`InvalidFilter` naming the first bad key.

    Keys are checked in the order they appear in the object, so the error is deterministic.
    """
    if not isinstance(obj, dict):
        raise InvalidFilter("invalid: filter must be a JSON object")
    ids = authors = kinds = None
    since = until = limit = None
    tags: dict[str, frozenset[str]] = {}
    for key in obj:
        if key == "ids":
            ids = _hex_set(obj, key)
        elif key == "authors":
            authors = _hex_set(obj, key)
        elif key == "kinds":
            values = _list(obj, key)
            for index, value in enumerate(values):
                if not _is_int(value) or not 0 <= value <= _MAX_KIND:
                    raise InvalidFilter(
                        f"invalid: filter 'kinds' item {index} must be an integer between 0 and {_MAX_KIND}"
                    )
            kinds = frozenset(values)
        elif key == "since":
            since = _int(obj, key)
        elif key == "until":
            until = _int(obj, key)
        elif key == "limit":
            limit = _int(obj, key)
            if limit < 0:
                raise InvalidFilter("invalid: filter 'limit' must not be negative")
        elif isinstance(key, str) and len(key) == 2 and key[0] == "#" and key[1] in _LETTERS:
            name = key[1]
            if name in _HEX_TAGS:
                tags[name] = _hex_set(obj, key)
            else:
                values = _list(obj, key)
                for index, value in enumerate(values):
                    if not isinstance(value, str):
                        raise InvalidFilter(f"invalid: filter '{key}' item {index} must be a string")
                tags[name] = frozenset(values)
        else:
            raise InvalidFilter(f"unsupported: filter contains unknown element '{_shorten(str(key))}'")
    return Filter(ids, authors, kinds, MappingProxyType(tags) if tags else _EMPTY_TAGS, since, until, limit)


def _shorten(key: str, limit: int = 40) -> str:
    """Keep a hostile key from bloating the CLOSED message."""
    return key if len(key) <= limit else key[:limit] + "..."
