"""``report.html``: a soak a person can look at -- the verdicts on top, then the figures over time.

Theory of operation: everything is drawn from the output directory's files alone
(:func:`~relaysim.report.read_soak_dir`), so ``relaysim report DIR`` gives the same page after a
killed run as the soak loop gives at its end. The verdict table is ``summary.json``'s assertions
when there is one (the soak loop judged more than the files can tell: the relay's view at each
idle point, the heap ceiling over the live run); without it (a killed run) the five soak verdicts
are recomputed from the timeline and the events and the page says so.

One self-contained file: the plots are inline SVG from matplotlib's object API (``Figure``, no
pyplot, no display), text kept as text, no script, no external reference. Each line is cut where
samples are missing (a gap is a harness fault, shaded) and thinned to at most ~2,000 points by
keeping each bucket's minimum and maximum, so a 10-hour run stays a few hundred KB and a restart's
drop or a spike is never thinned away. Restarts are red dashed lines, harness faults black dotted
lines, idle periods blue bands, on every plot at the same x.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from relaysim.analysis import (
    DOM_HANDLES,
    HEAP_INUSE,
    RELAY_SUBSCRIPTIONS,
    TOTAL_ALLOC,
    AssertionResult,
    Gap,
    Sample,
    SoakAnalysis,
    SoakThresholds,
    analyze_soak,
    idle_periods,
    judge_soak,
    overall_verdict,
    rolling_rates,
)
from relaysim.report._io import write_bytes_atomic
from relaysim.report._soakdir import REPORT_HTML, SoakDir, read_soak_dir
from relaysim.report._table import format_value

__all__ = ["MAX_POINTS", "analysis_for", "render_html", "verdicts_for", "write_html"]

MAX_POINTS = 2000
"""At most this many points per plotted line."""
MAX_EVENT_ROWS = 60
_MiB = 1024 * 1024
LIVE_EVENTS = ("relay_live_events_sent", "relay_events_sent")
"""Cumulative relay counters for the traffic plot, the first one present wins."""

RESTART_COLOUR = "#d62728"
FAULT_COLOUR = "#222222"
IDLE_COLOUR = "#9ecae1"
GAP_COLOUR = "#bbbbbb"


# --- what the page shows ----------------------------------------------------------------------------


def analysis_for(soak: SoakDir) -> SoakAnalysis:
    """The soak analysis of the files, with the settings the summary recorded (defaults otherwise)."""
    prior = soak.summary.soak if soak.summary is not None else None
    kwargs: dict[str, float] = {}
    if prior is not None:
        kwargs = {
            "window_s": prior.alloc_rate.window_s,
            "confidence": prior.alloc_rate.confidence,
            "warmup_s": prior.warmup_s,
            "settle_s": prior.settle_s,
            "drop_fraction": prior.drop_fraction,
        }
    return analyze_soak(soak.samples, soak.events, probe_bytes=soak.probe_bytes(), **kwargs)


def verdicts_for(soak: SoakDir, analysis: SoakAnalysis) -> tuple[list[AssertionResult], str]:
    """The verdict table and where it came from (the summary, or recomputed from the files)."""
    if soak.summary is not None and soak.summary.assertions:
        return list(soak.summary.assertions), "summary.json"
    thresholds = SoakThresholds.from_mapping(
        soak.summary.scenario.thresholds if soak.summary is not None else {}
    )
    return judge_soak(analysis, thresholds), "recomputed"


# --- series helpers ---------------------------------------------------------------------------------


def _runs(ts: Sequence[float], vs: Sequence[float], gap_s: float) -> list[tuple[list[float], list[float]]]:
    """Split a series where consecutive points are more than ``gap_s`` apart."""
    out: list[tuple[list[float], list[float]]] = []
    for t, v in zip(ts, vs, strict=True):
        if not out or t - out[-1][0][-1] > gap_s:
            out.append(([], []))
        out[-1][0].append(t)
        out[-1][1].append(v)
    return out


def _minmax(ts: list[float], vs: list[float], budget: int) -> tuple[list[float], list[float]]:
    if len(ts) <= budget:
        return ts, vs
    buckets = max(1, budget // 2)
    size = len(ts) / buckets
    kt: list[float] = []
    kv: list[float] = []
    for b in range(buckets):
        lo, hi = round(b * size), round((b + 1) * size)
        if hi <= lo:
            continue
        idx = range(lo, hi)
        i_min = min(idx, key=vs.__getitem__)
        i_max = max(idx, key=vs.__getitem__)
        for i in sorted({i_min, i_max}):
            kt.append(ts[i])
            kv.append(vs[i])
    return kt, kv


def decimate(
    ts: Sequence[float], vs: Sequence[float], gap_s: float = math.inf, max_points: int = MAX_POINTS
) -> tuple[list[float], list[float]]:
    """At most ~``max_points`` points, min and max of each bucket kept, NaN where a gap cuts the line."""
    runs = _runs(ts, vs, gap_s)
    total = sum(len(r[0]) for r in runs) or 1
    out_t: list[float] = []
    out_v: list[float] = []
    for k, (rt, rv) in enumerate(runs):
        if k:  # at the previous run's last x, so no step is drawn across the gap
            out_t.append(out_t[-1])
            out_v.append(math.nan)
        budget = max(2, math.floor(max_points * len(rt) / total) - 1)
        t2, v2 = _minmax(rt, rv, budget)
        out_t += t2
        out_v += v2
    return out_t, out_v


def _column(samples: Sequence[Sample], figure: str) -> tuple[list[float], list[float]]:
    ts, vs = [], []
    for s in samples:
        v = s.get(figure)
        if v is not None:
            ts.append(s.t)
            vs.append(float(v))
    return ts, vs


def _per_second(ts: list[float], vs: list[float], gap_s: float) -> tuple[list[float], list[float]]:
    """Increase per second of a cumulative counter between consecutive readings (none over a reset or gap)."""
    out_t, out_v = [], []
    for i in range(1, len(ts)):
        d = ts[i] - ts[i - 1]
        if 0 < d <= gap_s and vs[i] >= vs[i - 1]:
            out_t.append(ts[i])
            out_v.append((vs[i] - vs[i - 1]) / d)
    return out_t, out_v


def _rolling_alloc(
    samples: Sequence[Sample], span_s: float, gap_s: float
) -> tuple[list[float], list[float], float]:
    """Rolling Theil-Sen totalAlloc rate over the whole timeline (browsing too), window mid-points."""
    window = min(600.0, max(60.0, span_s / 60))
    ts, vs = _column(samples, TOTAL_ALLOC)
    mids: list[float] = []
    rates: list[float] = []
    start = 0
    for i in range(1, len(ts) + 1):  # a counter reset (restart) or a gap starts a new stretch
        if i == len(ts) or vs[i] < vs[i - 1] or ts[i] - ts[i - 1] > gap_s:
            if mids:
                mids.append(mids[-1])
                rates.append(math.nan)
            for w in rolling_rates(ts[start:i], vs[start:i], window, min_points=3):
                mids.append((w.start_t + w.end_t) / 2)
                rates.append(w.slope)
            start = i
    return mids, rates, window


# --- the figure -------------------------------------------------------------------------------------


def _svg(fig: Any) -> str:
    import matplotlib as mpl

    buf = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "relaysim"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)  # inline SVG in HTML needs no namespace URLs
    return svg


def _figure(soak: SoakDir, analysis: SoakAnalysis, budget_bps: float) -> str:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    samples = soak.samples
    t0 = samples[0].t
    span = max(samples[-1].t - t0, 1.0)
    unit, unit_name = (60.0, "minutes") if span <= 3 * 3600 else (3600.0, "hours")

    def x(t: float) -> float:
        return (t - t0) / unit

    dts = sorted(b.t - a.t for a, b in itertools.pairwise(samples)) or [1.0]
    gap_s = 3 * dts[len(dts) // 2]

    fig = Figure(figsize=(12, 14), dpi=96, layout="constrained")
    axes = fig.subplots(5, 1, sharex=True)

    def line(ax: Any, ts: list[float], vs: list[float], scale: float = 1.0, **kw: Any) -> None:
        dt_, dv = decimate(ts, vs, gap_s)
        ax.plot([x(t) for t in dt_], [v / scale for v in dv], linewidth=1.1, **kw)

    heap_ax, rate_ax, dom_ax, subs_ax, traffic_ax = axes
    ts, vs = _column(samples, HEAP_INUSE)
    line(heap_ax, ts, vs, _MiB, color="#1f77b4")
    for seg in analysis.segments:  # each segment's Theil-Sen fit, where there is one
        fit = seg.heap.theil_sen if seg.heap is not None else None
        if fit is not None:
            xs = [seg.start_t, seg.end_t]
            heap_ax.plot(
                [x(t) for t in xs],
                [(fit.intercept + fit.slope * t) / _MiB for t in xs],
                color="#ff7f0e",
                linewidth=1,
                linestyle="--",
            )
    heap_ax.set_ylabel("MiB")
    heap_ax.set_title("heapInuse (dashed: Theil-Sen trend per segment)", loc="left", fontsize=10)

    mids, rates, window = _rolling_alloc(samples, span, gap_s)
    if mids:
        rate_ax.plot(
            [x(t) for t in mids],
            rates,
            color="#7f7f7f",
            linewidth=1,
            label=f"all samples ({window:.0f} s windows)",
        )
    for i, w in enumerate(analysis.alloc_rate.windows):
        lowest = i == analysis.alloc_rate.lowest
        rate_ax.hlines(
            w.high,
            x(w.start_t),
            x(w.end_t),
            color="#2ca02c" if lowest else "#98df8a",
            linewidth=3 if lowest else 2,
        )
    rate_ax.axhline(budget_bps, color=RESTART_COLOUR, linewidth=1, linestyle="-.")
    rate_ax.set_yscale("symlog", linthresh=10)
    rate_ax.set_ylim(bottom=0)
    rate_ax.set_ylabel("B/s")
    rate_ax.set_title(
        "allocation rate: rolling Theil-Sen of totalAlloc (grey); idle windows' upper "
        "bounds (green, darkest = judged); budget (red)",
        loc="left",
        fontsize=10,
    )

    ts, vs = _column(samples, DOM_HANDLES)
    line(dom_ax, ts, vs, color="#9467bd")
    dom_ax.set_ylabel("handles")
    dom_ax.set_title("DOM handles", loc="left", fontsize=10)

    ts, vs = _column(samples, RELAY_SUBSCRIPTIONS)
    line(subs_ax, ts, vs, color="#8c564b", drawstyle="steps-post")
    subs_ax.set_ylabel("open")
    subs_ax.set_title("relay subscriptions", loc="left", fontsize=10)

    figure = next((f for f in LIVE_EVENTS if any(s.get(f) is not None for s in samples)), LIVE_EVENTS[0])
    ts, vs = _per_second(*_column(samples, figure), gap_s)
    line(traffic_ax, ts, vs, color="#17becf", drawstyle="steps-pre")
    traffic_ax.set_ylabel("events/s")
    what = "live events" if figure == "relay_live_events_sent" else "events (stored and live)"
    traffic_ax.set_title(f"relay traffic: {what} sent per sampling interval", loc="left", fontsize=10)
    traffic_ax.set_xlabel(f"{unit_name} since the first sample")

    periods = idle_periods(soak.events, samples[-1].t)
    faults = [e for e in soak.events if e.get("type") in ("fault", "session_replaced")]
    for ax in axes:
        for p in periods:
            ax.axvspan(x(p.start_t), x(p.end_t), color=IDLE_COLOUR, alpha=0.35, linewidth=0)
        for g in analysis.gaps:
            ax.axvspan(
                x(g.start_t), x(g.end_t), facecolor="none", edgecolor=GAP_COLOUR, hatch="///", linewidth=0
            )
        for r in analysis.restarts:
            ax.axvline(x(r.t), color=RESTART_COLOUR, linestyle="--", linewidth=1.2)
        for e in faults:
            if isinstance(e.get("t"), int | float):
                ax.axvline(x(float(e["t"])), color=FAULT_COLOUR, linestyle=":", linewidth=1.2)
        ax.grid(True, color="#e5e5e5", linewidth=0.6)
        ax.set_xlim(0, x(samples[-1].t))
    handles = [
        Patch(color=IDLE_COLOUR, alpha=0.35, label=f"idle period ({len(periods)})"),
        Line2D([], [], color=RESTART_COLOUR, linestyle="--", label=f"restart ({len(analysis.restarts)})"),
        Line2D([], [], color=FAULT_COLOUR, linestyle=":", label=f"harness fault ({len(faults)})"),
        Patch(
            facecolor="none", edgecolor=GAP_COLOUR, hatch="///", label=f"no samples ({len(analysis.gaps)})"
        ),
    ]
    fig.legend(handles=handles, loc="outside upper center", ncols=4, frameon=False)
    return _svg(fig)


# --- HTML -------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1180px;
color:#1b1b1b;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555;margin-bottom:14px}.badge{display:inline-block;padding:3px 12px;border-radius:4px;
font-weight:600;color:#fff;margin-left:8px;font-size:15px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e3e3e3;vertical-align:top}
th{background:#f4f4f4;font-weight:600}td.num{text-align:right;white-space:nowrap}
td.detail{color:#444;font-size:12.5px}.v{font-weight:700;text-align:center;color:#fff;border-radius:3px}
.PASS{background:#2e7d32}.FAIL{background:#c62828}.UNAVAILABLE{background:#8d8d8d}
.note{background:#fff8e1;border-left:4px solid #f9a825;padding:6px 10px;margin:10px 0}
.facts td{border:none;padding:2px 14px 2px 0}svg{width:100%;height:auto}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _verdict_table(results: Sequence[AssertionResult]) -> str:
    rows = []
    for r in results:
        threshold = f"{r.comparison} {format_value(r.threshold, r.unit)}"
        v = r.verdict.value
        rows.append(
            f'<tr><td>{_e(r.name)}</td><td class="num">{_e(threshold)}</td>'
            f'<td class="num">{_e(format_value(r.measured, r.unit))}</td>'
            f'<td class="v {v}">{v}</td><td class="detail">{_e(r.detail)}</td></tr>'
        )
    return (
        '<table class="verdicts"><tr><th>assertion</th><th>threshold</th><th>measured</th><th>verdict</th>'
        "<th>detail</th></tr>" + "".join(rows) + "</table>"
    )


def _wall(event: dict[str, Any]) -> str:
    wall = event.get("wall")
    if not isinstance(wall, int | float) or isinstance(wall, bool):
        return ""
    return dt.datetime.fromtimestamp(wall, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _events_table(events: Sequence[dict[str, Any]], t0: float) -> str:
    counts = Counter(str(e.get("type")) for e in events)
    summary = ", ".join(f"{_e(k)} {n}" for k, n in sorted(counts.items()))
    notable = [e for e in events if e.get("type") not in ("page", "idle_start")]
    if len(notable) > MAX_EVENT_ROWS:
        half = MAX_EVENT_ROWS // 2
        shown: list[dict[str, Any] | None] = [*notable[:half], None, *notable[-half:]]
    else:
        shown = list(notable)
    rows = []
    for e in shown:
        if e is None:
            rows.append(f'<tr><td colspan="4">... {len(notable) - MAX_EVENT_ROWS} more ...</td></tr>')
            continue
        t = e.get("t")
        at = f"{(t - t0) / 60:,.1f}" if isinstance(t, int | float) else ""
        rest = ", ".join(
            f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in e.items()
            if k not in ("t", "wall", "type")
        )
        rows.append(
            f'<tr><td class="num">{at}</td><td>{_e(_wall(e))}</td><td>{_e(e.get("type"))}</td>'
            f'<td class="detail">{_e(rest)}</td></tr>'
        )
    head = f"<p>{len(events)} events: {summary or 'none'} (page switches and idle starts not listed)</p>"
    return head + (
        '<table class="events"><tr><th>min</th><th>wall (UTC)</th><th>type</th><th>fields</th></tr>'
        + "".join(rows)
        + "</table>"
        if rows
        else head
    )


def _gap_text(g: Gap, t0: float) -> str:
    cause = f" ({g.cause})" if g.cause else ""
    return f"{(g.start_t - t0) / 60:.1f}..{(g.end_t - t0) / 60:.1f} min{cause}"


def render_html(soak: SoakDir) -> str:
    """The whole page as one string (no external references; plots are inline SVG)."""
    analysis = analysis_for(soak)
    results, source = verdicts_for(soak, analysis)
    verdict = soak.summary.verdict if soak.summary is not None and source == "summary.json" else None
    verdict = verdict or overall_verdict(results)
    budget = next(
        (r.threshold for r in results if r.name == "soak_alloc_rate"), SoakThresholds().idle_rate_bps
    )
    title = f"relaysim soak: {soak.path.name}"
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{_CSS}</style></head><body>",
        f'<h1>{_e(title)} <span class="badge {verdict.value}">{verdict.value}</span></h1>',
    ]
    facts: list[tuple[str, str]] = []
    if soak.summary is not None:
        s = soak.summary
        facts += [
            ("app", f"{s.app.url} ({s.app.mode})"),
            ("started", s.timing.started_at),
            ("finished", s.timing.finished_at),
        ]
        if s.environment.browser_name:
            facts.append(("browser", f"{s.environment.browser_name} {s.environment.browser_version or ''}"))
    facts += [
        ("sampled", f"{analysis.hours:.2f} h, {analysis.samples} samples"),
        ("restarts", str(len(analysis.restarts))),
        (
            "gaps",
            ", ".join(_gap_text(g, analysis.start_t or 0.0) for g in analysis.gaps) or "none",
        ),
    ]
    parts.append(
        '<table class="facts">'
        + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in facts)
        + "</table>"
    )
    parts.append("<h2>Verdicts</h2>")
    if source == "recomputed":
        parts.append(
            '<p class="note">No summary.json (the soak did not finish): the five soak trend verdicts were '
            "recomputed from timeline.jsonl and events.jsonl; the live run's own checks are missing.</p>"
        )
    if soak.torn:
        parts.append(
            f'<p class="note">A torn last line (killed writer) was skipped in {_e(", ".join(soak.torn))}.</p>'
        )
    parts.append(_verdict_table(results))
    parts.append("<h2>Over time</h2>")
    if soak.samples:
        parts.append(f'<div class="plots">{_figure(soak, analysis, budget)}</div>')
    else:
        parts.append('<p class="note">No samples in timeline.jsonl yet: nothing to plot.</p>')
    parts.append("<h2>Events</h2>")
    parts.append(_events_table(soak.events, analysis.start_t or 0.0))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(directory: str | Path) -> Path:
    """Render ``DIR/report.html`` from the directory's files (atomically); returns its path."""
    soak = read_soak_dir(directory)
    target = Path(directory) / REPORT_HTML
    write_bytes_atomic(target, render_html(soak).encode())
    return target
