"""JSONL event files: write a build, read (and verify) any relay's export.

One event per line, the event's wire JSON exactly (``Event.json``), ``\\n`` after each, no blank
lines: that is what the recorded sha256 covers. Reading is forgiving about shape (strfry and
nak exports are bare objects; relay logs are ``["EVENT", {...}]`` or ``["EVENT", "sub", {...}]``)
but strict about content: every id and signature is checked, and each bad line becomes a
:class:`LineError` while the rest still load.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from relaysim.errors import InvalidEvent, UsageError
from relaysim.nostr.event import Event, parse_event, verify_event

__all__ = [
    "ImportResult",
    "LineError",
    "encode_jsonl",
    "parse_line",
    "read_jsonl",
    "sha256_file",
    "write_jsonl",
]


@dataclass(frozen=True)
class LineError:
    """Line ``line_no`` (1-based) could not be loaded, because ``reason``."""

    line_no: int
    reason: str


@dataclass
class ImportResult:
    """The good events in file order, and one :class:`LineError` per bad line."""

    events: list[Event] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


def encode_jsonl(events: Iterable[Event]) -> bytes:
    return b"".join(event.json + b"\n" for event in events)


def write_jsonl(path: Path, events: Iterable[Event]) -> str:
    """Write atomically (temp file in the same directory, then rename); returns the sha256."""
    data = encode_jsonl(events)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def parse_line(line: bytes, *, verify: bool = True) -> Event:
    """One line: an event object, ``["EVENT", event]`` or ``["EVENT", sub_id, event]``."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"invalid: not JSON ({exc.args[0].split(':')[0]})") from None
    if isinstance(obj, list):
        if len(obj) == 2 and obj[0] == "EVENT":
            obj = obj[1]
        elif len(obj) == 3 and obj[0] == "EVENT" and isinstance(obj[1], str):
            obj = obj[2]
        else:
            raise InvalidEvent(
                'invalid: expected an event object, ["EVENT", event] or ["EVENT", sub_id, event]'
            )
    event = parse_event(obj)
    if verify:
        verify_event(event)
    return event


def read_jsonl(path: Path | str, *, verify: bool = True) -> ImportResult:
    """Load every good line of ``path``; blank lines are skipped, bad ones reported by number.

    Raises :class:`UsageError` only when the file itself cannot be read.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark some tools write
        data = data[3:]
    result = ImportResult()
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            result.events.append(parse_line(line, verify=verify))
        except InvalidEvent as exc:
            result.errors.append(LineError(line_no, exc.reason))
    return result
