"""Report assembly: a finished run's :class:`~relaysim.scenario._result.RunResult` as a
:class:`relaysim.report.Report`.

:func:`build_report` is what :meth:`RunResult.report` calls; :func:`idle_notes` writes the plain sentences
an idle measurement adds to the report's ``notes``. Nothing here measures: it only arranges what the
runner gathered (schema in docs/report-schema.md).
"""

from __future__ import annotations

import datetime as dt
import platform

from relaysim import analysis as an
from relaysim import report as rp
from relaysim._version import __version__
from relaysim.analysis import Sample
from relaysim.browser.idle import IdleOutcome
from relaysim.browser.probes import BrowserFigures
from relaysim.scenario._faults import fault_figures, fault_note
from relaysim.scenario._result import RunResult

__all__ = ["build_report", "idle_notes"]


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def idle_notes(outcome: IdleOutcome) -> list[str]:
    """Plain sentences for the report's ``notes``: who closed, what grew while idle, the slope."""
    if outcome.closed_by == "app":
        notes = ["idle: subscriptions closed by the app (__moxie_close_all)"]
    elif outcome.subscriptions_open:
        held = outcome.subscriptions_open
        notes = [f"idle: no __moxie_close_all; the relay ended the {held} the app still held"]
    else:
        notes = ["idle: no __moxie_close_all; the app held no subscription once settled"]
    if outcome.subscriptions_open:
        notes.append(f"idle: still subscribed when told to go idle: {outcome.open_detail}")
    if outcome.unavailable:
        notes.append(f"idle: {outcome.unavailable}")
    grown = an.top_sites(outcome.site_deltas, n=5, by="bytes")
    if grown:
        notes.append("idle: allocation sites that grew: " + ", ".join(
            f"{d.name} +{d.bytes:,} B in {d.count} allocations" for d in grown))
    elif outcome.measurement is not None and outcome.site_deltas:
        notes.append("idle: no allocation site grew")
    ts = outcome.trend.theil_sen if outcome.trend else None
    if ts is not None:
        notes.append(
            f"idle: Theil-Sen totalAlloc slope {ts.slope:.1f} B/s "
            f"({ts.confidence:.0%} CI {ts.low:.1f}..{ts.high:.1f}, n={ts.n})"
        )
    return notes


def _ua_memory_note(label: str, figs: BrowserFigures | None) -> str | None:
    """measureUserAgentSpecificMemory at a run's end, the one browser figure no other section holds (the
    initial and final figures are ``heap`` and ``browser``, each named by its source in the schema)."""
    if figs is None or figs.ua_memory is None or figs.ua_memory.get("bytes") is None:
        return None
    return f"browser {label}: measureUserAgentSpecificMemory {figs.ua_memory['bytes']:,} B"


def _relay_figures(res: RunResult, faults: rp.FaultFigures | None) -> rp.RelayFigures | None:
    """This run's connections' figures when the run scoped them, else the relay's totals."""
    if res.relay_stats is None:
        return None
    mine = res.relay_run
    totals = mine if mine is not None else res.relay_stats.get("totals", {})
    return rp.RelayFigures(
        url=(res.relay_stats.get("relay") or {}).get("url"),
        scope=res.relay_scope if mine is not None else "every connection since the relay started",
        subscriptions_opened=totals.get("subs_opened"),
        subscriptions_closed=totals.get("subs_closed"),
        subscriptions_open_at_end=totals.get("subscriptions_active"),
        events_pushed=totals.get("events_sent"),
        bytes_pushed=totals.get("bytes_sent"),
        connections=totals.get("connections_opened"),
        connections_open_at_end=totals.get("connections_open"),
        faults=faults,
    )


def _browser_level(res: RunResult) -> rp.BrowserLevel | None:
    """The browser-level section: readings at the run's ends and the growth per measured cycle."""
    if not res.isolates:
        return None
    start = next((r for r in res.isolates if r.phase == "start"), res.isolates[0])
    end = next((r for r in reversed(res.isolates) if r.phase == "end"), res.isolates[-1])
    return rp.BrowserLevel(
        initial=start,
        final=end,
        cycles=res.browser_cycles,
        readings=len(res.isolates),
        ms_per_reading=res.sampler_cost.ms_per_isolate_read,
        snapshots=any(r.snapshot is not None for r in res.isolates),
    )


