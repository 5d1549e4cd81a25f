"""The run report (JSON, schema ``relaysim.report/1``), the JSONL timeline, and the CLI's table.

Pure model plus thin file writers; docs/report-schema.md documents every field.

API summary (stable; the runner and CLI code to these names)
-------------------------------------------------------------
Model (frozen dataclasses, all keyword-only):
  ``Report(scenario: ScenarioInfo, app: AppInfo, environment: Environment, timing: Timing,
  heap: HeapFigures, assertions=(), verdict=None -> overall_verdict(assertions), alloc_sites=None,
  dom_handles: analysis.DomHandles|None, relay: RelayFigures|None, probe_cost: analysis.ProbeCost|None,
  idle: analysis.IdleMeasurement|None, unavailable: tuple[Unavailable]=(), samples=None (bounded),
  timeline: str|None (JSONL path), notes=(), cycles: analysis.CycleGrowth|None,
  caches: tuple[analysis.CachePeak]|None, soak: analysis.SoakAnalysis|None (soak summaries only),
  schema_version="relaysim.report/1")``;
  ``.to_dict()``, ``.to_json(indent=True) -> bytes``.
  ``ScenarioInfo(name, path, description, thresholds)``, ``AppInfo(url, mode, hooks_missing=())``,
  ``Environment(browser_name, browser_version, driver_version, webdriver_url, python, relaysim,
  platform, dataset_name, dataset_sha256, seed)``, ``Timing(started_at, finished_at, duration_s,
  steps: tuple[StepTiming(index, kind, line, start_s, duration_s)], sampling: SamplingCost(samples,
  ms_per_sample, round_trips_per_sample)|None)``, ``HeapFigures(initial, final, delta_bytes,
  total_alloc_delta, mallocs_delta, trend)``, ``AllocSites(top_by_bytes, top_by_count, sites)``,
  ``RelayFigures(subscriptions_opened, subscriptions_closed, subscriptions_open_at_end, events_pushed,
  bytes_pushed, connections)``, ``Unavailable(figure, reason)``.
Builders: ``heap_figures(initial_sample, final_sample, trend=None)``, ``alloc_sites(before, after, n=10)``
  (AllocSite sequences from analysis.parse_alloc_counters), ``unavailable_figures(samples, reasons)``,
  ``bound_samples(samples, max_samples=600)``.
JSON: ``to_json(report)``, ``report_from_json(bytes)``, ``report_from_dict(obj)``, ``to_dict(any)``.
Files: ``write_report(path, report)`` (atomic: temp + fsync + rename), ``read_report(path)``,
  ``TimelineWriter(path, fsync_every=10)`` (``.append(sample | {"type": ..., ...})``, ``.close()``,
  context manager), ``read_timeline(path) -> Timeline(samples, records, truncated, lines)``.
Soak directory (timeline.jsonl, events.jsonl, summary.json, report.html): ``read_soak_dir(path) ->
  SoakDir(path, samples, records, events, summary: Report|None, torn)`` (UsageError naming the file);
  ``render_html(soak_dir) -> str`` (self-contained page, inline SVG plots), ``write_html(path) -> Path``.
Table: ``render_table(report, width=100) -> str`` (assertion | threshold | measured | verdict, then
  details of non-passing assertions, unavailable figures and "verdict: X").
Comparisons (``relaysim compare``; the logic is ``relaysim.analysis.compare``): ``subject_of(report)``,
  ``identity_of(report)``; ``render_comparison(comparison) -> str``, ``comparison_markdown(comparison)``,
  ``report_markdown(report)``; JUnit XML: ``report_suite(report)``, ``comparison_suite(comparison)``,
  ``session_suite(...)`` (one session of a batch)
  (``xml.etree`` elements), ``junit_xml(suites) -> bytes``, ``write_junit(path, suites)``.
  ``Report.baseline: Baseline(path, identity, verdict, regressed)|None`` (``run --baseline``);
  ``Environment.dataset_spec_sha256``.
"""

from relaysim.report._html import render_html, write_html
from relaysim.report._io import (
    Timeline,
    TimelineWriter,
    read_report,
    read_timeline,
    write_bytes_atomic,
    write_report,
)
from relaysim.report._junit import comparison_suite, junit_xml, report_suite, session_suite, write_junit
from relaysim.report._markdown import comparison_markdown, report_markdown
from relaysim.report._model import (
    SCHEMA_VERSION,
    AllocSites,
    AppInfo,
    Baseline,
    BrowserLevel,
    Environment,
    FaultFigures,
    FaultRecord,
    HeapFigures,
    RelayFigures,
    Report,
    SamplingCost,
    ScenarioInfo,
    StepTiming,
    Timing,
    Unavailable,
    alloc_sites,
    bound_samples,
    heap_figures,
    identity_of,
    report_from_dict,
    report_from_json,
    subject_of,
    to_dict,
    to_json,
    unavailable_figures,
)
from relaysim.report._soakdir import SoakDir, read_soak_dir
from relaysim.report._table import format_change, format_value, render_comparison, render_table

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
    "Timeline",
    "TimelineWriter",
    "Timing",
    "Unavailable",
    "alloc_sites",
    "bound_samples",
    "format_value",
    "heap_figures",
    "identity_of",
    "read_report",
    "read_timeline",
    "render_table",
    "report_from_dict",
    "report_from_json",
    "subject_of",
    "to_dict",
    "to_json",
    "unavailable_figures",
    "write_bytes_atomic",
    "write_report",
]

__all__ += [  # the soak directory and its HTML report
    "SoakDir",
    "read_soak_dir",
    "render_html",
    "write_html",
]

__all__ += [  # comparisons and the formats CI systems read
    "comparison_markdown",
    "comparison_suite",
    "format_change",
    "junit_xml",
    "render_comparison",
    "report_markdown",
    "report_suite",
    "session_suite",
    "write_junit",
]
