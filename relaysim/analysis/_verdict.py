"""Memory assertions as declarations: one :class:`Assertion` object per assertion, and its verdicts.

Theory of operation: an assertion is declared once (:mod:`relaysim.analysis._assertions` holds the
shipped ones) with its name, its thresholds and their defaults, what it measures, the scenario
capability it needs (``requires``: a step that provides ``"idle"``, ``"thread"``, ``"cycles"``), the
:class:`Evidence` fields it reads, a ``measure`` function and an optional ``explain``. Everything
else derives from the registry: :class:`Thresholds` (the valid ``[thresholds]`` keys and their
defaults), :data:`ASSERTION_NAMES`, :func:`evaluate`, the scenario parser's prerequisite checks, the
pytest helpers and the documentation tables. Adding an assertion is one :func:`register` call.

Each assertion has a ``scope``: ``"run"`` (the default) for what a scenario judges, ``"soak"`` for the
trend verdicts of ``relaysim soak`` (:mod:`relaysim.analysis._soak`), judged on a whole soak's
timeline. Everything a scenario sees -- :data:`ASSERTIONS`, :func:`assertion_names`, ``names = "all"``,
:func:`evaluate` without names, ``Thresholds()`` and the keys a ``[thresholds]`` table may set -- is
the run scope; the soak asks for its scope by name (``assertion_names("soak")``,
``Thresholds.for_scope("soak")``). A soak assertion may share a run threshold (the idle budget) by
declaring the very same :class:`Threshold` object.

``measure`` turns evidence into a :class:`Measured` value or a :class:`NotMeasured` reason;
:meth:`Assertion.judge` compares it with the threshold. A figure that could not be read gives
``UNAVAILABLE`` with ``measured=None`` and a detail saying why -- never a number standing in for it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from relaysim.analysis._browsing import PageVisit, SubscriptionView
from relaysim.analysis._cycles import CacheGroupSize, CycleGrowth
from relaysim.analysis._idle import IdleMeasurement
from relaysim.analysis._isolates import BrowserCycles, IsolateReading
from relaysim.analysis._samples import Sample
from relaysim.analysis._sites import SiteDelta
from relaysim.analysis._subs import SubscriptionCount

if TYPE_CHECKING:
    from relaysim.analysis._soak import SoakAnalysis

__all__ = [
    "ASSERTIONS",
    "SCOPES",
    "Assertion",
    "AssertionResult",
    "Evidence",
    "Measured",
    "NotMeasured",
    "ThreadClose",
    "Threshold",
    "ThresholdError",
    "Thresholds",
    "Tolerance",
    "Verdict",
    "assertion_names",
    "evaluate",
    "get_assertion",
    "overall_verdict",
    "register",
]


SCOPES: tuple[str, ...] = ("run", "soak")
"""Where an assertion is judged: a scenario run, or a whole soak (see the module docstring)."""


class Verdict(enum.StrEnum):
    """Outcome of one assertion (and of a run)."""

    PASS = "PASS"
    FAIL = "FAIL"
    UNAVAILABLE = "UNAVAILABLE"


class ThresholdError(ValueError):
    """A thresholds table names an unknown key or gives a bad value; ``key`` says which."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class AssertionResult:
    """One assertion's outcome: ``measured`` is ``None`` exactly when the verdict is UNAVAILABLE.

    ``comparison`` is how ``measured`` must relate to ``threshold`` to pass ("<" or "<=").
    """

    name: str
    threshold: float
    measured: float | None
    unit: str
    verdict: Verdict
    detail: str = ""
    comparison: str = "<"
    source: str = ""


