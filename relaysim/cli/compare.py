"""``relaysim compare BASE NEW``: what grew since the baseline, per assertion and per allocation site.

BASE and NEW are ``relaysim run`` reports or soak summaries (a soak directory means its
``summary.json``) of the same scenario on the same dataset. Every assertion's measured value and
every site behind it (idle bytes/s per site, growth per cycle per site, cache entries per group) is
judged regressed / improved / same against a tolerance per assertion (declared with it; override
with ``--tolerance idle_rate=512,10%``). Exit status (the README's table): 0 nothing regressed, 1 a
regression, 2 unusable input (a missing or damaged file, a different scenario or dataset: one line
saying which differs). The logic is :func:`relaysim.analysis.compare`; this is its shell.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from relaysim.errors import ExitCode, UsageError

FORMATS = ("text", "markdown", "json")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare a run (or soak) report with a baseline: what regressed, per assertion and site",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("base", type=Path, metavar="BASE",
                   help="baseline report.json (or a soak's summary.json or directory)")
    p.add_argument("new", type=Path, metavar="NEW", help="the report to judge against it")
    add_compare_options(p)
    p.add_argument("--format", default="text", choices=FORMATS,
                   help="stdout: a text table, markdown for a pull-request comment, or JSON (default text)")
    p.add_argument("--junit-xml", type=Path, default=None, metavar="FILE",
                   help="also write JUnit XML: one test case per compared figure, a regression fails it")
    p.set_defaults(func=compare_command)


def add_compare_options(p: argparse.ArgumentParser) -> None:
    """``--tolerance``, shared with ``relaysim run --baseline``."""
    p.add_argument("--tolerance", action="append", default=[], metavar="NAME=ABS[,REL%]",
                   help="noise allowed on an assertion's figures (and its sites), e.g. idle_rate=512 or "
                        "heap_delta=10%% or idle_rate=512,10%%; repeatable (default: each assertion's own)")


def tolerances(specs: Sequence[str]) -> dict[str, Any]:
    """``--tolerance`` values as ``{assertion: Tolerance}``; UsageError on a malformed one."""
    from relaysim.analysis import parse_tolerance

    out = {}
    for spec in specs:
        try:
            name, tol = parse_tolerance(spec)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        out[name] = tol
    return out


def read_side(path: Path) -> Any:
    """A report from ``path``: a report file, or a soak directory's ``summary.json``."""
    from relaysim.report import read_report

    if path.is_dir():
        summary = path / "summary.json"
        if not summary.is_file():
            raise UsageError(f"{path}: a directory without summary.json (not a finished soak?)")
        path = summary
    return read_report(path)


def compare_reports(base: Any, new: Any, tol: dict[str, Any], base_path: Path, new_path: Path) -> Any:
    """:func:`relaysim.analysis.compare` of two reports; UsageError (exit 2) saying what differs."""
    from relaysim.analysis import Incomparable, compare
    from relaysim.report import subject_of

    try:
        return compare(subject_of(base), subject_of(new), tol)
    except Incomparable as exc:
        raise UsageError(f"cannot compare {new_path} with {base_path}: {'; '.join(exc.reasons)}") from None


def render(comparison: Any, fmt: str) -> str:
    """The comparison in ``fmt`` ("text", "markdown" or "json")."""
    from relaysim.report import comparison_markdown, render_comparison

    if fmt == "markdown":
        return comparison_markdown(comparison)
    if fmt == "json":
        import orjson

        from relaysim.report import to_dict

        doc = {"verdict": comparison.verdict.value, **to_dict(comparison)}  # type: ignore[dict-item]
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
    return render_comparison(comparison)


def exit_code(comparison: Any) -> ExitCode:
    from relaysim.analysis import Change

    return ExitCode.FAILED if comparison.verdict is Change.REGRESSED else ExitCode.PASSED


def compare_command(args: argparse.Namespace) -> int:
    from relaysim.report import comparison_suite, write_junit

    tol = tolerances(args.tolerance)
    base, new = read_side(args.base), read_side(args.new)
    comparison = compare_reports(base, new, tol, args.base, args.new)
    sys.stdout.write(render(comparison, args.format))
    if args.junit_xml:
        write_junit(args.junit_xml, [comparison_suite(comparison)])
    return int(exit_code(comparison))
