"""Writing reports and timelines so that a killed run loses nothing.

* :func:`write_report` writes to a temporary file in the same directory, fsyncs it and renames it
  over the target: a reader sees the old report or the new one, never half of one.
* :class:`TimelineWriter` appends one JSON object per line (JSONL). Each line goes out in one
  ``write`` and is flushed at once, so a killed process (SIGKILL, OOM) loses at most the line being
  written; every ``fsync_every`` lines it also fsyncs, bounding what a power cut can take.
* :func:`read_timeline` reads such a file back and tolerates a truncated last line (the one a kill
  interrupted); damage anywhere else is an error naming the line.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import orjson

from relaysim.analysis import Sample
from relaysim.errors import UsageError
from relaysim.report._model import Report, report_from_json, to_dict

__all__ = ["Timeline", "TimelineWriter", "read_report", "read_timeline", "write_report"]


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (temp file in the same directory, fsync, rename)."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        # mkstemp makes the file 0600; a report is read by people and CI artifact uploads, so give it
        # the mode an ordinary open() would (0666 less the umask).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def write_report(path: str | Path, report: Report) -> None:
    """Write ``report`` as indented JSON to ``path``, atomically."""
    write_bytes_atomic(path, report.to_json())


def read_report(path: str | Path) -> Report:
    """Read a report file; :class:`UsageError` (one line, naming the file) when it is not one."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read report: {exc.strerror}") from None
    try:
        return report_from_json(data)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not a relaysim report: {exc}") from None


class TimelineWriter:
    """Append-only JSONL timeline: ``append(sample)`` or ``append({"type": ..., ...})``.

    A :class:`Sample` is written as ``{"type": "sample", "t", "app_ts", "figures"}``; any other
    record is a mapping with a ``"type"`` key (e.g. ``"step"``, ``"alloc_counters"``, ``"idle"``).
    Opening an existing file appends to it; a torn last line left by a killed run is cut off first
    (``dropped_tail`` = bytes dropped) so the file stays valid JSONL. Use as a context manager.
    """

    def __init__(self, path: str | Path, fsync_every: int = 10) -> None:
        if fsync_every < 1:
            raise ValueError(f"fsync_every must be >= 1, got {fsync_every}")
        self.path = Path(path)
        self.fsync_every = fsync_every
        self.lines = 0
        self._unsynced = 0
        self.dropped_tail = self._drop_torn_tail()
        self._fh = open(self.path, "ab")  # noqa: SIM115 - closed in close()

    def _drop_torn_tail(self) -> int:
        """Cut a torn last line (no newline: a killed writer's) so appends start on a clean line.

        Returns the number of bytes dropped. The torn record was never complete, so nothing that
        was written whole is lost, and the file stays readable from top to bottom.
        """
        try:
            with open(self.path, "r+b") as fh:
                size = fh.seek(0, os.SEEK_END)
                if size == 0:
                    return 0
                fh.seek(size - 1)
                if fh.read(1) == b"\n":
                    return 0
                chunk = 65536
                pos = size
                while pos > 0:
                    start = max(0, pos - chunk)
                    fh.seek(start)
                    block = fh.read(pos - start)
                    nl = block.rfind(b"\n")
                    if nl >= 0:
                        keep = start + nl + 1
                        break
                    pos = start
                else:
                    keep = 0
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
                return size - keep
        except FileNotFoundError:
            return 0

    def append(self, record: Sample | Mapping[str, object]) -> None:
        """Write one record as one line; flush now, fsync every ``fsync_every`` lines."""
        if isinstance(record, Sample):
            obj: dict[str, object] = {"type": "sample", **record.to_dict()}
        else:
            if "type" not in record:
                raise ValueError("a timeline record needs a 'type' key")
            obj = dict(record)
        line = orjson.dumps(to_dict(obj), option=orjson.OPT_APPEND_NEWLINE)
        self._fh.write(line)
        self._fh.flush()
        self.lines += 1
        self._unsynced += 1
        if self._unsynced >= self.fsync_every:
            self.sync()

    def sync(self) -> None:
        """fsync what has been written."""
        os.fsync(self._fh.fileno())
        self._unsynced = 0

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            self.sync()
            self._fh.close()

    def __enter__(self) -> TimelineWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@dataclass
class Timeline:
    """A timeline read back: samples in file order, other records, and whether the tail was torn."""

    samples: list[Sample] = field(default_factory=list)
    records: list[dict[str, object]] = field(default_factory=list)
    truncated: bool = False
    lines: int = 0


def read_timeline(path: str | Path) -> Timeline:
    """Read a JSONL timeline; a damaged last line is skipped (``truncated=True``), any other is an error.

    Raises :class:`UsageError` ``"<path>:<line>: ..."`` for a bad line before the last.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read timeline: {exc.strerror}") from None
    out = Timeline()
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    last = len(raw_lines)
    for n, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            sample = Sample.from_dict(obj) if obj.get("type") == "sample" else None
        except (ValueError, orjson.JSONDecodeError) as exc:
            if n == last:
                out.truncated = True
                break
            raise UsageError(f"{path}:{n}: not a timeline record: {exc}") from None
        out.lines += 1
        if sample is not None:
            out.samples.append(sample)
        else:
            out.records.append(obj)
    return out
