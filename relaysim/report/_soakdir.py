"""A soak's output directory, read back from its files alone (docs/report-schema.md, "Soak output directory").

The soak loop writes ``timeline.jsonl`` (samples and other records, :class:`TimelineWriter`),
``events.jsonl`` (one event per line: ``{"t", "wall", "type", ...}``), at the end ``summary.json``
(a :class:`~relaysim.report.Report` with a ``soak`` section) and ``report.html``. A killed soak
has the first two; both tolerate a torn last line, as :func:`read_timeline` does. Everything a
user can get wrong here (no directory, no timeline, a damaged line) is a one-line
:class:`~relaysim.errors.UsageError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from relaysim.analysis import Sample
from relaysim.errors import UsageError
from relaysim.report._io import read_report, read_timeline
from relaysim.report._model import Report

__all__ = ["EVENTS", "REPORT_HTML", "SUMMARY", "TIMELINE", "SoakDir", "read_events", "read_soak_dir"]

TIMELINE = "timeline.jsonl"
EVENTS = "events.jsonl"
SUMMARY = "summary.json"
REPORT_HTML = "report.html"


@dataclass
class SoakDir:
    """What a soak directory holds: samples and records of the timeline, events, the summary if any."""

    path: Path
    samples: list[Sample] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    summary: Report | None = None
    torn: tuple[str, ...] = ()  # files whose last line was torn (a killed writer) and skipped

    def probe_bytes(self) -> float:
        """Bytes one sample's probe costs: the summary's, else a ``probe_cost`` timeline record, else 0."""
        if self.summary is not None and self.summary.probe_cost is not None:
            return float(self.summary.probe_cost.bytes_per_probe)
        for r in self.records:
            value = r.get("bytes_per_probe")
            if (
                r.get("type") == "probe_cost"
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            ):
                return float(value)
        return 0.0


def read_events(path: str | Path) -> tuple[list[dict[str, Any]], bool]:
    """Events of ``events.jsonl`` and whether its last line was torn; a missing file has none."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return [], False
    except OSError as exc:
        raise UsageError(f"{p}: cannot read events: {exc.strerror}") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out: list[dict[str, Any]] = []
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
            if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
                raise ValueError("not a JSON object with a string 'type'")
        except (ValueError, orjson.JSONDecodeError) as exc:
            if n == len(lines):
                return out, True
            raise UsageError(f"{p}:{n}: not an event: {exc}") from None
        out.append(obj)
    return out, False


def read_soak_dir(path: str | Path) -> SoakDir:
    """Read a soak directory; :class:`UsageError` when it or its timeline is missing or damaged."""
    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"{root}: no such directory (expected a soak output directory)")
    timeline_path = root / TIMELINE
    if not timeline_path.is_file():
        raise UsageError(f"{timeline_path}: no timeline here (not a soak output directory?)")
    timeline = read_timeline(timeline_path)
    events, events_torn = read_events(root / EVENTS)
    summary = read_report(root / SUMMARY) if (root / SUMMARY).is_file() else None
    torn = tuple(name for name, bad in ((TIMELINE, timeline.truncated), (EVENTS, events_torn)) if bad)
    return SoakDir(
        path=root,
        samples=timeline.samples,
        records=timeline.records,
        events=events,
        summary=summary,
        torn=torn,
    )
