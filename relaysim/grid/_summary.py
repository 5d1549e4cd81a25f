"""N sessions judged together: one row per session, the weakest named, one exit code.

Theory of operation. Each session keeps its own report (a soak's ``session-K/summary.json``, a
run's ``session-K.json``): its own timeline, its own verdicts, judged exactly as a single session
is. This module only reads those reports back into :class:`SessionRow` values and lays them side
by side -- it judges nothing itself.

The weakest session is the one a person should look at first: the one with the most failed
assertions; among equals, the one closest to a limit -- the highest ``measured / threshold`` of any
judged assertion with a positive threshold (an idle rate at 900 of 1,024 B/s is weaker than one at
10). A session that could not run at all (``error``) ranks just below any failing one.

The exit code is the README's table over every session's assertions together
(:func:`relaysim.errors.exit_code_for`): 1 if any failed; 3 if nothing could be judged (or a session
never ran and none failed: a lost session must not let a batch pass); else 0.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

from relaysim.analysis import AssertionResult
from relaysim.errors import ExitCode, exit_code_for
from relaysim.report import Report
from relaysim.report._io import write_bytes_atomic
from relaysim.report._table import format_value

__all__ = ["GRID_SCHEMA", "GridSummary", "SessionRow", "build_grid_summary", "grid_junit_suites",
           "render_grid_table", "session_row", "write_grid_html", "write_grid_summary"]

GRID_SCHEMA = "relaysim.grid/1"


@dataclass(frozen=True)
class Margin:
    """The judged assertion closest to its limit: ``ratio`` = measured / threshold."""

    name: str
    measured: float
    threshold: float
    unit: str
    ratio: float

    def text(self) -> str:
        return (f"{self.name} {format_value(self.measured, self.unit)} "
                f"({self.ratio:.0%} of {format_value(self.threshold, self.unit)})")


@dataclass(frozen=True)
class SessionRow:
    """One session's line: what it ran, how it ended, what failed, how close the rest came."""

    label: str
    app: str
    report: str | None  # path of its own report, relative to the summary
    verdict: str  # PASS / FAIL / UNAVAILABLE / ERROR
    failed: tuple[str, ...] = ()
    unavailable: tuple[str, ...] = ()
    closest: Margin | None = None
    samples: int | None = None
    seconds: float | None = None
    faults: int = 0
    replaced: int = 0
    error: str | None = None
    scenario: str | None = None
    assertions: tuple[AssertionResult, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("assertions")
        return out


def _margin(results: Sequence[AssertionResult]) -> Margin | None:
    best: Margin | None = None
    for r in results:
        if r.measured is None or r.verdict.value == "UNAVAILABLE" or not r.threshold > 0:
            continue
        measured, threshold = float(r.measured), float(r.threshold)
        m = Margin(r.name, measured, threshold, r.unit, measured / threshold)
        if best is None or m.ratio > best.ratio:
            best = m
    return best


def session_row(
    label: str, app: str, report: Report | None, *, report_path: str | None = None, faults: int = 0,
    replaced: int = 0, error: str | None = None, scenario: str | None = None,
) -> SessionRow:
    """A row from a session's report (None with ``error``: the session never produced one)."""
    if report is None:
        return SessionRow(label, app, report_path, "ERROR", error=error or "no report", faults=faults,
                          replaced=replaced, scenario=scenario)
    results = report.assertions
    verdicts = [r.verdict.value for r in results]
    verdict = "FAIL" if "FAIL" in verdicts else ("UNAVAILABLE" if verdicts and all(
        v == "UNAVAILABLE" for v in verdicts) else "PASS")
    sampling = report.timing.sampling
    return SessionRow(
        label=label, app=app, report=report_path, verdict=verdict,
        failed=tuple(r.name for r in results if r.verdict.value == "FAIL"),
        unavailable=tuple(r.name for r in results if r.verdict.value == "UNAVAILABLE"),
        closest=_margin(results), samples=sampling.samples if sampling else None,
        seconds=report.timing.duration_s, faults=faults, replaced=replaced, error=error,
        scenario=scenario, assertions=tuple(results),
    )


def _rank(row: SessionRow) -> tuple[int, int, float]:
    return (len(row.failed), 1 if row.verdict == "ERROR" else 0, row.closest.ratio if row.closest else -1.0)


@dataclass(frozen=True)
class GridSummary:
    """The sessions side by side (module docstring); ``figures`` the harness's and relay's own costs."""

    kind: str  # "soak" or "run"
    rows: tuple[SessionRow, ...]
    weakest: str | None
    why: str
    exit_code: ExitCode
    webdriver_url: str | None = None
    public_url: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": GRID_SCHEMA, "kind": self.kind, "sessions": [r.to_dict() for r in self.rows],
            "weakest": self.weakest, "why": self.why, "exit_code": int(self.exit_code),
            "verdict": {0: "PASS", 1: "FAIL"}.get(int(self.exit_code), "NOT JUDGED"),
            "webdriver_url": self.webdriver_url, "public_url": self.public_url, "figures": self.figures,
        }


