"""Comparing two runs of the same scenario: what grew since the baseline, and where.

Theory of operation. ``relaysim run`` is an absolute gate (the seed's thresholds); a regression gate
asks a relative question -- did this change make the client worse than the baseline it is held to --
so a creep from 200 to 900 B/s idle, or a new site keeping 3 KB per cycle, shows while both still
pass. Two reports are comparable only when they ran the same scenario on the same data
(:class:`Identity`: scenario name, dataset name and spec digest; the built file's own sha256
embeds the relay URL, so it names the data only when no spec digest is known). Then, figure by
figure, lower is better:

* each assertion both reports judged, on its measured value (already the weakest of N where the
  assertion measures N: the idle window with the highest rate, the cycle with the least growth);
* behind the assertions, per allocation site: the idle rate of each site in the weakest idle window
  (``idle.sites``, under ``idle_rate``), the smallest growth of each site over the measured cycles
  (``cycles.sites``; a site absent grew 0 in some cycle; under ``cycle_growth``), and each cache
  group's most entries over its limit (``caches``, under ``cache_entries_bounded``).

A change is noise while ``|new - base| <= max(abs, rel * |base|)`` (the assertion's declared
:class:`~relaysim.analysis.Tolerance`, or an override); beyond that it is REGRESSED (up) or IMPROVED
(down). An assertion that passed and now fails is REGRESSED whatever the size of the step (and the
reverse IMPROVED): the absolute gate has already said so. A figure the baseline measured that the new
run could not is REGRESSED too -- a gate must not go green because a figure disappeared; a figure
only one side has is NOT_COMPARED, with the reason. Pure: values in, a :class:`Comparison` out.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from relaysim.analysis._cycles import CachePeak, CycleGrowth, cache_ratio
from relaysim.analysis._idle import IdleMeasurement
from relaysim.analysis._verdict import AssertionResult, Tolerance, Verdict, assertion_names, get_assertion

__all__ = [
    "Change",
    "Comparison",
    "FigureChange",
    "Identity",
    "Incomparable",
    "Subject",
    "compare",
    "identity_differences",
    "parse_tolerance",
    "tolerance_for",
]

DEFAULT_CACHE_LIMIT = 10000.0
"""``cache_default_limit`` when a report does not say (the registered default)."""


class Change(enum.StrEnum):
    """One figure's verdict, and the comparison's: REGRESSED if any figure regressed, else IMPROVED
    if any improved, else SAME."""

    REGRESSED = "regressed"
    IMPROVED = "improved"
    SAME = "same"
    NOT_COMPARED = "not compared"


@dataclass(frozen=True, slots=True)
class Identity:
    """What a run ran on: the scenario, the dataset (name, spec digest, built file's sha256), the app
    (its mode: ``fixed``, ``leaks=idle``, ``external``; and URL), the relaysim version. Only the scenario
    and the dataset decide whether two runs may be compared; the rest says what changed."""

    scenario: str
    dataset_name: str | None = None
    dataset_spec_sha256: str | None = None
    dataset_sha256: str | None = None
    app_mode: str | None = None
    app_url: str | None = None
    relaysim: str | None = None


class Incomparable(ValueError):
    """The two reports did not run the same scenario on the same dataset; ``reasons`` says what differs."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = tuple(reasons)


@dataclass(frozen=True, slots=True)
class Subject:
    """One side of a comparison: a run report's (or soak summary's) identity and figures.

    ``thresholds`` are the scenario's thresholds in force (for ``cache_default_limit``).
    """

    identity: Identity
    assertions: tuple[AssertionResult, ...] = ()
    idle: IdleMeasurement | None = None
    cycles: CycleGrowth | None = None
    caches: tuple[CachePeak, ...] | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FigureChange:
    """One compared figure: an assertion's measured value (``site`` None) or one site behind it.

    ``kind`` is ``"assertion"``, ``"idle site"``, ``"cycle site"`` or ``"cache group"``; ``change`` is
    ``new - base`` and ``relative`` that over ``|base|`` (None when either is unknown or base is 0);
    ``margin`` the largest change still taken as noise. ``detail`` says why the verdict was reached
    when it is not the plain size of the change; ``new_detail`` is the new run's own detail for the
    assertion (what grew), for a CI system's failure text.
    """

    assertion: str
    kind: str
    site: str | None
    unit: str
    base: float | None
    new: float | None
    change: float | None
    relative: float | None
    tolerance: Tolerance
    margin: float | None
    verdict: Change
    detail: str = ""
    base_verdict: str | None = None
    new_verdict: str | None = None
    new_detail: str = ""

    @property
    def label(self) -> str:
        """``idle_rate`` or ``idle_rate [idle site: idle timer]``."""
        return self.assertion if self.site is None else f"{self.assertion} [{self.kind}: {self.site}]"


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every compared figure, assertions first (in the new report's order), then the sites."""

    base: Identity
    new: Identity
    rows: tuple[FigureChange, ...]
    notes: tuple[str, ...] = ()

    @property
    def verdict(self) -> Change:
        got = {r.verdict for r in self.rows}
        for v in (Change.REGRESSED, Change.IMPROVED):
            if v in got:
                return v
        return Change.SAME

    @property
    def regressions(self) -> tuple[FigureChange, ...]:
        return tuple(r for r in self.rows if r.verdict is Change.REGRESSED)

    @property
    def improvements(self) -> tuple[FigureChange, ...]:
        return tuple(r for r in self.rows if r.verdict is Change.IMPROVED)

    @property
    def assertion_rows(self) -> tuple[FigureChange, ...]:
        return tuple(r for r in self.rows if r.site is None)

    @property
    def site_rows(self) -> tuple[FigureChange, ...]:
        return tuple(r for r in self.rows if r.site is not None)

    def grown_sites(self, n: int = 5) -> tuple[FigureChange, ...]:
        """Up to ``n`` sites that grew: regressed ones first, then by relative growth (new ones first)."""
        grew = [r for r in self.site_rows if r.change is not None and r.change > 0]
        grew.sort(key=lambda r: (r.verdict is not Change.REGRESSED,
                                 -(r.relative if r.relative is not None else math.inf), r.label))
        return tuple(grew[:n])


# --- identity ------------------------------------------------------------------------------------


def _short(digest: str | None) -> str:
    return "none" if digest is None else digest[:12]


def identity_differences(base: Identity, new: Identity) -> tuple[list[str], list[str]]:
    """``(reasons, notes)``: why the two cannot be compared (empty when they can), and what differs
    that does not stop a comparison (the built file's sha256, a missing spec digest, the app)."""
    reasons: list[str] = []
    notes: list[str] = []
    if base.scenario != new.scenario:
        reasons.append(f"the scenario differs: BASE ran {base.scenario!r}, NEW ran {new.scenario!r}")
    if base.dataset_name != new.dataset_name:
        reasons.append(f"the dataset differs by name: BASE {base.dataset_name!r}, NEW {new.dataset_name!r}")
    b_spec, n_spec = base.dataset_spec_sha256, new.dataset_spec_sha256
    files_differ = base.dataset_sha256 != new.dataset_sha256
    if b_spec is not None and n_spec is not None:
        if b_spec != n_spec:
            reasons.append(
                f"the dataset differs by spec digest: BASE {_short(b_spec)}, NEW {_short(n_spec)} "
                f"(same name {new.dataset_name!r}: its spec or the generator changed)"
                if base.dataset_name == new.dataset_name
                else f"the dataset differs by spec digest: BASE {_short(b_spec)}, NEW {_short(n_spec)}"
            )
        elif files_differ:
            notes.append(
                f"the dataset files' sha256 differ (BASE {_short(base.dataset_sha256)}, NEW "
                f"{_short(new.dataset_sha256)}) as they do when the relay URL differs; the spec digest "
                f"{_short(n_spec)} is the same, so is the data"
            )
    elif b_spec is None and n_spec is None:
        # No spec: a JSONL export was served (or old reports). Then the file is the data.
        if files_differ and base.dataset_name == new.dataset_name:
            reasons.append(
                f"the dataset file's sha256 differs: BASE {_short(base.dataset_sha256)}, NEW "
                f"{_short(new.dataset_sha256)}, and neither report records a dataset spec digest"
            )
    else:
        side = "BASE" if b_spec is None else "NEW"
        notes.append(f"{side} records no dataset spec digest: the datasets were matched by name only")
    if base.app_mode != new.app_mode:
        notes.append(f"app: BASE {base.app_mode}, NEW {new.app_mode}")
    if base.relaysim != new.relaysim:
        notes.append(f"relaysim: BASE {base.relaysim}, NEW {new.relaysim}")
    return reasons, notes


# --- tolerances ----------------------------------------------------------------------------------


def tolerance_for(assertion: str, overrides: Mapping[str, Tolerance] | None = None) -> Tolerance:
    """The tolerance of ``assertion``'s figures: an override, else the assertion's declared one
    (exact -- ``Tolerance()`` -- for an assertion this relaysim does not know)."""
    if overrides and assertion in overrides:
        return overrides[assertion]
    try:
        return get_assertion(assertion).tolerance
    except ValueError:
        return Tolerance()


def parse_tolerance(text: str) -> tuple[str, Tolerance]:
    """``NAME=ABS``, ``NAME=REL%`` or ``NAME=ABS,REL%`` (e.g. ``idle_rate=512,10%``) as
    ``(name, Tolerance)``; ``ValueError`` with a message saying how to write it."""
    how = f"--tolerance takes NAME=ABS, NAME=REL% or NAME=ABS,REL% (e.g. idle_rate=512,10%), got {text!r}"
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not name or not spec.strip():
        raise ValueError(how)
    known_names = (*assertion_names("run"), *assertion_names("soak"))
    if name not in known_names:
        known = ", ".join(known_names)
        raise ValueError(f"--tolerance: unknown assertion {name!r} (expected one of: {known})")
    absolute: float | None = None
    relative: float | None = None
    for part in (p.strip() for p in spec.split(",")):
        try:
            if part.endswith("%"):
                if relative is not None:
                    raise ValueError(how)
                relative = float(part[:-1]) / 100
            else:
                if absolute is not None:
                    raise ValueError(how)
                absolute = float(part)
        except ValueError:
            raise ValueError(how) from None
    for v in (absolute, relative):
        if v is not None and (not math.isfinite(v) or v < 0):
            raise ValueError(f"--tolerance {name}: values must be numbers >= 0, got {spec!r}")
    return name, Tolerance(abs=absolute or 0.0, rel=relative or 0.0)


# --- figures -------------------------------------------------------------------------------------


def _judge(
    assertion: str, kind: str, site: str | None, unit: str,
    base: float | None, new: float | None, tol: Tolerance,
) -> FigureChange:
    if base is None or new is None:
        return FigureChange(
            assertion, kind, site, unit, base, new, None, None, tol, None, Change.NOT_COMPARED
        )
    change = new - base
    relative = change / abs(base) if base != 0 else None
    margin = tol.margin(base)
    verdict = Change.SAME
    if change > margin:
        verdict = Change.REGRESSED
    elif -change > margin:
        verdict = Change.IMPROVED
    return FigureChange(assertion, kind, site, unit, base, new, change, relative, tol, margin, verdict)


def _assertion_rows(
    base: Sequence[AssertionResult], new: Sequence[AssertionResult], overrides: Mapping[str, Tolerance] | None
) -> list[FigureChange]:
    by_base = {r.name: r for r in base}
    by_new = {r.name: r for r in new}
    names = [r.name for r in new] + [r.name for r in base if r.name not in by_new]
    rows = []
    for name in names:
        b, n = by_base.get(name), by_new.get(name)
        tol = tolerance_for(name, overrides)
        unit = (n or b).unit  # type: ignore[union-attr]  # one of them is there
        if b is None or n is None:
            only = "NEW" if b is None else "BASE"
            row = _judge(name, "assertion", None, unit, None, None, tol)
            rows.append(_with(row, detail=f"judged in {only} only", b=b, n=n))
            continue
        row = _judge(name, "assertion", None, unit, b.measured, n.measured, tol)
        if b.measured is not None and n.measured is None:
            row = _with(row, verdict=Change.REGRESSED, detail=f"measured in BASE, not in NEW: {n.detail}")
        elif b.measured is None and n.measured is not None:
            row = _with(row, detail=f"not measured in BASE: {b.detail}")
        elif b.measured is None:
            row = _with(row, detail="measured in neither")
        elif b.verdict is Verdict.PASS and n.verdict is Verdict.FAIL:
            row = _with(row, verdict=Change.REGRESSED, detail="PASS -> FAIL")
        elif b.verdict is Verdict.FAIL and n.verdict is Verdict.PASS:
            row = _with(row, verdict=Change.IMPROVED, detail="FAIL -> PASS")
        if b.threshold != n.threshold:
            extra = f"threshold {b.comparison} {b.threshold:g} in BASE, {n.comparison} {n.threshold:g} in NEW"
            row = _with(row, detail=f"{row.detail}; {extra}" if row.detail else extra)
        rows.append(_with(row, b=b, n=n))
    return rows


def _with(
    row: FigureChange, *, verdict: Change | None = None, detail: str | None = None,
    b: AssertionResult | None = None, n: AssertionResult | None = None,
) -> FigureChange:
    return FigureChange(
        row.assertion, row.kind, row.site, row.unit, row.base, row.new, row.change, row.relative,
        row.tolerance, row.margin, verdict if verdict is not None else row.verdict,
        detail if detail is not None else row.detail,
        b.verdict.value if b is not None else row.base_verdict,
        n.verdict.value if n is not None else row.new_verdict,
        n.detail if n is not None else row.new_detail,
    )


def _site_rows(
    assertion: str, kind: str, unit: str,
    base: Mapping[str, float] | None, new: Mapping[str, float] | None, tol: Tolerance,
) -> list[FigureChange]:
    """One row per site either side has; a site missing on one side counts 0 there (it did not
    grow), when that side measured the sites at all."""
    if base is None or new is None:
        return []
    names = list(new) + [s for s in base if s not in new]
    rows = [_judge(assertion, kind, s, unit, base.get(s, 0.0), new.get(s, 0.0), tol) for s in names]
    rows.sort(key=lambda r: (-(r.change or 0.0), r.site or ""))
    return rows


def _idle_sites(idle: IdleMeasurement | None) -> dict[str, float] | None:
    if idle is None or idle.sites is None:
        return None
    out: dict[str, float] = {}
    for s in idle.sites:
        out[s.name] = out.get(s.name, 0.0) + s.rate
    return out


def _cycle_sites(cycles: CycleGrowth | None) -> dict[str, float] | None:
    if cycles is None:
        return None
    return {s.name: float(s.min_bytes) for s in cycles.sites}


def _cache_groups(subject: Subject) -> dict[str, float] | None:
    if subject.caches is None:
        return None
    default = float(subject.thresholds.get("cache_default_limit", DEFAULT_CACHE_LIMIT))
    return {p.group: round(cache_ratio(p, default), 4) for p in subject.caches}


def compare(base: Subject, new: Subject, tolerances: Mapping[str, Tolerance] | None = None) -> Comparison:
    """Compare ``new`` with ``base`` (see the module docstring); :class:`Incomparable` when the two did
    not run the same scenario on the same dataset. ``tolerances`` override the declared ones by
    assertion name (and apply to the sites behind that assertion)."""
    reasons, notes = identity_differences(base.identity, new.identity)
    if reasons:
        raise Incomparable(reasons)
    rows = _assertion_rows(base.assertions, new.assertions, tolerances)
    sections: Iterable[tuple[str, str, str, dict[str, float] | None, dict[str, float] | None]] = (
        ("idle_rate", "idle site", "B/s", _idle_sites(base.idle), _idle_sites(new.idle)),
        ("cycle_growth", "cycle site", "B/cycle", _cycle_sites(base.cycles), _cycle_sites(new.cycles)),
        ("cache_entries_bounded", "cache group", "x limit", _cache_groups(base), _cache_groups(new)),
    )
    for assertion, kind, unit, b, n in sections:
        rows += _site_rows(assertion, kind, unit, b, n, tolerance_for(assertion, tolerances))
        if (b is None) != (n is None):
            notes.append(f"{kind}s not compared: {'BASE' if b is None else 'NEW'} has none")
    return Comparison(base.identity, new.identity, tuple(rows), tuple(notes))
