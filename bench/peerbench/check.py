"""Checking each relay's answers after the clock stops: count, no extras, newest-N, order.

A relay that is fast because it answers less (or more) is not fast: every row's answers are
compared with the reference (``workload.reference_answers``, a brute-force NIP-01 model) and the
table shows how many were exact. Differences are listed, not hidden; some are a peer's documented
choice (a tie order, a limit cap), and the report says which.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

__all__ = ["check_fanout", "check_publish", "check_queries", "event_ids"]


def event_ids(payloads: Sequence[bytes]) -> list[str]:
    """The ids of the EVENT messages among ``payloads``, in the order received."""
    ids = []
    for payload in payloads:
        if payload[2:4] == b"EV":
            message = orjson.loads(payload)
            ids.append(message[2]["id"])
    return ids


def check_queries(
    answers: Sequence[Sequence[bytes]],
    expected: Sequence[Sequence[str]],
    filters: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """One answer per query: exact (same ids, same order), else what differs."""
    exact = 0
    problems: list[dict[str, Any]] = []
    for payloads, want, flt in zip(answers, expected, filters, strict=False):
        got = event_ids(payloads)
        if got == list(want):
            exact += 1
            continue
        got_set, want_set = set(got), set(want)
        common = [i for i in got if i in want_set]
        problems.append(
            {
                "filter": {
                    k: (v if k not in ("ids", "authors", "#e", "#p") else f"{len(v)} values")
                    for k, v in flt.items()
                },
                "got": len(got),
                "expected": len(want),
                "extras": len(got_set - want_set),
                "missing": len(want_set - got_set),
                "duplicates": len(got) - len(got_set),
                "order_differs": common != [i for i in want if i in got_set],
            }
        )
    return {"queries": len(answers), "exact": exact, "problems": problems}


def check_publish(payloads: Sequence[bytes], sent: int) -> dict[str, Any]:
    """OK messages: how many said true, and the reasons of those that did not."""
    accepted = 0
    reasons: Counter[str] = Counter()
    other: Counter[str] = Counter()
    for payload in payloads:
        message = orjson.loads(payload)
        if message[0] == "OK":
            if message[2] is True:
                accepted += 1
            else:
                reasons[str(message[3])[:80]] += 1
        else:
            other[str(message[0])] += 1
    return {"sent": sent, "ok_true": accepted, "refused": dict(reasons.most_common(3)), "other": dict(other)}


def check_fanout(
    counts: Sequence[int], sample: Sequence[bytes], expected_ids: Sequence[str]
) -> dict[str, Any]:
    """Every connection got every fan-out event once; the sampled connections got the right ones."""
    want = len(expected_ids)
    ids = event_ids(sample)
    return {
        "connections": len(counts),
        "all_complete": all(c == want for c in counts),
        "short": sum(1 for c in counts if c < want),
        "extra": sum(1 for c in counts if c > want),
        "sample_ids_ok": set(ids) <= set(expected_ids),
    }
