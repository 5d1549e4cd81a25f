"""``relaysim explore``: search generated browsing sessions for one that breaks an assertion.

Hypothesis drives the app through every registered browsing step (preconditions from the page shown),
judges the cheap assertions after every step and screens each example for the idle ones; a failing
session is shrunk and written to ``--out`` as ``scenario.toml`` (``relaysim run`` replays it to the
same failing assertion, which explore checks before it reports) next to ``search.json``.

Exit status (:class:`relaysim.errors.ExitCode`): 0 nothing found within the budget, 1 a failing
session found and written, 2 a usage or environment problem (one line on stderr).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from relaysim.errors import UsageError

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, flag: str = "--budget") -> float:
    """``90``, ``90s``, ``10m``, ``1.5h`` -> seconds (> 0)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"{flag} must be a positive duration such as 90s, 10m or 1h, got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "explore",
        help="search generated browsing sessions for one that breaks an assertion, and shrink it",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("--app", default="builtin",
                   help="builtin | 'builtin?leaks=idle' | http(s)://URL | DIR (default builtin)")
    p.add_argument("--adapter", default=None, help="adapter TOML for --app (default: builtin's own)")
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed: the same seed, the same search")
    p.add_argument("--max-examples", type=int, default=100_000, metavar="N",
                   help="stop after N examples (default: only the budget stops the search)")
    p.add_argument("--steps", type=int, default=30, metavar="M", help="most steps per example (default 30)")
    p.add_argument("--budget", default="10m", help="time for the search, e.g. 90s, 5m, 1h (default 10m)")
    p.add_argument("--shrink-budget", default=None,
                   help="time for shrinking once something is found (default: the same as --budget)")
    p.add_argument("--out", type=Path, default=Path("relaysim-explore"),
                   help="directory for scenario.toml and search.json (default ./relaysim-explore)")
    p.add_argument("--idle-window", type=float, default=30.0, metavar="S",
                   help="idle window of the idle protocol on a suspect, and in the written scenario (30)")
    p.add_argument("--idle-settle", type=float, default=5.0, metavar="S",
                   help="seconds since the last EOSE before that window (5)")
    p.add_argument("--idle-sniff", type=float, default=0.3, metavar="S",
                   help="the end-of-example idle screen: seconds between two totalAlloc reads (0.3)")
    p.add_argument("--dataset", default="seed1", help="dataset the relay serves (default seed1)")
    p.add_argument("--browser", default="chromium", choices=("chromium", "firefox", "remote"))
    p.add_argument("--webdriver-url", default=None, help="W3C WebDriver / Grid URL (with --browser remote)")
    p.add_argument("--headed", action="store_true", help="show the browser window")
    p.add_argument("--no-replay", action="store_true", help="do not replay the written scenario")
    p.add_argument("--target", action="store_true",
                   help="Hypothesis targeting: climb towards the assertion that came closest to failing")
    p.set_defaults(func=explore_command)


def _config(args: argparse.Namespace) -> Any:
    from relaysim.browser import BrowserSpec
    from relaysim.explore import ExploreConfig, ExploreOptions

    if args.max_examples < 1:
        raise UsageError(f"--max-examples must be >= 1, got {args.max_examples}")
    if not 1 <= args.steps <= 1000:
        raise UsageError(f"--steps must be from 1 to 1000, got {args.steps}")
    if not args.idle_window > 0 or not args.idle_settle >= 0 or not args.idle_sniff > 0:
        raise UsageError("--idle-window and --idle-sniff must be > 0, --idle-settle >= 0")
    if args.webdriver_url and args.browser != "remote":
        raise UsageError("--webdriver-url needs --browser remote")
    budget = parse_duration(args.budget)
    shrink = parse_duration(args.shrink_budget, "--shrink-budget") if args.shrink_budget else None
    options = ExploreOptions(idle_settle=args.idle_settle, idle_window=args.idle_window,
                             idle_sniff=args.idle_sniff, dataset=args.dataset)
    browser = BrowserSpec(kind=args.browser, headed=args.headed, webdriver_url=args.webdriver_url)
    return ExploreConfig(app=args.app, adapter=args.adapter, seed=args.seed, max_examples=args.max_examples,
                         steps=args.steps, budget=budget, shrink_budget=shrink, out=args.out, browser=browser,
                         options=options, replay=not args.no_replay, targeting=args.target)


def explore_command(args: argparse.Namespace) -> int:
    from relaysim.explore import explore
    from relaysim.explore._progress import progress_for

    config = _config(args)
    result = explore(config, progress_for(sys.stderr))
    r = result.search
    head = (f"{r.examples} examples in {r.seconds:.0f} s ({r.examples_per_minute:.1f}/min), seed {r.seed}, "
            f"stopped: {r.stopped}")
    if not result.found:
        print(f"explore: nothing found -- {head}")
        print(f"explore: {result.report_path}")
        return int(result.exit_code())
    f = r.minimal
    assert f is not None
    print(f"explore: FOUND {f.assertion} FAIL after {f.actions} browsing action(s) -- {head}")
    print(f"explore: found in {r.first_failure_s:.0f} s, shrunk in {r.shrink_s:.0f} s: {f.detail}")
    print(f"explore: wrote {result.scenario_path} and {result.report_path}")
    replay = result.replay
    if replay is None:
        print("explore: replay skipped (--no-replay)")
    elif result.reproduced:
        print(f"explore: replayed with relaysim run: exit {replay['exit_code']}, {f.assertion} FAIL again")
    else:
        print(f"explore: WARNING: the replay did not reproduce it: exit {replay['exit_code']}, "
              f"{f.assertion} {replay['verdict']} ({replay['detail']})")
    return int(result.exit_code())