def _why(row: SessionRow) -> str:
    if row.failed:
        return f"{len(row.failed)} assertion(s) FAIL: {', '.join(row.failed)}"
    if row.verdict == "ERROR":
        return f"did not run: {row.error}"
    if row.closest is not None:
        return f"closest to a limit: {row.closest.text()}"
    return "nothing judged"


def build_grid_summary(
    kind: str, rows: Sequence[SessionRow], *, allow_unavailable: bool = False, **extra: Any
) -> GridSummary:
    """Rows -> the weakest session and the exit code (module docstring)."""
    judged = [r for row in rows for r in row.assertions]
    code = exit_code_for(judged, allow_unavailable)
    if not judged and not allow_unavailable:
        code = ExitCode.NOT_JUDGED
    if code == ExitCode.PASSED and any(r.verdict == "ERROR" for r in rows):
        code = ExitCode.NOT_JUDGED
    weakest = max(rows, key=_rank) if rows else None
    return GridSummary(kind, tuple(rows), weakest.label if weakest else None,
                       _why(weakest) if weakest else "no session", code, **extra)


def grid_junit_suites(summary: GridSummary) -> list[Any]:
    """JUnit ``<testsuite>`` elements, one per session (``--junit-xml`` of a batch), named by the
    session's label, app and scenario so a CI page shows which session failed what."""
    from relaysim.report import session_suite

    suites = []
    for row in summary.rows:
        what = f"{row.scenario}: " if row.scenario else ""
        suites.append(session_suite(
            f"relaysim {summary.kind} {row.label}: {what}{row.app}", f"relaysim.{row.label}", row.assertions,
            seconds=row.seconds or 0.0, error=row.error if row.verdict == "ERROR" else None,
            properties={"session": row.label, "app": row.app, "scenario": row.scenario,
                        "verdict": row.verdict, "report": row.report,
                        "weakest": "yes" if row.label == summary.weakest else None},
        ))
    return suites


def render_grid_table(summary: GridSummary, width: int = 120) -> str:
    """One table, one row per session, then the weakest session and the overall verdict."""
    table = Table(box=box.SIMPLE, title=f"relaysim {summary.kind}: {len(summary.rows)} sessions",
                  title_justify="left")
    for name, justify in (("session", "left"), ("app", "left"), ("samples", "right"), ("faults", "right"),
                          ("verdict", "left"), ("failed / closest to a limit", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in summary.rows:
        what = r.app if r.scenario is None else f"{r.scenario} @ {r.app}"
        detail = (", ".join(r.failed) if r.failed else r.error if r.verdict == "ERROR"
                  else r.closest.text() if r.closest else "")
        faults = f"{r.faults}" + (f" ({r.replaced} replaced)" if r.replaced else "")
        table.add_row(r.label, what, "" if r.samples is None else str(r.samples), faults, r.verdict,
                      detail or "")
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False, highlight=False).print(table)
    verdict = {0: "PASS", 1: "FAIL", 3: "NOT JUDGED"}.get(int(summary.exit_code), str(summary.exit_code))
    buf.write(f"weakest: {summary.weakest}: {summary.why}\nverdict: {verdict}\n")
    return buf.getvalue()


def write_grid_summary(path: Path, summary: GridSummary) -> None:
    write_bytes_atomic(path, orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")


def write_grid_html(path: Path, summary: GridSummary) -> None:
    """A self-contained page: the table, each row linking to that session's own report."""
    e = html.escape
    rows = []
    for r in summary.rows:
        link = f'<a href="{e(r.report)}">{e(r.label)}</a>' if r.report else e(r.label)
        detail = (", ".join(r.failed) if r.failed else (r.error or "") if r.verdict == "ERROR"
                  else r.closest.text() if r.closest else "")
        style = ' style="background:#fdd"' if r.verdict in ("FAIL", "ERROR") else ""
        rows.append(f"<tr{style}><td>{link}</td><td>{e(r.app)}</td><td>{e(str(r.samples or ''))}</td>"
                    f"<td>{r.faults}</td><td>{e(r.verdict)}</td><td>{e(detail)}</td></tr>")
    figures = "".join(f"<li>{e(k)}: {e(str(v))}</li>" for k, v in summary.figures.items())
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>relaysim {e(summary.kind)}: {len(summary.rows)} sessions</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.3em .8em;border-bottom:1px solid #ccc;
text-align:left}}</style></head><body>
<h1>relaysim {e(summary.kind)}: {len(summary.rows)} sessions</h1>
<p><b>weakest: {e(str(summary.weakest))}</b>: {e(summary.why)}</p>
<table><tr><th>session</th><th>app</th><th>samples</th><th>faults</th><th>verdict</th>
<th>failed / closest to a limit</th></tr>
{"".join(rows)}
</table>
<ul>{figures}</ul>
</body></html>
"""
    write_bytes_atomic(path, page.encode())
