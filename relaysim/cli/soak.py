"""``relaysim soak``: seeded random browsing with idle periods and live traffic for hours, judged by trends.

Writes a crash-safe output directory (``--out DIR``, default ``soak-YYYYmmdd-HHMMSS``):
``timeline.jsonl`` and ``events.jsonl`` as it goes, ``summary.json`` and ``report.html`` at the end
(also after Ctrl-C or SIGTERM). ``--resume DIR`` continues a stopped soak where it stopped, with the
settings it was started with. Exit status as ``relaysim run``: 0 passed, 1 a verdict failed, 2 a
usage or environment problem, 3 nothing could be judged (``--allow-unavailable`` makes that 0).

``--browsers N`` runs N such soaks at once against one relay, each in its own browser session (local
Chromium, or a Selenium Grid with ``--webdriver-url``) and its own directory ``OUT/session-K/``; the
``--app`` values are spread over the sessions in turn. ``OUT/summary.json`` and ``OUT/report.html``
put the sessions side by side and name the weakest (docs/grid.md).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from relaysim.errors import UsageError

DEFAULT_TRAFFIC = "notes=4/m,replies=1/m,reactions=4/m,reposts=1/m,zaps=6/h,profiles=2/h"
"""One person's feed and notifications: a few notes a minute from the people they follow, now and
then a reply, reaction or repost aimed at them, a zap every ten minutes. A soak asks whether a client
can stay open for a person's day, so its default load is one person's. ``relaysim serve``'s default
(docs/traffic.md: 13.6 events/s relay-wide, ~3.5/s into one viewer's feed and notifications) is a
stress mix: at ~1 KB per event the seed's bump-allocated heap would reach the 128 MB restart
threshold every ~4 h from the live events alone; pass it with ``--traffic`` to soak under stress."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "soak",
        help="run a client for hours (random browsing, idle periods, live traffic) and judge the trends",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    length = p.add_mutually_exclusive_group()
    length.add_argument("--hours", type=float, default=None, metavar="H", help="soak length (default: 10)")
    length.add_argument("--minutes", type=float, default=None, metavar="M", help="soak length in minutes")
    p.add_argument("--app", action="append", default=None,
                   help="builtin | 'builtin?leaks=idle' | http(s)://URL | DIR (default: builtin); with "
                        "--browsers N it may be given up to N times, spread over the sessions in turn")
    p.add_argument("--adapter", default=None, help="adapter TOML for --app (default: builtin's own)")
    p.add_argument("--traffic", default=DEFAULT_TRAFFIC, metavar="RATES",
                   help=f"live traffic from the relay, or 'off' (default: {DEFAULT_TRAFFIC})")
    p.add_argument("--interval", type=float, default=10.0, metavar="S", help="seconds between samples (10)")
    p.add_argument("--seed", type=int, default=1, help="seed of the browsing and the traffic (1)")
    p.add_argument("--browse", type=float, default=90.0, metavar="S",
                   help="mean seconds of browsing between idle periods (90)")
    p.add_argument("--think", default="10,40", metavar="LO,HI",
                   help="seconds a person reads after each browsing step, drawn between LO and HI "
                        "(default 10,40; '1,4' is a stress pace; one number fixes it)")
    p.add_argument("--idle-window", type=float, default=30.0, metavar="S", help="idle window in seconds (30)")
    p.add_argument("--idle-settle", type=float, default=5.0, metavar="S",
                   help="seconds since the last EOSE before an idle window (5)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output directory (default: soak-YYYYmmdd-HHMMSS); must not hold a soak yet")
    p.add_argument("--resume", type=Path, default=None, metavar="DIR",
                   help="continue the stopped soak in DIR with its own settings")
    p.add_argument("--browser", default=None, choices=("chromium", "firefox", "remote"),
                   help="default: remote with --webdriver-url, else chromium")
    p.add_argument("--webdriver-url", default=None,
                   help="W3C WebDriver / Selenium Grid URL, e.g. http://127.0.0.1:4444 (remote browser)")
    p.add_argument("--browsers", type=int, default=None, metavar="N",
                   help="N browser sessions at once against one relay, each its own soak (docs/grid.md)")
    p.add_argument("--bind", default=None, metavar="HOST[:PORT]",
                   help="where the relay listens (default 127.0.0.1, any free port); 0.0.0.0 for Grid "
                        "nodes on other machines")
    p.add_argument("--public-url", default=None, metavar="URL",
                   help="where the browsers reach the relay, e.g. http://relay-host:7447/ (default: the "
                        "bound address); the /control endpoints stay loopback-only")
    p.add_argument("--relay-url", default=None, metavar="URL",
                   help="with --browsers: use this running relay (relaysim serve) instead of starting one")
    p.add_argument("--headed", action="store_true", help="show the browser window")
    p.add_argument("--progress", default="auto", choices=("auto", "live", "plain", "off"),
                   help="live panel on a terminal, plain lines every minute otherwise (auto)")
    p.add_argument("--allow-unavailable", action="store_true",
                   help="exit 0, not 3, when no verdict could be reached")
    p.add_argument("--junit-xml", type=Path, default=None, metavar="FILE",
                   help="also write JUnit XML: one test case per assertion of the summary")
    p.set_defaults(func=soak_command)


def _positive(value: float, flag: str) -> None:
    if not value > 0:
        raise UsageError(f"{flag} must be > 0, got {value:g}")


def _think(text: str) -> tuple[float, float]:
    """``--think LO,HI`` (or one number): the think-time range, checked."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"--think must be LO,HI in seconds (or one number), got {text!r}") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or not 0 <= values[0] <= values[1] or not all(math.isfinite(v) for v in values):
        raise UsageError(f"--think must be LO,HI with 0 <= LO <= HI seconds, got {text!r}")
    return values[0], values[1]


def _kind(args: argparse.Namespace) -> str:
    kind = str(args.browser or ("remote" if args.webdriver_url else "chromium"))
    if args.webdriver_url and kind != "remote":
        raise UsageError("--webdriver-url needs --browser remote (or no --browser)")
    return kind


def _grid(args: argparse.Namespace) -> bool:
    """Whether this soak runs as a batch of sessions (``--browsers``, or a relay placed for other hosts)."""
    return any(v is not None for v in (args.browsers, args.bind, args.public_url, args.relay_url))


def _options(args: argparse.Namespace) -> Any:
    from relaysim.browser import BrowserSpec
    from relaysim.soak import SoakMeta, SoakOptions, default_out_dir
    from relaysim.traffic.rates import parse_rates

    if args.resume is not None:
        flags = (("--out", args.out), ("--hours", args.hours), ("--minutes", args.minutes))
        given = [f for f, v in flags if v]
        if given:
            raise UsageError(f"--resume DIR continues a soak with its own settings: drop {', '.join(given)}")
        if not (args.resume / "timeline.jsonl").is_file():
            raise UsageError(f"{args.resume}: no timeline.jsonl here (not a soak output directory?)")
        meta = SoakMeta(duration_s=0.0)  # replaced by the directory's own
        out = args.resume
    else:
        if args.minutes is not None:
            _positive(args.minutes, "--minutes")
        hours = 10.0 if args.hours is None else args.hours
        if args.minutes is not None:
            hours = args.minutes / 60
        _positive(hours, "--hours")
        for value, flag in ((args.interval, "--interval"), (args.browse, "--browse"),
                            (args.idle_window, "--idle-window")):
            _positive(value, flag)
        if args.idle_settle < 0:
            raise UsageError(f"--idle-settle must be >= 0, got {args.idle_settle:g}")
        traffic = None if args.traffic in ("off", "none", "") else args.traffic
        if traffic is not None:
            parse_rates(traffic)  # a bad spec is one line naming the item
        out = args.out or default_out_dir()
        if (out / "timeline.jsonl").exists():
            raise UsageError(f"{out}: already holds a soak (use --resume {out} to continue it)")
        out.mkdir(parents=True, exist_ok=True)
        apps = args.app or ["builtin"]
        if len(apps) > 1 and not _grid(args):
            raise UsageError(f"{len(apps)} --app values need --browsers N (one soak runs one app)")
        meta = SoakMeta(
            duration_s=hours * 3600, app=apps[0], adapter=args.adapter, traffic=traffic,
            interval=args.interval, seed=args.seed, browse_s=args.browse, think_s=_think(args.think),
            idle_window=args.idle_window,
            idle_settle=args.idle_settle, browser=_kind(args), webdriver_url=args.webdriver_url,
        )
    spec = BrowserSpec(kind=_kind(args), headed=args.headed, webdriver_url=args.webdriver_url)
    return SoakOptions(meta=meta, out=out, resume=args.resume is not None, browser=spec,
                       allow_unavailable=args.allow_unavailable)


def _grid_options(args: argparse.Namespace) -> Any:
    from relaysim.grid import GridSoakOptions, RelayPlace, spread

    if args.resume is not None:
        raise UsageError("--resume continues one session's directory: give it OUT/session-K, without "
                         "--browsers, --bind, --public-url or --relay-url")
    n = 1 if args.browsers is None else args.browsers
    apps = spread(args.app or ["builtin"], n)
    if args.relay_url is not None and args.bind is not None:
        raise UsageError("--relay-url uses a running relay: --bind has nothing to place")
    place = RelayPlace.parse(args.bind, args.public_url)
    single = _options(argparse.Namespace(**{**vars(args), "app": [apps[0]], "browsers": n}))
    return GridSoakOptions(meta=single.meta, apps=apps, out=single.out, browser=single.browser, place=place,
                           relay_url=args.relay_url, allow_unavailable=args.allow_unavailable)


def grid_soak_command(args: argparse.Namespace) -> int:
    from relaysim.grid import render_grid_table, run_grid_soak

    options = _grid_options(args)
    print(f"soak: {len(options.apps)} session(s), writing {options.out}/session-K/ (timeline.jsonl and "
          f"events.jsonl as they go); summary.json and report.html at the end", flush=True)
    result = run_grid_soak(options, args.progress)
    print(render_grid_table(result.summary), end="")
    print(f"stopped: {result.stop_reason}")
    print(f"summary: {result.out / 'summary.json'}\nreport: {result.out / 'report.html'}")
    if args.junit_xml:
        from relaysim.grid import grid_junit_suites
        from relaysim.report import write_junit

        write_junit(args.junit_xml, grid_junit_suites(result.summary))  # one suite per session
        print(f"junit: {args.junit_xml}")
    return int(result.exit_code)


def soak_command(args: argparse.Namespace) -> int:
    from relaysim.report import render_table

    if _grid(args):
        return grid_soak_command(args)
    from relaysim.soak import read_prior, run_soak
    from relaysim.soak.progress import open_progress

    options = _options(args)
    total = (read_prior(options.out).meta if options.resume else options.meta).duration_s
    print(f"soak: writing {options.out}/ (timeline.jsonl and events.jsonl as it goes; summary.json and "
          "report.html at the end)", flush=True)
    progress = open_progress(args.progress, f"relaysim soak {options.out}", total)
    try:
        result = run_soak(options, progress)
    finally:
        progress.close()
    print(render_table(result.report, width=110), end="")
    print(f"stopped: {result.stop_reason}; {result.written} samples written by this process")
    print(f"summary: {result.out / 'summary.json'}\nreport: {result.out / 'report.html'}")
    if args.junit_xml:
        from relaysim.report import report_suite, write_junit

        write_junit(args.junit_xml, [report_suite(result.report)])
        print(f"junit: {args.junit_xml}")
    return int(result.exit_code)
