"""``relaysim dataset build | info | import``: thin wrappers over :mod:`relaysim.dataset`.

``build`` writes deterministic JSONL (to ``-o FILE`` or the cache) and prints where and its
sha256; ``info`` prints counts by kind, authors, time span and sha256 of a named dataset or a
JSONL file; ``import`` checks every line of a JSONL file (ids and signatures included) and names
each bad line as ``FILE:LINE: reason``. Exit status: 0 all good, 1 some lines bad, 2 usage error
(including a file that cannot be read).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from relaysim.dataset import (
    DEFAULT_RELAY_URL,
    build,
    check_relay_url,
    dataset_info,
    ensure_built,
    format_info,
    load_spec,
    read_jsonl,
    write_jsonl,
)
from relaysim.errors import UsageError

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "dataset",
        help="build, inspect and import Nostr event datasets",
        description="Build deterministic signed datasets from a spec, inspect them, import JSONL exports.",
    )
    actions = parser.add_subparsers(dest="dataset_action", metavar="ACTION", required=True)

    p_build = actions.add_parser("build", help="build a dataset to JSONL (deterministic)")
    p_build.add_argument("spec", metavar="NAME_OR_SPEC", help="a dataset name (seed1) or a .toml spec path")
    p_build.add_argument("-o", "--output", type=Path, help="write here (default: the dataset cache)")
    p_build.add_argument(
        "--relay-url",
        default=DEFAULT_RELAY_URL,
        help=f"URL written into relay hints and kind-10002 r tags (default {DEFAULT_RELAY_URL})",
    )
    p_build.set_defaults(func=cmd_build)

    p_info = actions.add_parser("info", help="counts by kind, authors, time span and sha256")
    p_info.add_argument("target", metavar="NAME|FILE", help="a dataset name, a .toml spec, or a JSONL file")
    p_info.add_argument("--relay-url", default=DEFAULT_RELAY_URL, help="relay URL for a named dataset")
    p_info.set_defaults(func=cmd_info)

    p_import = actions.add_parser("import", help="load a JSONL export, verify every event, report bad lines")
    p_import.add_argument("file", type=Path, metavar="FILE")
    p_import.add_argument(
        "-o", "--output", type=Path, help="also write the good events, sorted and without duplicates"
    )
    p_import.set_defaults(func=cmd_import)


def cmd_build(args: argparse.Namespace) -> int:
    url = check_relay_url(args.relay_url)
    if args.output is None:
        path = ensure_built(args.spec, url)
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        count = data.count(b"\n")
    else:
        events = list(build(load_spec(args.spec), url))
        path = args.output
        digest = write_jsonl(path, events)
        count = len(events)
    print(f"wrote {path} ({count} events)")
    print(f"sha256 {digest}")
    return 0


def _is_jsonl_file(target: str) -> bool:
    path = Path(target)
    return path.is_file() and path.suffix != ".toml"


def cmd_info(args: argparse.Namespace) -> int:
    target: str = args.target
    if _is_jsonl_file(target):
        path = Path(target)
    elif "/" in target or target.endswith((".jsonl", ".json")):
        raise UsageError(f"cannot read {target}: No such file or directory")
    else:
        path = ensure_built(target, check_relay_url(args.relay_url))
    data = _read(path)
    result = read_jsonl(path, verify=False)
    info = dataset_info(result.events, sha256=hashlib.sha256(data).hexdigest())
    print(format_info(info, str(path)))
    if result.errors:
        print(f"unreadable lines: {len(result.errors)} (run `relaysim dataset import {path}` for details)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    path: Path = args.file
    result = read_jsonl(path)
    for error in result.errors:
        print(f"{path}:{error.line_no}: {error.reason}", file=sys.stderr)
    bad = len(result.errors)
    summary = f"{len(result.events)} good events in {path}"
    print(summary + (f", {bad} bad line{'s' if bad != 1 else ''}" if bad else ""))
    if args.output is not None:
        unique = {event.id: event for event in result.events}
        events = sorted(unique.values(), key=lambda e: (e.created_at, e.id))
        digest = write_jsonl(args.output, events)
        print(f"wrote {args.output} ({len(events)} events, sha256 {digest})")
    return 1 if bad else 0


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
