"""The assertions table the CLI prints: assertion | threshold | measured | verdict.

Rendered with rich to plain text (no colour codes), so the same string reads well in a terminal,
a CI log and a test's expected output.
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table

from relaysim.analysis import AssertionResult, Verdict
from relaysim.report._model import Report

__all__ = ["format_value", "render_table"]

_MiB = 1024 * 1024


def format_value(value: float | None, unit: str) -> str:
    """A figure for people: bytes as B/KiB/MiB, rates with one decimal, counts as integers."""
    if value is None:
        return "unavailable"
    if unit == "B":
        if abs(value) >= _MiB:
            return f"{value / _MiB:,.1f} MiB"
        if abs(value) >= 10 * 1024:
            return f"{value / 1024:,.1f} KiB"
        return f"{value:,.0f} B"
    if unit == "B/s":
        return f"{value:,.0f} B/s" if float(value).is_integer() else f"{value:,.1f} B/s"
    if float(value).is_integer():
        return f"{value:,.0f} {unit}"
    return f"{value:,.2f} {unit}"


def _row(r: AssertionResult) -> tuple[str, str, str, str]:
    return (
        r.name,
        f"{r.comparison} {format_value(r.threshold, r.unit)}",
        format_value(r.measured, r.unit),
        r.verdict.value,
    )


def render_table(report: Report, width: int = 100) -> str:
    """The report's assertions as a text table, then the overall verdict and why anything is unavailable."""
    table = Table(box=box.SIMPLE, title=f"relaysim: {report.scenario.name}", title_justify="left")
    table.add_column("assertion")
    table.add_column("threshold", justify="right")
    table.add_column("measured", justify="right")
    table.add_column("verdict")
    for r in report.assertions:
        table.add_row(*_row(r))
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False, highlight=False)
    console.print(table)
    lines = [line.rstrip() for line in buf.getvalue().rstrip("\n").split("\n")]
    for r in report.assertions:
        if r.verdict is not Verdict.PASS and r.detail:
            lines.append(f"  {r.name}: {r.detail}")
    for u in report.unavailable:
        lines.append(f"  unavailable: {u.figure} ({u.reason})")
    lines.append(f"verdict: {report.verdict.value if report.verdict else 'PASS'}")
    return "\n".join(lines) + "\n"
