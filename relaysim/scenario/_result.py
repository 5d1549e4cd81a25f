"""What a run measured: :class:`RunResult` (filled in by the runner) and its :class:`StepRecord` rows.

Plain data; :meth:`RunResult.report` hands it to :func:`relaysim.scenario._assemble.build_report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaysim import analysis as an
from relaysim.analysis import AssertionResult, Sample, ThreadClose, Verdict
from relaysim.browser.idle import IdleOutcome
from relaysim.scenario import model as m
from relaysim.scenario._assemble import build_report


@dataclass
class StepRecord:
    index: int
    kind: str
    line: int | None
    seconds: float
    detail: str = ""
    start_s: float = 0.0


@dataclass
class RunResult:
    """Everything a run measured; :meth:`report` turns it into the JSON report."""

    scenario: m.Scenario
    app: str
    page_url: str
    results: dict[str, AssertionResult] = field(default_factory=dict)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    idle: list[IdleOutcome] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    probe_cost: an.ProbeCost | None = None
    probe_ms: float | None = None
    sampler_cost: dict[str, Any] = field(default_factory=dict)
    initial_browser: dict[str, Any] | None = None
    final_browser: dict[str, Any] | None = None
    initial_sites: list[dict[str, Any]] | None = None
    final_sites: list[dict[str, Any]] | None = None
    unavailable: list[dict[str, str]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    relay_stats: dict[str, Any] | None = None
    alloc_log: list[dict[str, Any]] = field(default_factory=list)
    thread_closes: list[ThreadClose] = field(default_factory=list)
    cycle_readings: list[an.CycleReading] = field(default_factory=list)
    cycles: an.CycleGrowth | None = None
    cache_readings: list[tuple[float, tuple[an.CacheGroupSize, ...]]] = field(default_factory=list)
    seconds: float = 0.0
    started_at: float = 0.0
    timeline: Path | None = None

    @property
    def verdict(self) -> Verdict:
        return an.overall_verdict(self.results.values())

    @property
    def exit_code(self) -> int:
        """0 when nothing failed (UNAVAILABLE is reported, not failed), 1 when an assertion failed."""
        return 1 if self.verdict == Verdict.FAIL else 0

    def report(self) -> Any:
        """The :class:`relaysim.report.Report` of this run."""
        return build_report(self)
