"""``relaysim run --browsers N``: the options and the command for a batch of runs (relaysim.grid).

Kept apart from :mod:`relaysim.cli.run` so that module stays about one run: it registers these options
(:func:`add_batch_options`) and hands a batch over (:func:`wants_batch`, :func:`batch_command`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from relaysim.errors import UsageError

__all__ = ["add_batch_options", "batch_command", "wants_batch"]


def add_batch_options(p: Any) -> None:
    p.add_argument("more_scenarios", nargs="*", metavar="SCENARIO",
                   help="with --browsers: more scenarios, spread over the sessions (give them first)")
    p.add_argument("--browsers", type=int, default=None, metavar="N",
                   help="N browser sessions at once against one relay: one scenario runs N times, several "
                        "scenarios or --variant apps are spread over them (docs/grid.md)")
    p.add_argument("--variant", action="append", default=None, metavar="APP",
                   help="with --browsers: also run against APP (repeatable), e.g. 'builtin?leaks=idle'")
    p.add_argument("--bind", default=None, metavar="HOST[:PORT]",
                   help="with --browsers: where the relay listens (default 127.0.0.1, any free port)")
    p.add_argument("--public-url", default=None, metavar="URL",
                   help="with --browsers: where the browsers reach the relay (default: the bound address)")


def wants_batch(args: argparse.Namespace) -> bool:
    """A batch: ``--browsers`` given, or a relay placed for browsers elsewhere, or several scenarios."""
    return bool(args.browsers is not None or args.bind or args.public_url or args.more_scenarios
                or args.variant)


def batch_command(args: argparse.Namespace, default_scenario: str,
                  browser_spec: Callable[[argparse.Namespace, Any], Any]) -> int:
    """The batch; ``relaysim run`` gives its default scenario and how it picks the browser."""
    from relaysim.grid import RelayPlace, render_grid_table
    from relaysim.grid._run import GridRunOptions, jobs_for, run_grid_batch
    from relaysim.scenario import load_scenario

    n = 1 if args.browsers is None else args.browsers
    if n < 1:
        raise UsageError(f"--browsers must be >= 1, got {n}")
    for flag, value in (("--relay-url", args.relay_url), ("--timeline", args.timeline)):
        if value:
            raise UsageError(f"{flag} does not apply to a batch (--browsers): each session's report goes "
                             "beside --report")
    if args.baseline is not None or args.format != "text":
        # each session is its own run with its own report: compare those with `relaysim compare`
        flag = "--baseline" if args.baseline is not None else f"--format {args.format}"
        raise UsageError(f"{flag} does not apply to a batch (--browsers): compare a session's report "
                         "(STEM.session-K.json beside --report) with relaysim compare")
    scenarios = [load_scenario(s) for s in [args.scenario or default_scenario, *args.more_scenarios]]
    spec = browser_spec(args, scenarios[0].browser)
    apps: list[str | None] = [args.app, *args.variant] if args.variant else [args.app]
    jobs = jobs_for(scenarios, apps, n)
    options = GridRunOptions(
        jobs=tuple(jobs), browsers=n, browser=spec, place=RelayPlace.parse(args.bind, args.public_url),
        adapter=args.adapter, idle_window=args.idle_window, idle_windows=args.idle_windows,
        idle_settle=args.idle_settle, report=args.report, allow_unavailable=args.allow_unavailable,
    )
    summary = run_grid_batch(options)
    print(render_grid_table(summary), end="")
    if args.junit_xml:
        from relaysim.grid import grid_junit_suites
        from relaysim.report import write_junit

        write_junit(args.junit_xml, grid_junit_suites(summary))  # one suite per session
        print(f"junit: {args.junit_xml}")
    if args.report:
        print(f"summary: {args.report} (each session's report beside it: {args.report.stem}.session-K.json)")
    return int(summary.exit_code)
