"""The run report: one versioned JSON document per run (schema ``relaysim.report/1``).

Theory of operation: the report is a tree of frozen dataclasses -- the analysis values
(:class:`~relaysim.analysis.IdleMeasurement`, :class:`~relaysim.analysis.AssertionResult`, ...)
are embedded as they are, so what the verdict was computed from is what the report shows. JSON
encoding is generic (dataclass -> object, enum -> its value, tuple -> array, non-finite float ->
null) and so is decoding (driven by the type hints), which keeps :func:`report_from_dict` exact
for every field without a hand-written inverse per class. docs/report-schema.md documents every
field; bump ``SCHEMA_VERSION`` when a field changes meaning or goes away (adding one is fine).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from relaysim.analysis import (
    FIGURES,
    HEAP_INUSE,
    MALLOCS,
    TOTAL_ALLOC,
    AllocSite,
    AssertionResult,
    BrowserCycles,
    CachePeak,
    CycleGrowth,
    DomHandles,
    Identity,
    IdleMeasurement,
    IsolateReading,
    ProbeCost,
    Sample,
    SamplingCost,
    SiteDelta,
    SoakAnalysis,
    Subject,
    Trend,
    Unavailable,
    Verdict,
    figure_delta,
    overall_verdict,
    site_deltas,
    top_sites,
)

__all__ = [
    "SCHEMA_VERSION",
    "AllocSites",
    "AppInfo",
    "Baseline",
    "BrowserLevel",
    "Environment",
    "FaultFigures",
    "FaultRecord",
    "HeapFigures",
    "RelayFigures",
    "Report",
    "SamplingCost",
    "ScenarioInfo",
    "StepTiming",
    "Timing",
    "Unavailable",
    "alloc_sites",
    "bound_samples",
    "heap_figures",
    "identity_of",
    "report_from_dict",
    "report_from_json",
    "subject_of",
    "to_dict",
    "to_json",
    "unavailable_figures",
]

SCHEMA_VERSION = "relaysim.report/1"


@dataclass(frozen=True, kw_only=True)
class ScenarioInfo:
    """Which scenario ran: its name, file, description and the thresholds in force."""

    name: str
    path: str | None = None
    description: str = ""
    thresholds: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AppInfo:
    """The client under test: ``url`` loaded, ``mode`` ("fixed", "leaks=idle", "external"), missing hooks;
    ``hosts_tried`` the ``host:port`` of every request the page sent to a host other than loopback (the
    harness's browser reaches none; ``browser_hosts``: the browser's own services; both None when the
    session did not record them)."""

    url: str
    mode: str
    hooks_missing: tuple[str, ...] = ()
    hosts_tried: tuple[str, ...] | None = None
    browser_hosts: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class Environment:
    """Where the run happened; ``None`` = not known. ``dataset_sha256`` is the JSONL file's hash (it
    changes with the relay URL the events' hints name); ``dataset_spec_sha256`` the spec's digest without
    the URL (:func:`relaysim.dataset.spec_sha256`): the dataset's identity, ``None`` for a JSONL export;
    ``dataset_relay_url`` where the dataset's relay hints point: the relay that served it."""

    browser_name: str | None = None
    browser_version: str | None = None
    driver_version: str | None = None
    webdriver_url: str | None = None
    python: str | None = None
    relaysim: str | None = None
    platform: str | None = None
    dataset_name: str | None = None
    dataset_sha256: str | None = None
    seed: int | None = None
    dataset_spec_sha256: str | None = None
    dataset_relay_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class StepTiming:
    """One executed step: its index in run order, kind, source line, start offset and duration (s)."""

    index: int
    kind: str
    line: int | None
    start_s: float
    duration_s: float


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Wall-clock start and end (ISO 8601 UTC), duration, per-step timings, sampling cost."""

    started_at: str
    finished_at: str
    duration_s: float
    steps: tuple[StepTiming, ...] = ()
    sampling: SamplingCost | None = None


@dataclass(frozen=True, kw_only=True)
class HeapFigures:
    """Every figure at the first and last sample, and the deltas the assertions use.

    ``delta_bytes`` = final - initial heapInuse (the ``heap_delta`` assertion);
    ``total_alloc_delta`` and ``mallocs_delta`` are the cumulative counters' growth.
    ``trend`` is Theil–Sen + Mann–Kendall of heapInuse (or of totalAlloc) over the timeline.
    """

    initial: Mapping[str, float | int | None]
    final: Mapping[str, float | int | None]
    delta_bytes: float | int | None = None
    total_alloc_delta: float | int | None = None
    mallocs_delta: float | int | None = None
    trend: Trend | None = None


@dataclass(frozen=True, kw_only=True)
class AllocSites:
    """Allocation-site growth between the first and last counter readings, top N each way."""

    top_by_bytes: tuple[SiteDelta, ...] = ()
    top_by_count: tuple[SiteDelta, ...] = ()
    sites: int = 0


@dataclass(frozen=True, kw_only=True)
class RelayFigures:
    """The relay's own count for this run (``None`` = the relay did not say): ``scope`` says which of
    its connections were counted (this run's page's, not earlier clients'), ``url`` which relay."""

    url: str | None = None
    scope: str | None = None
    subscriptions_opened: int | None = None
    subscriptions_closed: int | None = None
    subscriptions_open_at_end: int | None = None
    events_pushed: int | None = None
    bytes_pushed: int | None = None
    connections: int | None = None
    connections_open_at_end: int | None = None
    faults: FaultFigures | None = None


@dataclass(frozen=True)
class FaultRecord:
    """One injected fault: ``t`` seconds from the run's start, the connection (None: an upgrade),
    ``fault`` (drop, disconnect, reset, refuse, or spec: the faults were switched) and a sentence."""

    t: float
    conn: int | None
    fault: str
    detail: str


@dataclass(frozen=True, kw_only=True)
class FaultFigures:
    """The network faults the relay injected during the run (``relaysim serve --faults``, ``[faults]``).

    ``spec`` is the spec in force at the end (``""``: none) and ``seed`` the seed of every draw;
    the counts cover the whole run; ``events`` is the relay's log of them (the last 500; ``logged``
    says how many there were), so a verdict can be read against the faults that preceded it.
    """

    spec: str
    seed: int | str | None
    events_dropped: int = 0
    frames_delayed: int = 0
    delay_seconds_max: float = 0.0
    disconnects_close: int = 0
    disconnects_reset: int = 0
    upgrades_refused: int = 0
    logged: int = 0
    events: tuple[FaultRecord, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """The baseline a run was compared with (``relaysim run --baseline``): its file, its identity, and
    what the comparison found (``verdict``: regressed / improved / same; ``regressed``: the labels of
    the figures that regressed, e.g. ``cycle_growth [cycle site: reply cache]``)."""

    path: str
    identity: Identity
    verdict: str
    regressed: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BrowserLevel:
    """The browser's own view of every isolate, after a forced GC (docs/hookless.md).

    ``initial`` and ``final`` are the readings at the run's ends; ``cycles`` the growth per measured
    cycle of each figure (with the boundary readings, their listener groups and, with ``--snapshots``,
    heap snapshot summaries); ``readings`` how many were taken and ``ms_per_reading`` what each cost.
    """

    initial: IsolateReading | None = None
    final: IsolateReading | None = None
    cycles: BrowserCycles | None = None
    readings: int = 0
    ms_per_reading: float | None = None
    snapshots: bool = False


@dataclass(frozen=True, kw_only=True)
class Report:
    """One run. Build it at the end of a run; write it with :func:`relaysim.report.write_report`."""

    schema_version: str = SCHEMA_VERSION
    scenario: ScenarioInfo
    app: AppInfo
    environment: Environment
    timing: Timing
    verdict: Verdict | None = None
    assertions: tuple[AssertionResult, ...] = ()
    heap: HeapFigures
    alloc_sites: AllocSites | None = None
    dom_handles: DomHandles | None = None
    relay: RelayFigures | None = None
    probe_cost: ProbeCost | None = None
    idle: IdleMeasurement | None = None
    unavailable: tuple[Unavailable, ...] = ()
    notes: tuple[str, ...] = ()
    timeline: str | None = None
    samples: tuple[Sample, ...] | None = None
    cycles: CycleGrowth | None = None
    caches: tuple[CachePeak, ...] | None = None
    soak: SoakAnalysis | None = None
    baseline: Baseline | None = None
    browser: BrowserLevel | None = None

    def __post_init__(self) -> None:
        if self.verdict is None:
            object.__setattr__(self, "verdict", overall_verdict(self.assertions))

    def to_dict(self) -> dict[str, object]:
        return to_dict(self)  # type: ignore[return-value]

    def to_json(self, indent: bool = True) -> bytes:
        return to_json(self, indent)


# --- helpers the runner uses to fill a report -----------------------------------------------------


def heap_figures(initial: Sample, final: Sample, trend: Trend | None = None) -> HeapFigures:
    """:class:`HeapFigures` from the first and last samples of a run."""
    return HeapFigures(
        initial=dict(initial.figures),
        final=dict(final.figures),
        delta_bytes=figure_delta(initial, final, HEAP_INUSE),
        total_alloc_delta=figure_delta(initial, final, TOTAL_ALLOC),
        mallocs_delta=figure_delta(initial, final, MALLOCS),
        trend=trend,
    )


def alloc_sites(before: Iterable[AllocSite], after: Iterable[AllocSite], n: int = 10) -> AllocSites:
    """Top ``n`` growing sites by bytes and by count between two counter readings."""
    deltas = site_deltas(before, after)
    return AllocSites(
        top_by_bytes=tuple(top_sites(deltas, n, "bytes")),
        top_by_count=tuple(top_sites(deltas, n, "count")),
        sites=len(deltas),
    )


def identity_of(report: Report) -> Identity:
    """What ``report`` ran on, for :func:`relaysim.analysis.compare`."""
    env = report.environment
    return Identity(
        scenario=report.scenario.name,
        dataset_name=env.dataset_name,
        dataset_spec_sha256=env.dataset_spec_sha256,
        dataset_sha256=env.dataset_sha256,
        app_mode=report.app.mode,
        app_url=report.app.url,
        relaysim=env.relaysim,
    )


def subject_of(report: Report) -> Subject:
    """One side of :func:`relaysim.analysis.compare`: the report's identity and figures."""
    return Subject(
        identity=identity_of(report),
        assertions=report.assertions,
        idle=report.idle,
        cycles=report.cycles,
        caches=report.caches,
        thresholds=dict(report.scenario.thresholds),
    )


def unavailable_figures(
    samples: Sequence[Sample], reasons: Mapping[str, str] | None = None, figures: Iterable[str] = FIGURES
) -> tuple[Unavailable, ...]:
    """Figures in ``figures`` that no sample could read, each with ``reasons[figure]`` or a default."""
    reasons = reasons or {}
    out = []
    for name in figures:
        if not any(s.get(name) is not None for s in samples):
            out.append(
                Unavailable(figure=name, reason=reasons.get(name, "not reported by the app or browser"))
            )
    return tuple(out)


def bound_samples(samples: Sequence[Sample], max_samples: int = 600) -> tuple[Sample, ...]:
    """At most ``max_samples`` samples, evenly spaced by index, always keeping the first and last."""
    n = len(samples)
    if max_samples < 2:
        raise ValueError(f"max_samples must be >= 2, got {max_samples}")
    if n <= max_samples:
        return tuple(samples)
    step = (n - 1) / (max_samples - 1)
    return tuple(samples[round(i * step)] for i in range(max_samples))


# --- generic JSON encoding / decoding ---------------------------------------------------------


def to_dict(obj: object) -> object:
    """A JSON-ready value: dataclass -> dict (field order), enum -> value, NaN/inf -> None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):  # numpy scalar
        return to_dict(obj.item())
    return obj


def to_json(report: Report, indent: bool = True) -> bytes:
    """The report as UTF-8 JSON bytes (orjson), indented by default, ending in a newline."""
    option = orjson.OPT_APPEND_NEWLINE | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(to_dict(report), option=option)


def report_from_json(data: bytes | str) -> Report:
    """Parse a report written by :func:`to_json`; ``ValueError`` on a wrong schema or shape."""
    return report_from_dict(orjson.loads(data))


def report_from_dict(data: object) -> Report:
    """Inverse of :func:`to_dict` for a :class:`Report`."""
    if not isinstance(data, Mapping):
        raise ValueError("a report must be a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"unsupported report schema {version!r} (this relaysim reads {SCHEMA_VERSION!r})")
    return _decode(Report, data, "report")  # type: ignore[return-value]


_HINTS: dict[type, dict[str, object]] = {}


def _hints(cls: type) -> dict[str, object]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _decode(tp: object, value: object, where: str) -> object:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        arms = typing.get_args(tp)
        if value is None and type(None) in arms:
            return None
        errors = []
        for arm in arms:
            if arm is type(None):
                continue
            try:
                return _decode(arm, value, where)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if len(errors) == 1 else f"{where}: unexpected value {value!r}")
    if tp is typing.Any or tp is object:
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected an array")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ValueError(f"{where}: expected {len(args)} items")
        return tuple(_decode(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin in (Mapping, dict, typing.Mapping):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected an object")
        _, vt = typing.get_args(tp)
        return {k: _decode(vt, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected an object")
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in value:
                kwargs[f.name] = _decode(hints[f.name], value[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{where}: missing field {f.name!r}")
        return tp(**kwargs)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not one of {[m.value for m in tp]}") from None
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if tp is bool or tp is str:
        if isinstance(value, tp):
            return value
        raise ValueError(f"{where}: expected {tp.__name__}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise ValueError(f"{where}: expected null")
    raise TypeError(f"{where}: cannot decode type {tp!r}")  # pragma: no cover - a bug in the model
