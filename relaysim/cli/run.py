"""``relaysim run [SCENARIO]``: run one scenario against a client in a real browser and judge it.

Exit status (the README's table, :class:`relaysim.errors.ExitCode`): 0 when no assertion failed (an
UNAVAILABLE one beside a PASS is shown, not failed), 1 when an assertion failed, 2 for a usage or
environment problem (one line on stderr, no traceback), 3 when nothing could be judged (every asserted
figure unavailable; ``--allow-unavailable`` makes that 0).
Without SCENARIO the embedded default runs: ``scenarios/feed-browsing.toml`` against the built-in
reference client. ``--baseline BASE.json`` then compares the run with a baseline report as ``relaysim
compare`` does (exit 1 on a regression too; 2 when BASE ran another scenario or dataset) and records
the baseline's identity in the report; ``--format markdown`` prints a pull-request comment and
``--junit-xml FILE`` writes JUnit XML.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from relaysim.cli._batch import add_batch_options, batch_command, wants_batch
from relaysim.cli.compare import add_compare_options
from relaysim.errors import EnvironmentProblem, ExitCode, UsageError

DEFAULT_SCENARIO = "feed-browsing"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a scenario against a web client in a real browser",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("scenario", nargs="?", default=None,
                   help="scenario file or name in scenarios/ (default: feed-browsing)")
    p.add_argument("--app", default=None,
                   help="builtin | 'builtin?leaks=idle' | http(s)://URL | DIR (default: the scenario's app)")
    p.add_argument("--adapter", default=None, help="adapter TOML for --app (default: builtin's own)")
    p.add_argument("--browser", default=None, choices=("chromium", "firefox", "remote"),
                   help="default: the scenario's [browser] name, else chromium")
    p.add_argument("--webdriver-url", default=None,
                   help="W3C WebDriver / Selenium Grid URL (with --browser remote)")
    p.add_argument("--relay-url", default=None, help="use this running relay instead of starting one")
    p.add_argument("--test-headers", action="store_true",
                   help="serve --app DIR with COOP/COEP (cross-origin isolation: SharedArrayBuffer and "
                        "performance.measureUserAgentSpecificMemory); the built-in client always has them")
    p.add_argument("--snapshots", action="store_true",
                   help="take a heap snapshot of the page at each boundary of the measured repeat: names "
                        "the detached DOM trees and the objects that hold what grew (slower)")
    p.add_argument("--report", type=Path, default=None, help="write the JSON report here")
    p.add_argument("--timeline", type=Path, default=None, help="append samples to this JSONL file")
    p.add_argument("--idle-window", type=float, default=None, metavar="S",
                   help="idle window in seconds (overrides the scenario's)")
    p.add_argument("--idle-windows", type=int, default=None, metavar="N",
                   help="measure N idle windows and keep the weakest (e.g. 3)")
    p.add_argument("--idle-settle", type=float, default=None, metavar="S",
                   help="seconds since the last EOSE before an idle window (overrides the scenario's)")
    p.add_argument("--headed", action="store_true", help="show the browser window")
    p.add_argument("--progress", default="auto", choices=("auto", "live", "plain", "off"),
                   help="on stderr: a live panel on a terminal, a line every 30 s otherwise (auto)")
    p.add_argument("--allow-unavailable", action="store_true",
                   help="exit 0, not 3, when no asserted figure could be read")
    p.add_argument("--baseline", type=Path, default=None, metavar="BASE.json",
                   help="then compare with this report (relaysim compare): exit 1 on a regression too")
    add_compare_options(p)
    p.add_argument("--format", default="text", choices=("text", "markdown"),
                   help="stdout: the text table, or markdown for a pull-request comment (default text)")
    p.add_argument("--junit-xml", type=Path, default=None, metavar="FILE",
                   help="also write JUnit XML: one test case per assertion (and per compared figure)")
    add_batch_options(p)  # --browsers N, --variant, --bind, --public-url (relaysim.grid)
    p.set_defaults(func=run_command)


def _positive(value: float | None, flag: str) -> None:
    if value is not None and not value > 0:
        raise UsageError(f"{flag} must be > 0, got {value:g}")


def browser_spec(args: argparse.Namespace, wanted: Any) -> Any:
    """The browser to start: command-line flags win over the scenario's ``[browser]`` table."""
    from relaysim.browser import BrowserSpec

    kind = args.browser or wanted.name or ("remote" if args.webdriver_url else "chromium")
    if args.webdriver_url and kind != "remote":
        raise UsageError("--webdriver-url needs --browser remote")
    headed = args.headed or wanted.headless is False
    return BrowserSpec(kind=kind, headed=headed, webdriver_url=args.webdriver_url,
                       window_size=wanted.window_size, args=tuple(wanted.args))


