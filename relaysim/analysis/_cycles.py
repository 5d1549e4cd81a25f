"""Growth per repeated cycle (the fuite / memlab statistic) and cache-bound checks.

Theory of operation -- cycles. A scenario marks one ``repeat`` as measured: the runner reads the
probes once before the first iteration and once at the end of every iteration. A leak tied to an
action sequence grows the heap in *every* cycle; a one-off allocation (a cache filled the first
time, a table allocated once) grows it in one cycle only. So after ``warmup`` iterations (they fill
the caches) the statistic is the **smallest** growth of any measured cycle -- the weakest cycle, as
fuite does: one quiet cycle is enough to acquit, and a leak cannot hide behind a noisy one.

The figure is ``heapInuse``: it is what the app still holds after the cycle. In a heap that never
frees (the seed's bump allocator) it moves exactly like ``totalAlloc``; in a heap that frees,
``totalAlloc`` would also count the churn of short-lived buffers, which is not a leak.

A heap that never frees also spends, in every cycle, what the app re-does by design: a copy of
each websocket frame, a wrapper per rendered element. The scenario names those sites
(``ignore_sites``); their bytes are taken out of each cycle's growth and listed apart in the
report, so the verdict is about what is *kept* and the reader still sees what was spent.

Theory of operation -- caches. ``__moxie_cache_sizes()`` gives, per cache group, the live entries
and the limit the app declares. A rotating map pair holds at most two generations, so a sound
cache never exceeds ``factor x limit`` entries (factor 2 by default); a group above it is
unbounded (the seed's ``maps`` leak). The largest ratio over the run is judged.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from relaysim.analysis._sites import AllocSite, site_deltas

__all__ = [
    "CacheGroupSize",
    "CachePeak",
    "CycleGrowth",
    "CycleReading",
    "CycleSite",
    "cache_peaks",
    "cache_ratio",
    "cycle_growth",
    "parse_cache_sizes",
]


@dataclass(frozen=True, slots=True)
class CycleReading:
    """One reading at a cycle boundary: the figure's value and the alloc counters (None = unread)."""

    t: float
    value: float | None
    sites: tuple[AllocSite, ...] | None = None


@dataclass(frozen=True, slots=True)
class CycleSite:
    """One site's growth in each measured cycle (bytes), and its smallest growth."""

    site: int | str
    name: str
    per_cycle_bytes: tuple[int, ...]
    min_bytes: int


@dataclass(frozen=True, slots=True)
class CycleGrowth:
    """Growth per measured cycle of a ``repeat`` marked ``measure_cycles``.

    ``per_cycle_bytes[i]`` = the figure's growth in measured cycle i minus the ignored sites' bytes
    in that cycle; ``weakest`` = its minimum (what ``cycle_growth`` judges), ``weakest_cycle`` its
    index among the measured cycles. ``sites`` lists the sites that grew in every measured cycle
    (ignored ones apart, in ``ignored``), most bytes first. ``warmup`` iterations were not measured.
    """

    figure: str
    warmup: int
    cycles: int
    per_cycle_bytes: tuple[float, ...]
    weakest: float
    weakest_cycle: int
    sites: tuple[CycleSite, ...] = ()
    ignored: tuple[CycleSite, ...] = ()
    ignore_sites: tuple[str, ...] = ()


