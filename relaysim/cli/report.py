"""``relaysim report DIR``: re-render a soak's ``report.html`` from its output directory's files alone.

Reads ``timeline.jsonl``, ``events.jsonl`` and (when the soak finished) ``summary.json``, and writes
``DIR/report.html`` atomically; works on a killed soak too (the verdicts are then recomputed from
the timeline and events, and the page says so). ``summary.json`` is never rewritten: it holds what
only the live run knew (the app, the browser, the relay's view at each idle point), so it cannot
be recomputed from the files. Exit status 0 when the page was written, 2 for a usage problem (no
such directory, no timeline, a damaged line: one line on stderr naming the file).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="re-render a soak's report.html from its output directory",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="a soak output directory (relaysim soak --out DIR)")
    p.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    from relaysim.report import write_html

    path = write_html(args.dir)
    print(f"report: {path}")
    return 0
