"""What is in a dataset: counts by kind, authors, time span, and a few shape figures.

Pure: :func:`dataset_info` takes events, :func:`format_info` returns text. The figures are the
ones a reader checks against the spec's intent (deepest thread, most-reacted note, zapped sats).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from relaysim.nostr.event import Event

__all__ = ["KIND_NAMES", "Info", "dataset_info", "format_info"]

KIND_NAMES = {
    0: "profile metadata",
    1: "short text note",
    3: "follow list",
    5: "deletion",
    6: "repost",
    7: "reaction",
    16: "generic repost",
    9734: "zap request",
    9735: "zap receipt",
    10002: "relay list",
}


@dataclass(frozen=True)
class Info:
    events: int
    by_kind: tuple[tuple[int, int], ...]  # (kind, count), kinds ascending
    authors: int
    first: int | None
    last: int | None
    max_reactions: int  # most kind-7 events aimed at one event id
    max_reply_depth: int  # longest chain of NIP-10 "reply"/"root" links among the events
    expiring: int
    sha256: str | None = None


def _reply_parent(event: Event) -> str | None:
    """NIP-10: the marked ``reply`` e tag, else the ``root`` one (a direct reply to the root)."""
    root = None
    for tag in event.tags:
        if len(tag) >= 4 and tag[0] == "e":
            if tag[3] == "reply":
                return tag[1]
            if tag[3] == "root":
                root = tag[1]
    return root


def dataset_info(events: Iterable[Event], sha256: str | None = None) -> Info:
    kinds: Counter[int] = Counter()
    authors: set[str] = set()
    reactions: Counter[str] = Counter()
    parents: dict[str, str | None] = {}
    first = last = None
    expiring = 0
    for event in events:
        kinds[event.kind] += 1
        authors.add(event.pubkey)
        first = event.created_at if first is None else min(first, event.created_at)
        last = event.created_at if last is None else max(last, event.created_at)
        if event.kind == 7:
            tags = event.tag_values("e")
            if tags:
                reactions[tags[-1]] += 1  # NIP-25: the target is the last e tag
        elif event.kind == 1:
            parents[event.id] = _reply_parent(event)
        if event.expiration is not None:
            expiring += 1
    depth: dict[str, int] = {}
    for start in parents:
        chain = []
        node: str | None = start
        while node is not None and node in parents and node not in depth:
            chain.append(node)
            node = parents[node]
            if len(chain) > len(parents):  # a cycle: impossible with real ids, but never loop
                break
        base = depth.get(node, -1) if node is not None else -1
        for offset, item in enumerate(reversed(chain), start=1):
            depth[item] = base + offset
    return Info(
        events=sum(kinds.values()),
        by_kind=tuple(sorted(kinds.items())),
        authors=len(authors),
        first=first,
        last=last,
        max_reactions=max(reactions.values(), default=0),
        max_reply_depth=max(depth.values(), default=0),
        expiring=expiring,
        sha256=sha256,
    )


def _when(ts: int | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") + f" ({ts})"


def format_info(info: Info, title: str) -> str:
    """Plain aligned text (stable for tests and logs)."""
    lines = [title, ""]
    width = max((len(str(count)) for _, count in info.by_kind), default=1)
    for kind, count in info.by_kind:
        lines.append(f"  kind {kind:>5}  {count:>{width}}  {KIND_NAMES.get(kind, '')}".rstrip())
    lines.append(f"  {'total':>10}  {info.events:>{width}}")
    lines.append("")
    rows = [
        ("authors", str(info.authors)),
        ("first", _when(info.first)),
        ("last", _when(info.last)),
        (
            "span",
            f"{(info.last - info.first) / 86400:.1f} days"
            if info.first is not None and info.last is not None
            else "-",
        ),
        ("deepest reply", str(info.max_reply_depth)),
        ("most reactions", str(info.max_reactions)),
        ("NIP-40 expiring", str(info.expiring)),
    ]
    if info.sha256:
        rows.append(("sha256", info.sha256))
    label = max(len(name) for name, _ in rows)
    lines.extend(f"{name:<{label}}  {value}" for name, value in rows)
    return "\n".join(lines)
