"""Per-allocation-site deltas: which site grew between two readings of the alloc counters.

The app's ``__moxie_read_alloc_counters()`` returns cumulative ``count`` and ``bytes`` per site
(the seed's ``allocCounters``/``allocSizes`` arrays). The difference between a reading before and
after a scenario names the site that allocated; sorted by bytes and by count it is the diagnosis a
failing report carries ("noteElements: +18,432 allocations").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["AllocSite", "SiteDelta", "parse_alloc_counters", "site_deltas", "top_sites"]


@dataclass(frozen=True, slots=True)
class AllocSite:
    """One site's cumulative counters: ``site`` id, readable ``name``, ``count``, ``bytes``."""

    site: int | str
    name: str
    count: int
    bytes: int


def parse_alloc_counters(raw: object) -> tuple[AllocSite, ...]:
    """Validate what ``__moxie_read_alloc_counters()`` returned: a list of ``{site, name, count, bytes}``.

    ``name`` defaults to ``str(site)``. Raises ``ValueError`` naming the bad entry.
    """
    if not isinstance(raw, list | tuple):
        raise ValueError(f"alloc counters must be a list, got {type(raw).__name__}")
    out: list[AllocSite] = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValueError(f"alloc counter {i} must be an object, got {type(item).__name__}")
        site = item.get("site")
        if not isinstance(site, int | str) or isinstance(site, bool):
            raise ValueError(f"alloc counter {i}: 'site' must be an integer or a string")
        name = item.get("name", str(site))
        if not isinstance(name, str):
            raise ValueError(f"alloc counter {i}: 'name' must be a string")
        nums = []
        for key in ("count", "bytes"):
            v = item.get(key)
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"alloc counter {i}: {key!r} must be a non-negative integer, got {v!r}")
            nums.append(v)
        out.append(AllocSite(site=site, name=name, count=nums[0], bytes=nums[1]))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SiteDelta:
    """How much one site allocated between two readings, and its cumulative totals at the end."""

    site: int | str
    name: str
    count: int
    bytes: int
    total_count: int
    total_bytes: int


def site_deltas(before: Iterable[AllocSite], after: Iterable[AllocSite]) -> list[SiteDelta]:
    """Per-site ``after - before`` (a site new in ``after`` counts from zero), sites in ``after`` order.

    A site whose counters went down (the app restarted its heap) is reported with its ``after``
    totals as the delta: everything it holds was allocated since the restart.
    """
    base = {s.site: s for s in before}
    out: list[SiteDelta] = []
    for s in after:
        b = base.get(s.site)
        dc, db = (s.count, s.bytes) if b is None else (s.count - b.count, s.bytes - b.bytes)
        if dc < 0 or db < 0:
            dc, db = s.count, s.bytes
        out.append(SiteDelta(s.site, s.name, dc, db, s.count, s.bytes))
    return out


def top_sites(deltas: Sequence[SiteDelta], n: int = 10, by: str = "bytes") -> list[SiteDelta]:
    """The ``n`` sites that grew most ``by`` "bytes" or "count" (ties: the other key, then name).

    Sites that did not grow are left out: a report lists growth, not the whole table.
    """
    if by not in ("bytes", "count"):
        raise ValueError(f"by must be 'bytes' or 'count', got {by!r}")
    other = "count" if by == "bytes" else "bytes"
    grown = [d for d in deltas if d.bytes > 0 or d.count > 0]
    grown.sort(key=lambda d: (-getattr(d, by), -getattr(d, other), d.name, str(d.site)))
    return grown[:n]
