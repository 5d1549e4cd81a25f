"""The tables the CLI prints: a report's assertion | threshold | measured | verdict, and a comparison's
figure | base | new | change | verdict.

Rendered with rich to plain text (no colour codes), so the same string reads well in a terminal,
a CI log and a test's expected output.
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from relaysim.analysis import AssertionResult, Comparison, FigureChange, Verdict
from relaysim.report._model import Report

__all__ = ["format_change", "format_value", "render_comparison", "render_table"]

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


def format_change(row: FigureChange) -> str:
    """``+12,664 B/cycle``, ``-3.1 KiB (-12.0 %)``, ``0 B/s``; ``n/a`` when either side is unknown."""
    if row.change is None:
        return "n/a"
    if row.change == 0:
        return format_value(0, row.unit)
    text = format_value(row.change, row.unit)
    text = text if text.startswith("-") else f"+{text}"
    if row.relative is not None:
        text += f" ({row.relative:+.1%})"
    return text


def _text(console_width: int, table: Table) -> list[str]:
    buf = io.StringIO()
    console = Console(file=buf, width=console_width, color_system=None, force_terminal=False, highlight=False)
    console.print(table)
    return [line.rstrip() for line in buf.getvalue().rstrip("\n").split("\n")]


def render_comparison(comparison: Comparison, sites: int = 10) -> str:
    """A comparison as text: every assertion, then the sites that changed (up to ``sites``), the
    notes, and ``compare: REGRESSED`` (or improved, same)."""
    b, n = comparison.base, comparison.new
    table = Table(box=box.SIMPLE, title_justify="left",
                  title=f"relaysim compare: {n.scenario} (BASE {b.app_mode}, NEW {n.app_mode})")
    for col, justify in (("figure", "left"), ("base", "right"), ("new", "right"), ("change", "right"),
                         ("verdict", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    changed = [r for r in comparison.site_rows if r.change]
    for r in [*comparison.assertion_rows, *changed[:sites]]:
        table.add_row(Text(r.label), format_value(r.base, r.unit), format_value(r.new, r.unit),
                      format_change(r), r.verdict.value.upper())  # Text: a site name is not rich markup
    lines = _text(1000, table)  # as wide as its rows: a wrapped row would split a site's name
    if len(changed) > sites:
        lines.append(f"  ({len(changed) - sites} more site(s) changed; --format json lists them all)")
    for r in comparison.rows:
        if r.detail:
            lines.append(f"  {r.label}: {r.detail}")
    for r in comparison.regressions:
        if r.site is None and r.new_detail:
            lines.append(f"  {r.label} in NEW: {r.new_detail}")
    for note in comparison.notes:
        lines.append(f"  note: {note}")
    lines.append(f"compare: {comparison.verdict.value.upper()}")
    return "\n".join(lines) + "\n"
