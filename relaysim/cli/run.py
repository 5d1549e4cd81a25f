"""``relaysim run [SCENARIO]``: run one scenario against a client in a real browser and judge it.

Exit status: 0 when every assertion passed (an UNAVAILABLE one is shown, not failed), 1 when an
assertion failed, 2 for a usage or environment problem (one line on stderr, no traceback).
Without SCENARIO the embedded default runs: ``scenarios/feed-browsing.toml`` against the built-in
reference client.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from relaysim.errors import UsageError

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
    p.add_argument("--browser", default="chromium", choices=("chromium", "firefox", "remote"))
    p.add_argument("--webdriver-url", default=None,
                   help="W3C WebDriver / Selenium Grid URL (with --browser remote)")
    p.add_argument("--relay-url", default=None, help="use this running relay instead of starting one")
    p.add_argument("--report", type=Path, default=None, help="write the JSON report here")
    p.add_argument("--timeline", type=Path, default=None, help="append samples to this JSONL file")
    p.add_argument("--idle-window", type=float, default=None, metavar="S",
                   help="idle window in seconds (overrides the scenario's)")
    p.add_argument("--idle-windows", type=int, default=None, metavar="N",
                   help="measure N idle windows and keep the weakest (e.g. 3)")
    p.add_argument("--headed", action="store_true", help="show the browser window")
    p.set_defaults(func=run_command)


def _positive(value: float | None, flag: str) -> None:
    if value is not None and not value > 0:
        raise UsageError(f"{flag} must be > 0, got {value:g}")


def run_command(args: argparse.Namespace) -> int:
    from relaysim.browser import BrowserSpec
    from relaysim.scenario import load_scenario
    from relaysim.scenario.runner import RunOptions, run

    _positive(args.idle_window, "--idle-window")
    if args.idle_windows is not None and args.idle_windows < 1:
        raise UsageError(f"--idle-windows must be >= 1, got {args.idle_windows}")
    if args.webdriver_url and args.browser != "remote":
        raise UsageError("--webdriver-url needs --browser remote")
    scenario = load_scenario(args.scenario or DEFAULT_SCENARIO)
    spec = BrowserSpec(kind=args.browser, headed=args.headed, webdriver_url=args.webdriver_url)
    options = RunOptions(
        app=args.app,
        browser=spec,
        relay_url=args.relay_url,
        adapter=args.adapter,
        idle_window=args.idle_window,
        idle_windows=args.idle_windows,
        timeline=args.timeline,
        report=args.report,
    )
    result = run(scenario, options)
    print_result(result)
    if args.report:
        print(f"report: {args.report}")
    return result.exit_code


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "B" and abs(value) >= 1024 * 1024:
        return f"{value / (1024 * 1024):,.2f} MiB"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f} {unit}"
    return f"{value:,.0f} {unit}"


def print_result(result: Any, file: Any = None) -> None:
    """The assertion table (rich), then the run's cost figures."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file or sys.stdout, width=140)
    table = Table(title=f"relaysim run: {result.scenario.name} on {result.app}")
    for col in ("assertion", "measured", "threshold", "verdict", "detail"):
        table.add_column(col, overflow="fold")
    style = {"PASS": "green", "FAIL": "bold red", "UNAVAILABLE": "yellow"}
    for r in result.results.values():
        v = str(r.verdict)
        table.add_row(r.name, _fmt(r.measured, r.unit), f"{r.comparison} {_fmt(r.threshold, r.unit)}",
                      f"[{style[v]}]{v}[/]", r.detail)
    console.print(table)
    for outcome in result.idle:
        grown = [d for d in outcome.site_deltas if d.bytes > 0]
        if grown:
            top = sorted(grown, key=lambda d: -d.bytes)[:3]
            sites = ", ".join(f"{d.name} +{d.bytes:,} B ({d.count})" for d in top)
            console.print(f"idle growth by site: {sites}")
        if outcome.subscriptions_open:
            console.print(f"[red]still subscribed when told to go idle:[/] {outcome.open_detail}")
    if result.unavailable:
        console.print("unavailable: " + ", ".join(u["figure"] for u in result.unavailable))
    cost = result.sampler_cost
    probe = result.probe_cost
    console.print(
        f"verdict {result.verdict} in {result.seconds:.1f} s; {cost.get('samples')} samples, "
        f"{cost.get('ms_per_sample')} ms and {cost.get('round_trips_per_sample')} WebDriver round trips "
        f"per sample; probe cost {'—' if probe is None else f'{probe.bytes_per_probe:g} B'}"
    )