@dataclass(frozen=True, slots=True)
class ThreadClose:
    """Samples around one thread: just before it opened and just after it closed (page left)."""

    before_open: Sample
    after_close: Sample
    label: str = ""


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a run measured, for :func:`evaluate`. Every field may be missing.

    ``samples`` is the timeline in time order. ``initial``/``final`` default to its ends and
    ``start_t`` to ``initial.t`` (when use of the app began). ``idle`` is the idle measurement;
    ``idle_unavailable`` says why there is none (e.g. "app lacks __moxie_mem_stats");
    ``idle_site_deltas`` what each allocation site spent during it. ``subscriptions_open_when_idle``
    is the relay's count for this client after close-all and settling (``None`` = not checked) and
    ``subscriptions_detail`` names them. ``cycles`` is the measured repeat's growth per cycle
    (``cycles_unavailable`` says why there is none); ``cache_readings`` are ``(t, sizes)`` pairs
    from ``__moxie_cache_sizes()`` (``cache_unavailable`` says why there are none). ``alloc_log`` is
    the seed's threshold log (``__moxie_alloc_log`` records). ``soak`` is a whole soak's trend
    analysis (:class:`~relaysim.analysis.SoakAnalysis`), read by the soak-scope assertions only.
    ``page_visits`` and ``subscription_views`` are read after every browsing step
    (:mod:`relaysim.analysis._browsing`); ``re_spent_sites`` are the allocation sites the app spends
    again by design on every page load (the adapter's declaration; None = not declared);
    ``relay_totals`` is the relay's ``/stats`` totals when judged (None = no relay attached).
    ``isolates`` are the browser-level readings (every isolate after a forced GC) in time order, and
    ``browser_cycles`` their growth per measured cycle (``browser_cycles_unavailable`` says why there is
    none): what the assertions read when the app has no hooks (:mod:`relaysim.analysis._isolates`).
    ``subscriptions_counted`` says how the idle count was taken (after ``__moxie_close_all()``, or
    after the settle for an app without it); ``subscriptions_settled`` is what this run's connections
    held once the first page settled and ``subscriptions_peak`` the most they held at once (both
    :class:`~relaysim.analysis._subs.SubscriptionCount`, each subscription with its filters).
    """

    samples: Sequence[Sample] = ()
    initial: Sample | None = None
    final: Sample | None = None
    start_t: float | None = None
    idle: IdleMeasurement | None = None
    idle_unavailable: str | None = None
    idle_site_deltas: Sequence[SiteDelta] = ()
    subscriptions_open_when_idle: int | None = None
    subscriptions_detail: str | None = None
    thread_closes: Sequence[ThreadClose] = ()
    cycles: CycleGrowth | None = None
    cycles_unavailable: str | None = None
    cache_readings: Sequence[tuple[float, Sequence[CacheGroupSize]]] = ()
    cache_unavailable: str | None = None
    alloc_log: Sequence[Mapping[str, Any]] = ()
    soak: SoakAnalysis | None = None
    page_visits: Sequence[PageVisit] = ()
    subscription_views: Sequence[SubscriptionView] = ()
    re_spent_sites: Sequence[str] | None = None
    relay_totals: Mapping[str, Any] | None = None
    isolates: Sequence[IsolateReading] = ()
    browser_cycles: BrowserCycles | None = None
    browser_cycles_unavailable: str | None = None
    subscriptions_counted: str | None = None
    subscriptions_settled: SubscriptionCount | None = None
    subscriptions_peak: SubscriptionCount | None = None

    def first(self) -> Sample | None:
        return self.initial if self.initial is not None else (self.samples[0] if self.samples else None)

    def last(self) -> Sample | None:
        return self.final if self.final is not None else (self.samples[-1] if self.samples else None)


@dataclass(frozen=True, slots=True)
class Threshold:
    """One ``[thresholds]`` key: its default (the seed's figure where the seed gives one) and meaning."""

    key: str
    default: float
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Measured:
    """What ``measure`` read: the figure to compare with the threshold, and how it was read; ``source``
    says where the figure came from ("hooks", "browser", "relay") when an assertion can read more than
    one (``heap_delta`` and ``cycle_growth`` fall back to the browser's figures without hooks)."""

    value: float
    detail: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class NotMeasured:
    """Why ``measure`` could not read its figure (the result is UNAVAILABLE with this as detail)."""

    why: str


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far a figure may move between two runs before ``relaysim compare`` calls it a change.

    A change counts when ``|new - base| > max(abs, rel * |base|)``: ``abs`` in the assertion's unit
    covers the noise floor of a figure near zero, ``rel`` (0.25 = 25 %) that of a large one. Both 0:
    any change counts (exact counts such as subscriptions left open).
    """

    abs: float = 0.0
    rel: float = 0.0

    def __post_init__(self) -> None:
        for name in ("abs", "rel"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise ValueError(f"tolerance {name} must be a number >= 0, got {v!r}")

    def margin(self, base: float) -> float:
        """The largest change from ``base`` that is still noise."""
        return max(self.abs, self.rel * abs(base))


Measure = Callable[[Evidence, "Thresholds"], Measured | NotMeasured]
Explain = Callable[[AssertionResult, Evidence], str | None]


@dataclass(frozen=True)
class Assertion:
    """One memory assertion, declared once.

    ``thresholds[0]`` is the limit the figure is compared with (``comparison``: "<" or "<="); the
    others tune how it is measured. ``requires`` names the capability a scenario must provide before
    an ``assert`` step may name this assertion (a step that declares it in ``provides``), and
    ``requires_text`` says it to a person ("a measure_idle step"). ``reads`` lists the
    :class:`Evidence` fields ``measure`` looks at. ``explain`` rewrites a failing result's detail to
    name what grew or what was held; it returns None when it has nothing to add. ``scope`` is
    ``"run"`` or ``"soak"`` (module docstring). ``explore`` says whether ``relaysim explore`` judges
    it on generated sessions: False for a budget that only makes sense for one scenario's length
    (``heap_delta``: a heap that never frees grows with every page a session loads). ``tolerance``
    is the run-to-run noise ``relaysim compare`` allows on the measured figure (and on the per-site
    figures behind it) before it calls the change a regression or an improvement.
    """

    name: str
    summary: str
    unit: str
    thresholds: tuple[Threshold, ...]
    measure: Measure
    comparison: str = "<"
    requires: str | None = None
    requires_text: str = ""
    reads: tuple[str, ...] = ()
    explain: Explain | None = None
    scope: str = "run"
    explore: bool = True
    tolerance: Tolerance = Tolerance()

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"assertion {self.name}: scope must be one of {SCOPES}: {self.scope!r}")
        if self.comparison not in ("<", "<="):
            raise ValueError(f"assertion {self.name}: comparison must be '<' or '<=': {self.comparison!r}")
        if not self.thresholds:
            raise ValueError(f"assertion {self.name}: needs at least one threshold")
        unknown = [r for r in self.reads if r not in Evidence.__dataclass_fields__]
        if unknown:
            raise ValueError(f"assertion {self.name}: reads unknown evidence fields {unknown}")
        if self.requires is not None and not self.requires_text:
            raise ValueError(f"assertion {self.name}: requires {self.requires!r} needs requires_text")

    @property
    def limit_key(self) -> str:
        """The threshold key the measured figure is compared with."""
        return self.thresholds[0].key

    def passes(self, measured: float, limit: float) -> bool:
        return measured < limit if self.comparison == "<" else measured <= limit

    def judge(self, evidence: Evidence, thresholds: Thresholds | None = None) -> AssertionResult:
        """Measure, compare, and explain a failure."""
        th = thresholds if thresholds is not None else Thresholds.for_scope(self.scope)
        limit = th[self.limit_key]
        got = self.measure(evidence, th)
        if isinstance(got, NotMeasured):
            return AssertionResult(
                self.name, limit, None, self.unit, Verdict.UNAVAILABLE, got.why, self.comparison
            )
        verdict = Verdict.PASS if self.passes(got.value, limit) else Verdict.FAIL
        result = AssertionResult(
            self.name, limit, got.value, self.unit, verdict, got.detail, self.comparison, got.source
        )
        if verdict == Verdict.FAIL and self.explain is not None:
            detail = self.explain(result, evidence)
            if detail is not None:
                result = AssertionResult(
                    result.name, limit, got.value, self.unit, verdict, detail, self.comparison, got.source
                )
        return result


_REGISTRY: dict[str, Assertion] = {}
_THRESHOLDS: dict[str, Threshold] = {}


class _ScopeView(Mapping[str, Assertion]):
    """The registered assertions of one scope, read live from the registry (never a copy to keep in step)."""

    def __init__(self, scope: str) -> None:
        self._scope = scope

    def __getitem__(self, name: str) -> Assertion:
        a = _REGISTRY[name]
        if a.scope != self._scope:
            raise KeyError(name)
        return a

    def __iter__(self) -> Iterator[str]:
        return iter([n for n, a in _REGISTRY.items() if a.scope == self._scope])

    def __len__(self) -> int:
        return sum(1 for a in _REGISTRY.values() if a.scope == self._scope)


ASSERTIONS: Mapping[str, Assertion] = _ScopeView("run")
"""Every registered run-scope assertion by name, in registration (report) order."""


def register(assertion: Assertion) -> Assertion:
    """Add ``assertion`` to the registry; its name must be new, and so must each threshold key
    unless it is the very :class:`Threshold` object already declared (a shared limit)."""
    if assertion.name in _REGISTRY:
        raise ValueError(f"assertion {assertion.name!r} is registered already")
    for t in assertion.thresholds:
        if t.key in _THRESHOLDS and _THRESHOLDS[t.key] is not t:
            raise ValueError(f"threshold {t.key!r} of {assertion.name} is declared already")
    _REGISTRY[assertion.name] = assertion
    for t in assertion.thresholds:
        _THRESHOLDS[t.key] = t
    return assertion


def assertion_names(scope: str = "run") -> tuple[str, ...]:
    """The names of the registered assertions of ``scope``, in report order."""
    return tuple(name for name, a in _REGISTRY.items() if a.scope == scope)


def get_assertion(name: str) -> Assertion:
    """The assertion called ``name`` (any scope); ``ValueError`` naming the run ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown assertion {name!r} (expected one of: {', '.join(ASSERTIONS)})") from None


def _scope_keys(scope: str) -> list[str]:
    """Threshold keys in force for ``scope``: the run's, plus the soak's own for ``"soak"`` (a key
    belongs to the scope of the first assertion that declares it)."""
    owner: dict[str, str] = {}
    for a in _REGISTRY.values():
        for t in a.thresholds:
            owner.setdefault(t.key, a.scope)
    return [k for k in _THRESHOLDS if owner.get(k, "run") in ("run", scope)]


class Thresholds:
    """Limits for the assertions: every registered threshold key with its value (defaults: the seed's).

    Read as ``th.idle_rate_bps`` or ``th["idle_rate_bps"]``; build with keyword overrides
    (``Thresholds(idle_rate_bps=2048)``) or :meth:`with_overrides` (a scenario's ``[thresholds]``
    table). Immutable; equal when every value is equal. ``Thresholds()`` holds the run scope's
    keys; :meth:`for_scope` ``("soak")`` adds the soak's own.
    """

    __slots__ = ("_scope", "_values")
    _scope: str
    _values: Mapping[str, float]

    def __init__(self, **overrides: float) -> None:
        self._init("run", overrides)

    def _init(self, scope: str, overrides: Mapping[str, object]) -> None:
        keys = _scope_keys(scope)
        values = {key: _THRESHOLDS[key].default for key in keys}
        values.update(_checked(overrides, keys))
        object.__setattr__(self, "_scope", scope)
        object.__setattr__(self, "_values", MappingProxyType(values))

    @classmethod
    def for_scope(cls, scope: str, overrides: Mapping[str, object] | None = None) -> Thresholds:
        """The thresholds in force for ``scope`` ("run" or "soak"), with ``overrides`` applied."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}: {scope!r}")
        new = cls.__new__(cls)
        new._init(scope, overrides or {})
        return new

    @staticmethod
    def known_keys(scope: str = "run") -> tuple[str, ...]:
        """The valid keys of a ``[thresholds]`` table (of ``scope``), sorted."""
        return tuple(sorted(_scope_keys(scope)))

    @staticmethod
    def declared(scope: str = "run") -> tuple[Threshold, ...]:
        """Every threshold declared for ``scope``, in registration order."""
        return tuple(_THRESHOLDS[k] for k in _scope_keys(scope))

    def with_overrides(self, overrides: Mapping[str, object]) -> Thresholds:
        """A copy with ``overrides`` applied; raises :class:`ThresholdError` on a bad key or value."""
        new = Thresholds.__new__(Thresholds)
        values = {**self._values, **_checked(overrides, list(self._values))}
        object.__setattr__(new, "_scope", self._scope)
        object.__setattr__(new, "_values", MappingProxyType(values))
        return new

    def __getitem__(self, key: str) -> float:
        return self._values[key]

    def __getattr__(self, key: str) -> float:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("Thresholds is immutable; use with_overrides()")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Thresholds) and dict(self._values) == dict(other._values)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __repr__(self) -> str:
        changed = {k: v for k, v in self._values.items() if k in _THRESHOLDS and v != _THRESHOLDS[k].default}
        return f"Thresholds({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def to_dict(self) -> dict[str, float]:
        return dict(self._values)


def _checked(overrides: Mapping[str, object], keys: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in overrides.items():
        if key not in keys:
            known = ", ".join(sorted(keys))
            raise ThresholdError(key, f"unknown threshold {key!r} (expected one of: {known})")
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value < 0:  # type: ignore[arg-type,operator]
            raise ThresholdError(key, f"threshold {key!r} must be a number >= 0, got {value!r}")
        out[key] = value  # type: ignore[assignment]
    return out


def evaluate(
    evidence: Evidence, thresholds: Thresholds | None = None, names: Iterable[str] | None = None
) -> list[AssertionResult]:
    """Judge ``names`` (default: every run-scope assertion) on ``evidence``.

    Raises ``ValueError`` for an unknown name (scenario files are checked when loaded). Without
    ``thresholds``, naming a soak-scope assertion uses ``Thresholds.for_scope("soak")``.
    """
    chosen = [get_assertion(n) for n in (ASSERTIONS if names is None else names)]
    scope = "soak" if any(a.scope == "soak" for a in chosen) else "run"
    th = thresholds if thresholds is not None else Thresholds.for_scope(scope)
    return [a.judge(evidence, th) for a in chosen]


def overall_verdict(results: Iterable[AssertionResult]) -> Verdict:
    """FAIL if any failed; else UNAVAILABLE if any could not be measured; else PASS (also when empty)."""
    verdicts = {r.verdict for r in results}
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.UNAVAILABLE in verdicts:
        return Verdict.UNAVAILABLE
    return Verdict.PASS
