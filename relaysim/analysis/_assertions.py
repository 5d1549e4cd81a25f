"""The shipped memory assertions, each declared once (see :class:`~relaysim.analysis._verdict.Assertion`).

The seed's four (idle rate, heap delta, heapInuse after 5 minutes, DOM handles) and its idle-protocol
check (subscriptions closed when idle), plus three that give every leak of the reference client a
catcher: thread events released, growth per measured cycle, cache entries bounded; and three read
after every browsing step, which ``relaysim explore`` checks as invariants: growth per return to an
earlier page state, the app's and the relay's subscriptions agreeing, and no EVENT after a CLOSE.
Registration order is report order. To add one: write its ``measure`` (and ``explain`` if a failure
should name what grew), call :func:`register`, and test it; the scenario parser, the docs tables and
the pytest helpers pick it up from the registry.
"""

from __future__ import annotations

from relaysim.analysis._browsing import (
    Returns,
    return_growths,
    short_state,
    subscription_disagreement,
)
from relaysim.analysis._cycles import cache_peaks, cache_ratio
from relaysim.analysis._samples import DOM_HANDLES, HEAP_INUSE, THREAD_EVENTS, dom_handles
from relaysim.analysis._sites import top_sites
from relaysim.analysis._subs import describe_held
from relaysim.analysis._verdict import (
    Assertion,
    AssertionResult,
    Evidence,
    Measured,
    NotMeasured,
    Threshold,
    Thresholds,
    Tolerance,
    register,
)

MiB = 1024 * 1024


# -- idle_rate ---------------------------------------------------------------------------------------


