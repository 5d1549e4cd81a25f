"""The ``relaysim`` command: a thin ``main(argv)`` over library calls.

Each subcommand lives in its own module exposing ``register(subparsers)``; the parser it adds sets
``func`` to a callable taking the parsed namespace and returning an exit code. Every error meant for
a user (:class:`~relaysim.errors.UsageError`) becomes one line on stderr and exit status 2: a user
mistake never shows a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from relaysim.errors import UsageError

# Subcommand modules, in the order `relaysim --help` lists them.
SUBCOMMANDS = ("serve", "dataset", "run", "soak", "explore", "compare", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relaysim",
        description="A test bench for Nostr web clients that must run for hours without leaking.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"relaysim.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"relaysim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
