"""Dataset specs: a small TOML file of seed, sizes and shape (``datasets/seed1.toml``).

A spec is data, checked strictly: an unknown section or key, a wrong type or an out-of-range
number is a :class:`~relaysim.errors.UsageError` on one line that names the file and, when it
can be found, the line (``FILE:LINE: message``). Every number has a default (seed1's value),
so a small spec only states what differs; seed1 itself states everything.

The time window ends at a fixed epoch written in the spec, never at "now": the same spec gives
the same bytes next year.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from relaysim.errors import UsageError

__all__ = [
    "GENERATOR_VERSION",
    "AccountsSpec",
    "DatasetSpec",
    "EngagementSpec",
    "NotesSpec",
    "ViewerSpec",
    "parse_spec",
    "read_spec_file",
    "spec_digest",
    "spec_sha256",
]

# Bump when the generator's output changes for an unchanged spec: cached builds then rebuild.
GENERATOR_VERSION = 1

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class AccountsSpec:
    """Who exists: authors with profiles, reaction-only "crowd" keys, people never seen."""

    authors: int = 600  # > 500, the client's author-metadata cache bound, so it must evict
    crowd: int = 1200  # keys that only react: lets a note collect > 1000 distinct reactions
    followed: int = 100  # authors in the viewer's kind 3
    multi_profile_share: float = 0.3  # authors with 2-3 kind-0 versions
    strangers: int = 20  # pubkeys mentioned or tagged that publish nothing (dangling p tags)


@dataclass(frozen=True)
class NotesSpec:
    """Kind-1 notes by the authors (the viewer's own notes are in :class:`ViewerSpec`)."""

    roots: int = 3000
    replies: int = 1600  # scattered replies that grow the trees further
    deep_threads: int = 60  # threads built at least 4 deep
    max_depth: int = 9
    clusters: int = 25  # groups of notes sharing one created_at second
    cluster_size: int = 12
    mention_share: float = 0.08  # nostr:nprofile + p tag
    quote_share: float = 0.06  # nostr:nevent + q tag
    dangling: int = 60  # replies/quotes/mentions of events or people not in the dataset
    long_share: float = 0.01  # 2,000-9,000 characters
    unicode_share: float = 0.12  # scripts, emoji sequences, escapes
    expired: int = 30  # NIP-40 expiration inside the window
    future_expiring: int = 30  # NIP-40 expiration in 2100


@dataclass(frozen=True)
class EngagementSpec:
    """Reposts, reactions, zaps and deletions aimed at the authors' notes."""

    reposts: int = 500
    empty_repost_share: float = 0.3
    reactions: int = 5000  # heavy-tailed over all notes
    viral: tuple[int, ...] = (1400, 1150, 1020)  # distinct reactions on a few followed notes
    zaps: int = 400
    deletions: int = 40


@dataclass(frozen=True)
class ViewerSpec:
    """The logged-in account and the notifications aimed at it."""

    profile_versions: int = 2
    notes: int = 40
    replies: int = 150
    mentions: int = 60
    quotes: int = 12
    reactions: int = 400
    reposts: int = 20
    zaps: int = 40


@dataclass(frozen=True)
class DatasetSpec:
    """A whole spec. ``source`` (the file it came from) is not part of its identity."""

    name: str
    seed: str
    window_end: int
    window_seconds: int
    accounts: AccountsSpec = AccountsSpec()
    notes: NotesSpec = NotesSpec()
    engagement: EngagementSpec = EngagementSpec()
    viewer: ViewerSpec = ViewerSpec()
    source: str = field(default="<spec>", compare=False)

    @property
    def seed_bytes(self) -> bytes:
        return self.seed.encode("utf-8")

    @property
    def window_start(self) -> int:
        return self.window_end - self.window_seconds


_SECTIONS: dict[str, type] = {
    "accounts": AccountsSpec,
    "notes": NotesSpec,
    "engagement": EngagementSpec,
    "viewer": ViewerSpec,
}
_DATASET_KEYS = {"name": "str", "seed": "str", "window_end": "int", "window_seconds": "int"}


def spec_digest(spec: DatasetSpec, relay_url: str) -> str:
    """sha256 (hex) over everything that decides the output bytes: spec, relay URL, generator."""
    body = dataclasses.asdict(spec)
    body.pop("source")
    body["relay_url"] = relay_url
    body["generator"] = GENERATOR_VERSION
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def spec_sha256(spec: DatasetSpec) -> str:
    """sha256 (hex) over the spec and the generator version, without the relay URL: the dataset's
    identity across relays. Its events differ only in the hints naming the relay, so two runs served
    on different ports saw the same data (the built file's own sha256 differs: it embeds the URL)."""
    body = dataclasses.asdict(spec)
    body.pop("source")
    body["generator"] = GENERATOR_VERSION
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def read_spec_file(path: Path) -> DatasetSpec:
    """Read and check a spec file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read dataset spec {path}: {reason}") from exc
    return parse_spec(text, str(path))


def parse_spec(text: str, source: str = "<spec>") -> DatasetSpec:
    """Parse spec text; ``source`` names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\s*\(at line (\d+), column \d+\)$", message)
        if found:
            raise UsageError(f"{source}:{found.group(1)}: {message[: found.start()]}") from None
        raise UsageError(f"{source}: {message}") from None
    return _Checker(text, source).spec(data)


class _Checker:
    """Turns the TOML tables into a :class:`DatasetSpec`, raising on the first problem."""

    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source

    def fail(self, message: str, section: str | None = None, key: str | None = None) -> UsageError:
        line = self._line_of(section, key)
        where = f"{self.source}:{line}" if line else self.source
        return UsageError(f"{where}: {message}")

    def _line_of(self, section: str | None, key: str | None) -> int | None:
        """Best-effort line number of ``[section]`` or of ``key = ...`` inside it."""
        in_section = section is None
        for number, raw in enumerate(self.lines, start=1):
            line = raw.strip()
            header = re.match(r"^\[\s*([^\]]+?)\s*\]", line)
            if header:
                in_section = header.group(1) == section
                if in_section and key is None:
                    return number
                continue
            if in_section and key is not None and re.match(rf"^{re.escape(key)}\s*=", line):
                return number
        return None

    def spec(self, data: dict[str, Any]) -> DatasetSpec:
        for name, value in data.items():
            if name != "dataset" and name not in _SECTIONS:
                if isinstance(value, dict):
                    raise self.fail(f"unknown section [{name}]", name)
                raise self.fail(f"unknown key '{name}' (keys belong in a [section])", None, name)
            if not isinstance(value, dict):
                raise self.fail(f"'{name}' must be a [section]", None, name)
        head = data.get("dataset")
        if head is None:
            raise self.fail("missing section [dataset] (name, seed, window_end, window_seconds)")
        values: dict[str, Any] = {}
        for key, value in head.items():
            if key not in _DATASET_KEYS:
                raise self.fail(f"unknown key 'dataset.{key}'", "dataset", key)
            values[key] = self.value("dataset", key, _DATASET_KEYS[key], value)
        for key in _DATASET_KEYS:
            if key not in values:
                raise self.fail(f"missing key 'dataset.{key}'", "dataset")
        if not _NAME.match(values["name"]):
            raise self.fail("dataset.name must be 1-64 characters of a-z, 0-9, '_' or '-'", "dataset", "name")
        if not values["seed"]:
            raise self.fail("dataset.seed must not be empty", "dataset", "seed")
        if values["window_end"] <= 0:
            raise self.fail("dataset.window_end must be a positive Unix time", "dataset", "window_end")
        if not 3600 <= values["window_seconds"] < values["window_end"]:
            raise self.fail(
                "dataset.window_seconds must be at least 3600 and less than window_end",
                "dataset",
                "window_seconds",
            )
        sections = {name: self.section(name, cls, data.get(name, {})) for name, cls in _SECTIONS.items()}
        spec = DatasetSpec(**values, **sections, source=self.source)
        self.check_shape(spec)
        return spec

    def section(self, name: str, cls: type, table: dict[str, Any]) -> Any:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for key, value in table.items():
            if key not in fields:
                raise self.fail(f"unknown key '{name}.{key}'", name, key)
            values[key] = self.value(name, key, str(fields[key].type), value)
        return cls(**values)

    def value(self, section: str, key: str, kind: str, value: Any) -> Any:
        where = f"{section}.{key}"
        if kind == "str":
            if not isinstance(value, str):
                raise self.fail(f"{where} must be a string", section, key)
            return value
        if kind == "int":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise self.fail(f"{where} must be a non-negative integer", section, key)
            return value
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise self.fail(f"{where} must be a number from 0 to 1", section, key)
            return float(value)
        # tuple[int, ...]
        if not isinstance(value, list) or not all(
            isinstance(item, int) and not isinstance(item, bool) and item > 0 for item in value
        ):
            raise self.fail(f"{where} must be a list of positive integers", section, key)
        return tuple(value)

    def check_shape(self, spec: DatasetSpec) -> None:
        """Cross-field limits the generator relies on."""
        acc, notes, eng, viewer = spec.accounts, spec.notes, spec.engagement, spec.viewer
        if acc.authors < 2:
            raise self.fail("accounts.authors must be at least 2", "accounts", "authors")
        if acc.followed > acc.authors:
            raise self.fail("accounts.followed cannot exceed accounts.authors", "accounts", "followed")
        if notes.roots < 1:
            raise self.fail("notes.roots must be at least 1", "notes", "roots")
        if notes.deep_threads > notes.roots:
            raise self.fail("notes.deep_threads cannot exceed notes.roots", "notes", "deep_threads")
        if notes.max_depth < 1:
            raise self.fail("notes.max_depth must be at least 1", "notes", "max_depth")
        reactors = acc.authors + acc.crowd
        for count in eng.viral:
            if count > reactors:
                raise self.fail(
                    f"engagement.viral asks for {count} distinct reactions but there are only "
                    f"{reactors} authors + crowd",
                    "engagement",
                    "viral",
                )
        if len(eng.viral) > notes.roots:
            raise self.fail("engagement.viral lists more notes than notes.roots", "engagement", "viral")
        if viewer.profile_versions < 1:
            raise self.fail("viewer.profile_versions must be at least 1", "viewer", "profile_versions")
        aimed = viewer.replies + viewer.quotes + viewer.reactions + viewer.reposts + viewer.zaps
        if viewer.notes == 0 and aimed:
            raise self.fail(
                "viewer.notes must be at least 1 when replies, quotes, reactions, reposts or zaps "
                "target the viewer's notes",
                "viewer",
                "notes",
            )
