"""Markdown for a pull-request comment: a run's assertion table and a comparison's verdict table.

GitHub-flavoured markdown (pipe tables, which GitLab and Gitea render alike): the comparison
shows every assertion with base, new, change and verdict, then the sites that grew most (regressed
ones first) and, for each regression, the new run's own detail -- what grew, where. Cell text is
escaped (``|`` and newlines), so an app's site name cannot break the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from relaysim.analysis import Change, Comparison, Verdict
from relaysim.report._model import Report
from relaysim.report._table import format_change, format_value

__all__ = ["comparison_markdown", "report_markdown"]


def _cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _table(header: Sequence[str], align: str, rows: Iterable[Sequence[object]]) -> list[str]:
    rule = "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"
    out = ["| " + " | ".join(header) + " |", rule]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _verdict(v: Change) -> str:
    return f"**{v.value}**" if v is Change.REGRESSED else v.value


def _run_verdict(v: Verdict) -> str:
    return f"**{v.value}**" if v is Verdict.FAIL else v.value


def _short(digest: str | None) -> str:
    return f"`{digest[:12]}`" if digest else "none"


def comparison_markdown(comparison: Comparison, sites: int = 5) -> str:
    """The comparison as markdown (see the module docstring), ending in a newline."""
    b, n = comparison.base, comparison.new
    verdict = comparison.verdict.value.upper()
    lines = [
        f"### relaysim compare: {n.scenario} — {verdict}",
        "",
        f"BASE `{b.app_mode}` · NEW `{n.app_mode}` · dataset {n.dataset_name} (spec "
        f"{_short(n.dataset_spec_sha256)}) · relaysim {n.relaysim}",
        "",
    ]
    rows = [
        (f"`{r.assertion}`", format_value(r.base, r.unit), format_value(r.new, r.unit), format_change(r),
         _verdict(r.verdict))
        for r in comparison.assertion_rows
    ]
    lines += _table(("assertion", "base", "new", "change", "verdict"), "lrrrl", rows)
    grown = comparison.grown_sites(sites)
    if grown:
        lines += ["", f"**Sites that grew** (top {len(grown)})", ""]
        lines += _table(
            ("site", "figure", "base", "new", "change", "verdict"), "llrrrl",
            ((g.site, f"{g.kind} (`{g.assertion}`)", format_value(g.base, g.unit),
              format_value(g.new, g.unit), format_change(g), _verdict(g.verdict)) for g in grown),
        )
    regressed = comparison.regressions
    if regressed:
        lines += ["", "**Regressions**", ""]
        for r in regressed:
            why = f" {r.detail}." if r.detail else ""
            what = f" NEW: {r.new_detail}" if r.site is None and r.new_detail else ""
            lines.append(f"- `{r.label}`: {format_value(r.base, r.unit)} → {format_value(r.new, r.unit)} "
                         f"(tolerance ±{format_value(r.margin, r.unit)}).{why}{what}")
    if comparison.notes:
        lines += [""] + [f"_{_cell(note)}_  " for note in comparison.notes]
    return "\n".join(lines) + "\n"


def report_markdown(report: Report) -> str:
    """A run report's assertions as a markdown table with its verdict, ending in a newline."""
    verdict = report.verdict.value if report.verdict else "PASS"
    lines = [f"### relaysim run: {report.scenario.name} — {verdict}", "",
             f"app `{report.app.mode}` · dataset {report.environment.dataset_name} · "
             f"{report.timing.duration_s:.1f} s", ""]
    lines += _table(
        ("assertion", "threshold", "measured", "verdict"), "lrrl",
        ((f"`{r.name}`", f"{r.comparison} {format_value(r.threshold, r.unit)}",
          format_value(r.measured, r.unit), _run_verdict(r.verdict)) for r in report.assertions),
    )
    failing = [r for r in report.assertions if r.verdict is not Verdict.PASS and r.detail]
    if failing:
        lines += [""] + [f"- `{r.name}` ({r.verdict.value}): {_cell(r.detail)}" for r in failing]
    return "\n".join(lines) + "\n"