def _measure_idle_rate(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    idle = ev.idle
    if idle is None:
        if ev.subscriptions_open_when_idle:
            return NotMeasured(
                f"not measured: the client still held {ev.subscriptions_open_when_idle} subscription(s) "
                "when told to go idle (see subscriptions_closed_when_idle)"
            )
        return NotMeasured(f"not measured: {ev.idle_unavailable or 'no idle measurement in this run'}")
    pc = idle.probe_cost
    w = idle.windows[idle.weakest]
    probe = f"probe {pc.bytes_per_probe:g} B x {w.probes}" if pc is not None else "probe cost not measured"
    return Measured(
        idle.rate,
        f"raw {idle.raw_rate:.1f} B/s, {probe}, window {idle.window_s:.1f} s, weakest of {len(idle.windows)}",
    )


def _explain_idle_rate(r: AssertionResult, ev: Evidence) -> str | None:
    grown = top_sites(ev.idle_site_deltas, n=3, by="bytes")
    if not grown:
        return None
    return f"{r.detail}; grew while idle: " + ", ".join(f"{d.name} +{d.bytes:,} B" for d in grown)


IDLE_RATE = register(Assertion(
    name="idle_rate",
    summary="idle totalAlloc rate, probe cost taken out (weakest window)",
    unit="B/s",
    thresholds=(Threshold("idle_rate_bps", 1024.0, "idle allocation budget, bytes per second"),),
    measure=_measure_idle_rate,
    requires="idle",
    requires_text="a measure_idle step",
    reads=("idle", "idle_unavailable", "subscriptions_open_when_idle", "idle_site_deltas"),
    explain=_explain_idle_rate,
    tolerance=Tolerance(abs=256, rel=0.25),  # a quarter of the idle budget; 25 % of a large rate
))


# -- heap_delta --------------------------------------------------------------------------------------


def _measure_heap_delta(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    a, b = ev.first(), ev.last()
    v0 = a.get(HEAP_INUSE) if a is not None else None
    v1 = b.get(HEAP_INUSE) if b is not None else None
    if v0 is None or v1 is None:
        from relaysim.analysis._assertions_browser import app_memory_delta

        # no hooks: the browser's own figures (every isolate after GC), said in the result's source
        fallback = app_memory_delta(ev)
        return fallback if fallback is not None else NotMeasured("heapInuse unavailable")
    return Measured(v1 - v0, f"heapInuse {v0:,} -> {v1:,}", "hooks")


HEAP_DELTA = register(Assertion(
    name="heap_delta",
    summary="final - initial heapInuse",
    unit="B",
    thresholds=(Threshold("heap_delta_bytes", 20 * MiB, "heapInuse growth allowed over the scenario"),),
    measure=_measure_heap_delta,
    reads=("samples", "initial", "final", "isolates"),
    explore=False,  # a budget for one scenario's length: any session long enough exceeds it
    tolerance=Tolerance(abs=256 * 1024, rel=0.10),
))


# -- heap_inuse_after_5min ---------------------------------------------------------------------------


def _measure_heap_after(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    first = ev.first()
    start = ev.start_t if ev.start_t is not None else (first.t if first is not None else None)
    have = [(s, v) for s in ev.samples if (v := s.get(HEAP_INUSE)) is not None]
    if start is None or not have:
        return NotMeasured("heapInuse unavailable")
    after = th.heap_inuse_after_s
    late = [(s, v) for s, v in have if s.t - start >= after]
    if not late:
        ran = have[-1][0].t - start
        return NotMeasured(f"the run used the app for {ran:.0f} s; this assertion needs {after:g} s")
    peak, value = max(late, key=lambda sv: sv[1])
    return Measured(value, f"max over {len(late)} samples after {after:g} s (at {peak.t - start:.0f} s)")


HEAP_INUSE_AFTER_5MIN = register(Assertion(
    name="heap_inuse_after_5min",
    summary="max heapInuse once heap_inuse_after_s of use have passed",
    unit="B",
    thresholds=(
        Threshold("heap_inuse_after_5min_bytes", 64 * MiB, "heapInuse ceiling after the first minutes"),
        Threshold("heap_inuse_after_s", 300.0, "seconds of use before the ceiling applies"),
    ),
    measure=_measure_heap_after,
    reads=("samples", "initial", "start_t"),
    tolerance=Tolerance(abs=MiB, rel=0.10),
))


# -- dom_handles_max ---------------------------------------------------------------------------------


def _measure_dom(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    d = dom_handles(ev.samples)
    if d is None:
        return NotMeasured("DOM handle count unavailable")
    return Measured(d.max, f"final {d.final}, over {d.samples} samples")


def _explain_dom(r: AssertionResult, ev: Evidence) -> str | None:
    # the seed's threshold log names the table that grew and when it crossed each mark
    marks = [str(x.get("value")) for x in ev.alloc_log if x.get("source") == "dom"]
    if not marks:
        return None
    return f"{r.detail}; __moxie_alloc_log: dom _elements.size reached {', '.join(marks)}"


DOM_HANDLES_MAX = register(Assertion(
    name="dom_handles_max",
    summary="max DOM handle table size, whole run",
    unit="handles",
    thresholds=(Threshold("dom_handles_max", 3000, "DOM handle table size allowed at any time"),),
    measure=_measure_dom,
    reads=("samples", "alloc_log"),
    explain=_explain_dom,
    tolerance=Tolerance(abs=50, rel=0.10),
))


# -- subscriptions_closed_when_idle ------------------------------------------------------------------


def _measure_subs(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    n = ev.subscriptions_open_when_idle
    if n is None and ev.idle is not None:
        n = ev.idle.subscriptions_open
    if n is None:
        return NotMeasured("not checked: no idle point in this run")
    when = ev.subscriptions_counted or "when idle was declared"
    detail = f"relay-side subscriptions this client held {when}"
    if n and ev.subscriptions_detail:
        detail += f": {ev.subscriptions_detail}"
    return Measured(n, detail, source="relay")


SUBSCRIPTIONS_CLOSED_WHEN_IDLE = register(Assertion(
    name="subscriptions_closed_when_idle",
    summary="relay-side open subscriptions of the client at idle",
    unit="subscriptions",
    comparison="<=",
    thresholds=(
        Threshold("subscriptions_open_when_idle_max", 0, "subscriptions the client may hold when idle"),
    ),
    measure=_measure_subs,
    requires="idle",
    requires_text="a measure_idle step",
    reads=("subscriptions_open_when_idle", "idle", "subscriptions_detail", "subscriptions_counted"),
    tolerance=Tolerance(),  # an exact count: one more subscription left open is a regression
))


# -- subscriptions_bounded ---------------------------------------------------------------------------


def _measure_bounded(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    settled, peak = ev.subscriptions_settled, ev.subscriptions_peak
    if settled is None or peak is None:
        return NotMeasured(
            "the page never settled (no relay attached, or an EOSE to the client at least every second)"
        )
    added = peak.n - settled.n
    detail = f"most held at once by a settled page {peak.n} (at {peak.at}), {settled.n} by the first"
    if added > 0:
        before = {(h.conn, h.sub_id) for h in settled.held}
        new = [h for h in peak.held if (h.conn, h.sub_id) not in before]
        detail += "; added: " + describe_held(new, most=5)
    return Measured(added, detail, source="relay")


SUBSCRIPTIONS_BOUNDED = register(Assertion(
    name="subscriptions_bounded",
    summary="most subscriptions a settled page held at once, beyond those the first settled page held",
    unit="subscriptions",
    comparison="<=",
    thresholds=(
        Threshold(
            "subscriptions_added_max", 0,
            "subscriptions a client may hold at once beyond those of its first settled page",
        ),
    ),
    measure=_measure_bounded,
    reads=("subscriptions_settled", "subscriptions_peak"),
    # explore checks subscriptions_agree after every step; this one is a scenario's whole-run figure
    explore=False,
    tolerance=Tolerance(),  # an exact count
))


# -- thread_events_released --------------------------------------------------------------------------


def _measure_thread(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    if not ev.thread_closes:
        return NotMeasured("no thread was opened and closed in this run")
    known = [(c, v) for c in ev.thread_closes if (v := c.after_close.get(THREAD_EVENTS)) is not None]
    if not known:
        return NotMeasured("thread_events figure unavailable (app does not report threadEvents)")
    worst, value = max(known, key=lambda cv: cv[1])
    d0, d1 = worst.before_open.get(DOM_HANDLES), worst.after_close.get(DOM_HANDLES)
    dom = "" if d0 is None or d1 is None else f", DOM handles {d0} -> {d1}"
    label = f" ({worst.label})" if worst.label else ""
    return Measured(value, f"max threadEvents entries left after {len(known)} thread close(s){label}{dom}")


THREAD_EVENTS_RELEASED = register(Assertion(
    name="thread_events_released",
    summary="max live threadEvents entries after any thread closed",
    unit="events",
    comparison="<=",
    thresholds=(
        Threshold("thread_events_retained_max", 0, "threadEvents entries a closed thread may leave"),
    ),
    measure=_measure_thread,
    requires="thread",
    requires_text="an open_thread step",
    reads=("thread_closes",),
    tolerance=Tolerance(),  # an exact count
))


# -- cycle_growth ------------------------------------------------------------------------------------


def _measure_cycles(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    c = ev.cycles
    if c is None and not any(s.get(HEAP_INUSE) is not None for s in ev.samples):
        from relaysim.analysis._assertions_browser import app_memory_cycles

        # no hooks: the browser's own figures (every isolate after GC), said in the result's source
        fallback = app_memory_cycles(ev)
        if fallback is not None:
            return fallback
    if c is None:
        return NotMeasured(ev.cycles_unavailable or "no repeat with measure_cycles = true in this run")
    ignoring = f", {', '.join(c.ignore_sites)} taken out" if c.ignore_sites else ""
    detail = f"weakest of {c.cycles} cycle(s) after {c.warmup} warm-up ({c.figure}{ignoring})"
    if c.sites:
        grew = ", ".join(f"{s.name} +{s.min_bytes:,} B/cycle" for s in c.sites[:5])
        detail += f"; grew in every cycle: {grew}"
    else:
        detail += "; no site grew in every cycle"
    return Measured(c.weakest, detail, "hooks")


CYCLE_GROWTH = register(Assertion(
    name="cycle_growth",
    summary="smallest heapInuse growth of any measured cycle (ignored sites out)",
    unit="B/cycle",
    thresholds=(Threshold("cycle_growth_bytes", 4096, "growth allowed per return to the same page state"),),
    measure=_measure_cycles,
    requires="cycles",
    requires_text="a repeat with measure_cycles = true",
    reads=("cycles", "cycles_unavailable", "samples", "browser_cycles"),
    tolerance=Tolerance(abs=1024, rel=0.25),
))


# -- cache_entries_bounded ---------------------------------------------------------------------------


def _measure_caches(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    peaks = cache_peaks(ev.cache_readings)
    if not peaks:
        return NotMeasured(ev.cache_unavailable or "no cache sizes read in this run")
    default = th.cache_default_limit
    rated = sorted(((cache_ratio(p, default), p) for p in peaks), key=lambda rp: -rp[0])
    worst_ratio, worst = rated[0]
    limit = worst.limit if worst.limit is not None else default
    over = [p for r, p in rated if r > th.cache_limit_factor]
    if over:
        listed = ", ".join(
            f"{p.group} ({p.site}) {p.max_entries} entries > {th.cache_limit_factor:g} x limit "
            f"{p.limit if p.limit is not None else default:g}"
            for p in over
        )
        detail = f"unbounded: {listed}"
    else:
        detail = (
            f"largest: {worst.group} ({worst.site}) {worst.max_entries} entries, limit {limit:g}; "
            f"{len(peaks)} groups over {len(ev.cache_readings)} readings"
        )
    return Measured(round(worst_ratio, 4), detail)


CACHE_ENTRIES_BOUNDED = register(Assertion(
    name="cache_entries_bounded",
    summary="largest entries / declared limit of any cache group over the run",
    unit="x limit",
    comparison="<=",
    thresholds=(
        Threshold("cache_limit_factor", 2, "how far past its declared limit a cache group may grow"),
        Threshold("cache_default_limit", 10000, "limit of a cache group that declares none"),
    ),
    measure=_measure_caches,
    reads=("cache_readings", "cache_unavailable"),
    # a rotating pair holds between 1 and 2 generations depending on when it was read: a whole limit
    tolerance=Tolerance(abs=1.0),
))


# -- revisit_growth ----------------------------------------------------------------------------------


def _measure_revisits(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    if ev.re_spent_sites is None:
        return NotMeasured(
            "the adapter declares no re_spent_sites (the sites the app spends again on every page load; "
            "an empty list if none)"
        )
    if not any(v.state is not None for v in ev.page_visits):
        return NotMeasured("the app reports no page state (__relaysim_app_state().page)")
    got = return_growths(ev.page_visits, ev.re_spent_sites, ev.cache_readings)
    if isinstance(got, str):
        return NotMeasured(got)
    skipped = _skipped(got)
    if not got.judged:
        return NotMeasured(f"no return to an earlier page state in this run{skipped}")
    worst = max(got.judged, key=lambda r: r.growth)
    out = ", ".join(ev.re_spent_sites)
    detail = (
        f"worst: {worst.visit.step} to {short_state(worst.visit.state)} +{worst.growth:,.0f} B; "
        f"{len(got.judged)} return(s) judged{skipped}; taken out: {out or 'nothing'}"
    )
    if worst.sites:
        detail += "; grew: " + ", ".join(f"{d.name} +{d.bytes:,} B" for d in worst.sites[:3])
    return Measured(worst.growth, detail)


def _skipped(got: Returns) -> str:
    parts = []
    if got.after_new_events:
        parts.append(f"{got.after_new_events} after new events on the relay")
    if got.after_eviction:
        parts.append(f"{got.after_eviction} after a cache evicted entries")
    return f" ({', '.join(parts)} not judged)" if parts else ""


REVISIT_GROWTH = register(Assertion(
    name="revisit_growth",
    summary="largest heapInuse growth of a step returning to an earlier page state (re-spent sites out)",
    unit="B/return",
    thresholds=(
        # A sound client keeps exactly 0 B on a return; 2 KiB is room for a small re-allocation, and
        # stays above one 1 KiB tick of a timer that happens to fire during the step.
        Threshold("revisit_growth_bytes", 2048, "growth allowed when returning to a page state shown before"),
    ),
    measure=_measure_revisits,
    reads=("page_visits", "re_spent_sites", "cache_readings"),
    tolerance=Tolerance(abs=1024, rel=0.25),
))


# -- subscriptions_agree -----------------------------------------------------------------------------


def _measure_agree(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    known = [v for v in ev.subscription_views if v.app is not None]
    if not known:
        if ev.subscription_views:
            return NotMeasured("the app does not report its subscriptions (__relaysim_app_state().subs)")
        return NotMeasured("no browsing step in this run")
    worst = max(known, key=subscription_disagreement)
    n = subscription_disagreement(worst)
    if n == 0:
        return Measured(0, f"app and relay agreed after each of {len(known)} step(s)")
    parts = []
    if worst.relay_only:
        parts.append(f"the relay holds {', '.join(worst.relay_only)} that the app no longer knows")
    if worst.app_only:
        parts.append(f"the app believes {', '.join(worst.app_only)} open, the relay does not")
    return Measured(n, f"after {worst.step}: {'; '.join(parts)}")


SUBSCRIPTIONS_AGREE = register(Assertion(
    name="subscriptions_agree",
    summary="subscriptions one side holds and the other does not, after any browsing step",
    unit="subscriptions",
    comparison="<=",
    thresholds=(
        Threshold("subscriptions_disagree_max", 0, "subscriptions the app and the relay may see differently"),
    ),
    measure=_measure_agree,
    reads=("subscription_views",),
    tolerance=Tolerance(),  # an exact count
))


# -- no_events_after_close ---------------------------------------------------------------------------


def _measure_after_close(ev: Evidence, th: Thresholds) -> Measured | NotMeasured:
    totals = ev.relay_totals
    if totals is None:
        return NotMeasured("no relay attached to this run")
    n = totals.get("events_after_close")
    if not isinstance(n, int | float) or isinstance(n, bool):
        return NotMeasured("the relay does not count EVENTs after CLOSE (/stats totals.events_after_close)")
    closed = totals.get("subs_closed")
    of = f"; {closed} subscription(s) closed in all" if isinstance(closed, int) else ""
    return Measured(n, f"EVENTs the relay wrote on closed subscriptions (/stats){of}")


NO_EVENTS_AFTER_CLOSE = register(Assertion(
    name="no_events_after_close",
    summary="EVENT messages the relay wrote on a subscription after it was closed",
    unit="events",
    comparison="<=",
    thresholds=(Threshold("events_after_close_max", 0, "EVENTs allowed on closed subscriptions"),),
    measure=_measure_after_close,
    reads=("relay_totals",),
    tolerance=Tolerance(),  # an exact count
))