def build_report(res: RunResult) -> rp.Report:
    """The run as a :class:`relaysim.report.Report` (schema documented in docs/report-schema.md)."""
    sc = res.scenario
    first = res.samples[0] if res.samples else Sample(t=0.0)
    last = res.samples[-1] if res.samples else first
    before, after = res.initial_sites, res.final_sites
    env = res.environment
    relay_info = (res.relay_stats or {}).get("relay", {})
    steps = tuple(
        rp.StepTiming(index=st.index, kind=st.kind, line=st.line, start_s=round(st.start_s, 3),
                      duration_s=round(st.seconds, 3))
        for st in res.steps
    )
    cost = res.sampler_cost
    timing = rp.Timing(
        started_at=_iso(res.started_at),
        finished_at=_iso(res.started_at + res.seconds),
        duration_s=round(res.seconds, 3),
        steps=steps,
        sampling=cost,
    )
    notes: list[str] = []
    for outcome in res.idle:
        notes.extend(idle_notes(outcome))
    if res.probe_ms is not None and res.probe_cost is not None:
        per_call = f"{res.probe_cost.bytes_per_probe:g} B and {res.probe_ms:.3f} ms"
        notes.append(f"probe: {per_call} per call in the page")
    for label, figs in (("initial", res.initial_browser), ("final", res.final_browser)):
        note = _ua_memory_note(label, figs)
        if note:
            notes.append(note)
    if res.relay_unreached is not None:
        notes.append(f"relay: the page never connected to {res.relay_unreached}; nothing it did was measured")
    page_hosts = [h.host for h in res.hosts_tried or () if not h.browser_own]
    if page_hosts:
        notes.append("hosts: the page tried to reach (refused, loopback only): " + ", ".join(page_hosts))
    held = [x for x in (smp.get(an.RELAY_SUBSCRIPTIONS) for smp in res.samples) if x is not None]
    if held:
        notes.append(f"relay: at most {max(held):g} subscriptions open at once during the run")
    faults = fault_figures(res.relay_stats, res.started_at)
    if (note := fault_note(faults)) is not None:
        notes.append(note)
    if res.alloc_log:
        records = ", ".join(
            f"{r.get('source')}.{r.get('metric')}={r.get('value')}" for r in res.alloc_log[:20]
        )
        notes.append(f"alloc_log: {len(res.alloc_log)} threshold records: {records}")
    last_idle = res.idle[-1].measurement if res.idle else None
    query = res.page_url.partition("?")[2]
    return rp.Report(
        scenario=rp.ScenarioInfo(name=sc.name, path=sc.path, description=sc.description,
                                 thresholds=sc.thresholds.to_dict()),
        app=rp.AppInfo(
            url=res.page_url,
            mode=("external" if not res.app.startswith("builtin") else (query or "fixed")),
            hooks_missing=res.hooks_missing,
            hosts_tried=None if res.hosts_tried is None else tuple(
                h.host for h in res.hosts_tried if not h.browser_own
            ),
            browser_hosts=None if res.hosts_tried is None else tuple(
                h.host for h in res.hosts_tried if h.browser_own
            ),
        ),
        environment=rp.Environment(
            browser_name=env.get("browser_name"),
            browser_version=env.get("browser_version"),
            driver_version=env.get("driver_version"),
            webdriver_url=env.get("webdriver_url"),
            python=platform.python_version(),
            relaysim=__version__,
            platform=platform.platform(),
            dataset_name=relay_info.get("dataset") or sc.dataset,
            dataset_sha256=relay_info.get("sha256"),
            seed=sc.seed,
            dataset_spec_sha256=relay_info.get("spec_sha256"),
            dataset_relay_url=relay_info.get("hints_url"),
        ),
        timing=timing,
        heap=rp.heap_figures(first, last, an.trend(res.samples, an.HEAP_INUSE)),
        assertions=tuple(res.results.values()),
        alloc_sites=rp.alloc_sites(before or (), after) if after is not None else None,
        dom_handles=an.dom_handles(res.samples),
        relay=_relay_figures(res, faults),
        probe_cost=res.probe_cost,
        idle=last_idle,
        unavailable=tuple(res.unavailable),
        samples=rp.bound_samples(res.samples) if len(res.samples) >= 2 else tuple(res.samples),
        cycles=res.cycles,
        caches=an.cache_peaks(res.cache_readings) if res.cache_readings else None,
        timeline=str(res.timeline) if res.timeline else None,
        notes=tuple(notes),
        browser=_browser_level(res),
    )