def run_command(args: argparse.Namespace) -> int:
    from selenium.common.exceptions import WebDriverException

    from relaysim.scenario import load_scenario
    from relaysim.scenario.runner import RunOptions, run
    from relaysim.soak.progress import RunHooks, open_progress

    _positive(args.idle_window, "--idle-window")
    if args.idle_settle is not None and not args.idle_settle >= 0:
        raise UsageError(f"--idle-settle must be >= 0, got {args.idle_settle:g}")
    if args.idle_windows is not None and args.idle_windows < 1:
        raise UsageError(f"--idle-windows must be >= 1, got {args.idle_windows}")
    if wants_batch(args):
        return batch_command(args, DEFAULT_SCENARIO, browser_spec)
    scenario = load_scenario(args.scenario or DEFAULT_SCENARIO)
    baseline = _read_baseline(args, scenario.name)
    spec = browser_spec(args, scenario.browser)
    options = RunOptions(
        app=args.app,
        browser=spec,
        relay_url=args.relay_url,
        adapter=args.adapter,
        idle_window=args.idle_window,
        idle_windows=args.idle_windows,
        idle_settle=args.idle_settle,
        timeline=args.timeline,
        report=args.report,
        test_headers=True if args.test_headers else None,
        snapshots=args.snapshots,
    )
    progress = open_progress(args.progress, f"relaysim run {scenario.name}", every_s=30.0)
    options.progress = RunHooks(progress, args.idle_window, args.idle_windows)
    try:
        result = run(scenario, options)
    except WebDriverException as exc:
        # The browser died or a page script threw mid-run: say what happened on one line.
        lines = (exc.msg or "").strip().splitlines()
        first = lines[0] if lines else type(exc).__name__
        raise EnvironmentProblem(f"browser failed during the run: {first}") from exc
    finally:
        progress.close()
    unreached = result.unreached_message()
    if unreached is not None:  # nothing the page did was measured: not a verdict (the report says so too)
        raise UsageError(unreached)
    code = int(result.exit_code(args.allow_unavailable))
    if baseline is None and args.format == "text" and not args.junit_xml:
        print_result(result)
        if args.report:
            print(f"report: {args.report}")
        return code
    return _finish(args, result, baseline, code)


def _read_baseline(args: argparse.Namespace, scenario: str) -> Any:
    """``--baseline``: read and checked before the run, so a wrong file costs no browser time."""
    from relaysim.cli.compare import read_side, tolerances

    tolerances(args.tolerance)  # a malformed --tolerance is a usage error before anything starts
    if args.baseline is None:
        if args.tolerance:
            raise UsageError("--tolerance needs --baseline")
        return None
    base = read_side(args.baseline)
    if base.scenario.name != scenario:
        raise UsageError(
            f"cannot compare with {args.baseline}: the scenario differs: BASE ran {base.scenario.name!r}, "
            f"this run is {scenario!r}"
        )
    return base


def _finish(args: argparse.Namespace, result: Any, baseline: Any, code: int) -> int:
    """After the run: compare with the baseline, record its identity in the report, print in
    ``--format``, write ``--junit-xml``; exit 1 when the run failed or regressed."""
    import dataclasses

    from relaysim.cli.compare import compare_reports, exit_code, render, tolerances
    from relaysim.report import (
        Baseline,
        comparison_suite,
        identity_of,
        report_markdown,
        report_suite,
        write_junit,
        write_report,
    )
    from relaysim.scenario.runner import build_report

    report = build_report(result)
    suites = [report_suite(report)]
    out = sys.stdout if args.format == "text" else sys.stderr  # stdout holds only the markdown
    if args.format == "markdown":
        sys.stdout.write(report_markdown(report))
    else:
        print_result(result)
    if baseline is not None:
        try:
            comparison = compare_reports(baseline, report, tolerances(args.tolerance), args.baseline,
                                         args.report or Path("this run"))
        except UsageError:
            if args.junit_xml:
                write_junit(args.junit_xml, suites)  # the run's own verdicts, even when incomparable
            raise
        regressed = tuple(r.label for r in comparison.regressions)
        report = dataclasses.replace(report, baseline=Baseline(
            path=str(args.baseline), identity=identity_of(baseline), verdict=comparison.verdict.value,
            regressed=regressed,
        ))
        if args.report:
            write_report(args.report, report)  # again, now with the baseline it was compared with
        suites.append(comparison_suite(comparison))
        sys.stdout.write(("\n" if args.format == "markdown" else "") + render(comparison, args.format))
        if exit_code(comparison) == ExitCode.FAILED:
            code = int(ExitCode.FAILED)
    if args.junit_xml:
        write_junit(args.junit_xml, suites)
        print(f"junit: {args.junit_xml}", file=out)
    if args.report:
        print(f"report: {args.report}", file=out)
    return code


def print_result(result: Any, file: Any = None) -> None:
    """The assertion table (:func:`relaysim.report.render_table`), then what it cost and what is missing."""
    from relaysim.report import render_table
    from relaysim.scenario.runner import build_report

    out = file or sys.stdout
    out.write(render_table(build_report(result), width=110))
    for outcome in result.idle:
        if outcome.subscriptions_open:
            out.write(f"still subscribed when told to go idle: {outcome.open_detail}\n")
    cost = result.sampler_cost
    probe = result.probe_cost
    probe_text = "unavailable" if probe is None else f"{probe.bytes_per_probe:g} B"
    deep = (
        f", plus {cost.isolate_reads} deep readings at {cost.ms_per_isolate_read} ms (DevTools, no WebDriver)"
        if cost.isolate_reads
        else ""
    )
    out.write(
        f"{result.seconds:.1f} s; {cost.samples} samples at {cost.ms_per_sample} ms and "
        f"{cost.round_trips_per_sample} WebDriver round trips each{deep}; probe cost {probe_text}\n"
    )
