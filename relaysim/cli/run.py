"""``relaysim run [SCENARIO]``: run one scenario against a client in a real browser and judge it.

Exit status (the README's table, :class:`relaysim.errors.ExitCode`): 0 when no assertion failed (an
UNAVAILABLE one beside a PASS is shown, not failed), 1 when an assertion failed, 2 for a usage or
environment problem (one line on stderr, no traceback), 3 when nothing could be judged (every asserted
figure unavailable; ``--allow-unavailable`` makes that 0).
Without SCENARIO the embedded default runs: ``scenarios/feed-browsing.toml`` against the built-in
reference client.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from relaysim.errors import EnvironmentProblem, UsageError

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
    scenario = load_scenario(args.scenario or DEFAULT_SCENARIO)
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
    print_result(result)
    if args.report:
        print(f"report: {args.report}")
    return int(result.exit_code(args.allow_unavailable))


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
    out.write(
        f"{result.seconds:.1f} s; {cost.samples} samples at {cost.ms_per_sample} ms and "
        f"{cost.round_trips_per_sample} WebDriver round trips each; probe cost {probe_text}\n"
    )