def cycle_growth(
    readings: Sequence[CycleReading],
    warmup: int = 1,
    ignore_sites: Iterable[str] = (),
    figure: str = "heapInuse",
) -> CycleGrowth | str:
    """The weakest-cycle growth from ``readings`` (one before the first iteration, one after each).

    Returns a reason string instead when it cannot be measured (too few cycles, figure unread,
    ignored sites named but no alloc counters).
    """
    ignore = tuple(ignore_sites)
    measured = readings[warmup:]
    if len(measured) < 2:
        return f"no measured cycle: {max(0, len(readings) - 1)} iteration(s) with {warmup} warm-up"
    if any(r.value is None for r in measured):
        return f"{figure} unavailable at a cycle boundary"
    have_sites = all(r.sites is not None for r in measured)
    if ignore and not have_sites:
        return "ignore_sites needs the app's alloc counters (__moxie_read_alloc_counters), unavailable"
    per_site: dict[int | str, tuple[str, list[int]]] = {}
    per_cycle: list[float] = []
    for a, b in itertools.pairwise(measured):
        spent_ignored = 0
        if have_sites:
            for d in site_deltas(a.sites or (), b.sites or ()):
                per_site.setdefault(d.site, (d.name, []))[1].append(d.bytes)
                if d.name in ignore:
                    spent_ignored += d.bytes
        per_cycle.append(float(b.value) - float(a.value) - spent_ignored)  # type: ignore[arg-type]
    n = len(per_cycle)
    every = [
        CycleSite(site, name, tuple(v), min(v))
        for site, (name, v) in per_site.items()
        if len(v) == n and min(v) > 0
    ]
    every.sort(key=lambda c: (-c.min_bytes, c.name))
    weakest = min(per_cycle)
    return CycleGrowth(
        figure=figure,
        warmup=warmup,
        cycles=n,
        per_cycle_bytes=tuple(per_cycle),
        weakest=weakest,
        weakest_cycle=per_cycle.index(weakest),
        sites=tuple(c for c in every if c.name not in ignore),
        ignored=tuple(c for c in every if c.name in ignore),
        ignore_sites=ignore,
    )


# --- caches ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CacheGroupSize:
    """One row of ``__moxie_cache_sizes()``: live ``entries`` of ``group``, its declared ``limit``."""

    group: str
    entries: int
    limit: int | None
    site: str


def parse_cache_sizes(raw: object) -> tuple[CacheGroupSize, ...]:
    """Validate what ``__moxie_cache_sizes()`` returned: ``[{group, entries, limit, site?}]``.

    ``limit`` may be null (the app declares none); ``site`` defaults to ``map:<group>``.
    Raises ``ValueError`` naming the bad entry.
    """
    if not isinstance(raw, list | tuple):
        raise ValueError(f"cache sizes must be a list, got {type(raw).__name__}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValueError(f"cache size {i} must be an object, got {type(item).__name__}")
        group = item.get("group")
        if not isinstance(group, str) or not group:
            raise ValueError(f"cache size {i}: 'group' must be a non-empty string")
        nums: list[int | None] = []
        for key in ("entries", "limit"):
            v = item.get(key)
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if v is None and key == "limit":
                nums.append(None)
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"cache size {i}: {key!r} must be a non-negative integer, got {v!r}")
            nums.append(v)
        site = item.get("site", f"map:{group}")
        if not isinstance(site, str):
            raise ValueError(f"cache size {i}: 'site' must be a string")
        out.append(CacheGroupSize(group, nums[0], nums[1], site))  # type: ignore[arg-type]
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CachePeak:
    """The most entries a cache group held in any reading, when, and the limit it declared."""

    group: str
    site: str
    limit: int | None
    max_entries: int
    max_t: float
    final_entries: int


def cache_peaks(readings: Sequence[tuple[float, Sequence[CacheGroupSize]]]) -> tuple[CachePeak, ...]:
    """Per group, the largest entry count over ``readings`` (``(t, sizes)`` pairs in time order)."""
    peaks: dict[str, CachePeak] = {}
    for t, sizes in readings:
        for g in sizes:
            p = peaks.get(g.group)
            if p is None or g.entries > p.max_entries:
                peaks[g.group] = CachePeak(g.group, g.site, g.limit, g.entries, t, g.entries)
            else:
                peaks[g.group] = CachePeak(p.group, p.site, g.limit, p.max_entries, p.max_t, g.entries)
    return tuple(peaks.values())


def cache_ratio(peak: CachePeak, default_limit: float) -> float:
    """Entries over the limit in force: the declared one, else ``default_limit`` (at least 1)."""
    limit = peak.limit if peak.limit is not None else default_limit
    return peak.max_entries / max(1.0, float(limit))
