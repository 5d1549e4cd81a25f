"""Judging a soak from its files: ``summary.json`` (a run report with a ``soak`` section) and ``report.html``.

Theory of operation. Everything is read back from ``timeline.jsonl`` and ``events.jsonl``, never
from the loop's memory, so a soak of ten hours judges the same way whether it ran in one process or
was killed and resumed three times, and the loop keeps nothing but its last sample. The verdicts:

* the soak-scope assertions of the registry (:func:`relaysim.analysis.assertion_names` ``("soak")``:
  the idle-clock Theil--Sen rate, heap and DOM trends per segment, the plateau, restarts per hour,
  the heap ceiling), on :func:`relaysim.analysis.analyze_soak` of the timeline and events;
* the seed's own checks over the whole run, as the run assertions judge them: heapInuse after
  5 minutes and DOM handles over every sample; the idle rate of *every* idle period (the windows of
  all ``idle_end`` events make one idle measurement whose weakest window is judged) and the
  subscriptions still open when idle (the worst idle period).

The report is a :class:`relaysim.report.Report` (schema ``relaysim.report/1``) -- the same
assertion objects as a run report, so a regression gate reads both alike.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import relaysim
from relaysim import analysis as an
from relaysim import report as rp
from relaysim.analysis import AssertionResult, Evidence, IdleMeasurement, ProbeCost, WindowRate
from relaysim.errors import ExitCode, exit_code_for
from relaysim.report import SoakDir, read_soak_dir, write_html, write_report
from relaysim.soak._files import SUMMARY, TIMELINE, SoakMeta, active_seconds

__all__ = ["SEED_CHECKS", "build_summary", "finish_soak", "idle_evidence"]

SEED_CHECKS = ("heap_inuse_after_5min", "dom_handles_max", "idle_rate", "subscriptions_closed_when_idle")
"""The run assertions a soak judges over its whole timeline (the seed's checks)."""


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _probe_cost(soak: SoakDir) -> ProbeCost | None:
    for r in soak.records:
        if r.get("type") == "probe_cost":
            known = {f.name for f in dataclasses.fields(ProbeCost)}
            try:
                return ProbeCost(**{k: v for k, v in r.items() if k in known})
            except TypeError:
                return None
    return None


def _idle_sites(raw: object) -> tuple[an.IdleSite, ...] | None:
    """``idle.sites`` of an ``idle_end`` event (the sites of that period's weakest window), if any.
    A soak measures one window per period, so the weakest window's period names its sites."""
    if not isinstance(raw, list):
        return None
    known = {f.name for f in dataclasses.fields(an.IdleSite)}
    try:
        return tuple(an.IdleSite(**{k: v for k, v in d.items() if k in known}) for d in raw)
    except (TypeError, AttributeError):
        return None


def idle_evidence(events: Sequence[dict[str, Any]], probe: ProbeCost | None) -> dict[str, Any]:
    """Evidence fields for ``idle_rate`` and ``subscriptions_closed_when_idle`` from every ``idle_end``."""
    ends = [e for e in events if e.get("type") == "idle_end"]
    windows: list[WindowRate] = []
    period_sites: list[tuple[an.IdleSite, ...] | None] = []  # per window: its period's sites
    for e in ends:
        idle = e.get("idle")
        if isinstance(idle, dict):
            sites = _idle_sites(idle.get("sites"))
            for w in idle.get("windows") or ():
                try:
                    windows.append(WindowRate(**w))
                except TypeError:
                    continue
                period_sites.append(sites)
    out: dict[str, Any] = {}
    if windows:
        weakest = max(range(len(windows)), key=lambda i: (windows[i].compensated_rate, -i))
        w = windows[weakest]
        out["idle"] = IdleMeasurement(
            figure=an.TOTAL_ALLOC, windows=tuple(windows), weakest=weakest, raw_rate=w.raw_rate,
            compensated_rate=w.compensated_rate, window_s=w.window_s, subscriptions_open=0, probe_cost=probe,
            sites=period_sites[weakest],
        )
    else:
        why = next((str(e["unavailable"]) for e in ends if e.get("unavailable")), None)
        out["idle_unavailable"] = why or "no idle period completed in this soak"
    opened = [e for e in ends if _num(e.get("subscriptions_open"))]
    if opened:
        worst = max(opened, key=lambda e: e["subscriptions_open"])
        out["subscriptions_open_when_idle"] = int(worst["subscriptions_open"])
        out["subscriptions_detail"] = worst.get("open_detail")
    return out


def _seed_checks(soak: SoakDir, th: an.Thresholds, probe: ProbeCost | None) -> list[AssertionResult]:
    samples = soak.samples
    idle = idle_evidence(soak.events, probe)
    ev = Evidence(samples=tuple(samples), start_t=samples[0].t if samples else None, **idle)
    results = an.evaluate(ev, th, SEED_CHECKS)
    periods = sum(1 for e in soak.events if e.get("type") == "idle_end")
    out = []
    for r in results:
        if r.name in ("idle_rate", "subscriptions_closed_when_idle") and periods:
            r = dataclasses.replace(r, detail=f"{r.detail} (over {periods} idle period(s))")
        out.append(r)
    return out


def _notes(soak: SoakDir, analysis: an.SoakAnalysis) -> list[str]:
    ev = soak.events
    notes = []
    rates = [float(e["rate"]) for e in ev if e.get("type") == "idle_end" and _num(e.get("rate"))]
    if rates:
        rates.sort()
        notes.append(
            f"idle: {len(rates)} idle period(s) measured; rate min {rates[0]:,.1f}, median "
            f"{rates[len(rates) // 2]:,.1f}, max {rates[-1]:,.1f} B/s (probe cost taken out)"
        )
    t0 = analysis.start_t or 0.0
    for e in ev:
        if e.get("type") == "restart_restored" and _num(e.get("t")):
            at = f"{(float(e['t']) - t0) / 60:.1f} min"
            if e.get("restored"):
                notes.append(f"restart at {at}: page, arg, pubkey and scroll restored")
            elif e.get("restored") is None:
                notes.append(f"restart at {at}: {e.get('why')}")
            else:
                notes.append(f"restart at {at}: NOT restored: {', '.join(e.get('failed') or [])}")
    faults = [str(e.get("reason")) for e in ev if e.get("type") == "fault"]
    if faults:
        notes.append(f"harness: {len(faults)} fault(s): " + "; ".join(faults[:5]))
    replaced = sum(1 for e in ev if e.get("type") == "session_replaced" and e.get("reason") != "resume")
    resumes = sum(1 for e in ev if e.get("type") == "resume")
    if replaced or resumes:
        notes.append(f"harness: browser session replaced {replaced} time(s); resumed {resumes} time(s)")
    errors = [e for e in ev if e.get("type") == "step_error"]
    if errors:
        notes.append(f"steps: {len(errors)} step(s) failed in the page, e.g. {errors[0].get('reason')}")
    shifts = [e for e in ev if e.get("type") == "clock_shift"]
    if shifts:
        notes.append(f"clock: the page clock ran backwards {len(shifts)} time(s); samples shifted forward")
    stops = [str(e.get("reason")) for e in ev if e.get("type") == "stop"]
    if stops:
        notes.append("stopped: " + ", ".join(stops))
    if soak.torn:
        notes.append(f"a torn last line (killed writer) was skipped in {', '.join(soak.torn)}")
    return notes


def _relay_totals(events: Sequence[dict[str, Any]]) -> rp.RelayFigures | None:
    per = [e["relay"] for e in events if e.get("type") == "stop" and isinstance(e.get("relay"), dict)]
    if not per:
        return None

    def total(key: str) -> int | None:
        vals = [p.get(key) for p in per if _num(p.get(key))]
        return int(sum(vals)) if vals else None

    last = per[-1].get("subscriptions_active")
    return rp.RelayFigures(
        subscriptions_opened=total("subs_opened"), subscriptions_closed=total("subs_closed"),
        subscriptions_open_at_end=int(last) if _num(last) else None, events_pushed=total("events_sent"),
        bytes_pushed=total("bytes_sent"), connections=total("connections_opened"),
    )


def build_summary(soak: SoakDir) -> rp.Report:
    """The soak's report from its files (see the module docstring)."""
    ev = soak.events
    start: dict[str, Any] = next((e for e in ev if e.get("type") == "start"), {})
    meta = SoakMeta.from_event(start, str(soak.path)) if start else None
    session: dict[str, Any] = next((e for e in reversed(ev) if e.get("type") == "session"), {})
    th = an.Thresholds.for_scope("soak")
    probe = _probe_cost(soak)
    samples = soak.samples
    analysis = an.analyze_soak(samples, ev, probe_bytes=probe.bytes_per_probe if probe else 0.0)
    soak_ev = Evidence(samples=tuple(samples), soak=analysis)
    soak_results = an.evaluate(soak_ev, th, an.assertion_names("soak"))
    results = [*soak_results, *_seed_checks(soak, th, probe)]
    starts = sorted(float(e["t"]) for e in ev if e.get("type") in ("start", "resume") and _num(e.get("t")))
    active = active_seconds([s.t for s in samples], starts)
    walls = [float(e["wall"]) for e in ev if _num(e.get("wall"))]
    first = samples[0] if samples else an.Sample(t=0.0)
    last = samples[-1] if samples else first
    app = meta.app if meta else "builtin"
    url = str(session.get("page_url") or app)
    mode = "external" if not app.startswith("builtin") else (app.partition("?")[2] or "fixed")
    idle = idle_evidence(ev, probe).get("idle")
    traffic = meta.traffic if meta and meta.traffic else "none"
    return rp.Report(
        scenario=rp.ScenarioInfo(
            name="soak",
            description=(
                f"relaysim soak: seeded random browsing (seed {meta.seed if meta else '?'}) with idle "
                f"periods, live traffic {traffic}, a sample every {meta.interval if meta else '?'} s"
            ),
            thresholds=th.to_dict(),
        ),
        app=rp.AppInfo(url=url, mode=mode, hooks_missing=tuple(session.get("hooks_missing") or ())),
        environment=rp.Environment(
            browser_name=session.get("browser_name"), browser_version=session.get("browser_version"),
            driver_version=session.get("driver_version"),
            webdriver_url=meta.webdriver_url if meta else None, python=platform.python_version(),
            relaysim=relaysim.__version__, platform=platform.platform(), dataset_name=session.get("dataset"),
            dataset_sha256=session.get("dataset_sha256"), seed=meta.seed if meta else None,
            dataset_spec_sha256=session.get("dataset_spec_sha256"),
        ),
        timing=rp.Timing(
            started_at=_iso(walls[0] if walls else time.time()),
            finished_at=_iso(walls[-1] if walls else time.time()),
            duration_s=round(active, 3),
            sampling=an.SamplingCost(samples=len(samples), interval_seconds=meta.interval if meta else None),
        ),
        assertions=tuple(results),
        heap=rp.heap_figures(first, last, an.trend(rp.bound_samples(samples, 600), an.HEAP_INUSE))
        if len(samples) >= 2 else rp.heap_figures(first, last),
        dom_handles=an.dom_handles(samples),
        relay=_relay_totals(ev),
        probe_cost=probe,
        idle=idle,
        unavailable=rp.unavailable_figures(samples),
        notes=tuple(_notes(soak, analysis)),
        timeline=TIMELINE,
        samples=rp.bound_samples(samples) if len(samples) >= 2 else tuple(samples),
        soak=analysis,
    )


def finish_soak(directory: str | Path, allow_unavailable: bool = False) -> tuple[rp.Report, ExitCode]:
    """Judge a soak directory: write ``summary.json`` and ``report.html``; the report and exit code."""
    soak = read_soak_dir(directory)
    report = build_summary(soak)
    write_report(Path(directory) / SUMMARY, report)
    write_html(directory)
    return report, exit_code_for(report.assertions, allow_unavailable)
