"""What a run measured: :class:`RunResult` (filled in by the runner), its :class:`StepRecord` rows and
:class:`Checkpoint` judgements.

Plain typed data, kept typed to the report: :func:`relaysim.scenario._assemble.build_report` is the one
way from a result to a :class:`relaysim.report.Report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaysim import analysis as an
from relaysim.analysis import AssertionResult, Sample, SamplingCost, ThreadClose, Unavailable, Verdict
from relaysim.analysis._browsing import PageVisit, SubscriptionView
from relaysim.browser.idle import IdleOutcome
from relaysim.browser.offline import HostTried
from relaysim.browser.probes import BrowserFigures
from relaysim.errors import ExitCode, exit_code_for
from relaysim.scenario.model import Scenario

__all__ = ["Checkpoint", "RunResult", "StepRecord"]


@dataclass(frozen=True)
class StepRecord:
    """One executed step: index in run order, kind, source line, duration, detail, start offset (s)."""

    index: int
    kind: str
    line: int | None
    seconds: float
    detail: str = ""
    start_s: float = 0.0


@dataclass(frozen=True)
class Checkpoint:
    """The results an ``assert`` step (``at = "step 12"``) or the end of the run (``"end"``) judged."""

    at: str
    results: tuple[AssertionResult, ...]


@dataclass
class RunResult:
    """Everything a run measured; :func:`relaysim.scenario.build_report` turns it into the JSON report.

    ``relay_stats`` is the relay's ``/stats`` document at the end (JSON as the relay wrote it: its
    schema is the relay's, docs/relay.md); ``relay_run`` the same relay's figures for this run's own
    connections (:class:`~relaysim.browser.relay_scope.RelayScope`), which the report shows;
    ``relay_unreached`` the relay's URL when the page never connected to it (the run cannot be
    judged: exit 2); ``environment`` the browser session's description.
    """

    scenario: Scenario
    app: str
    page_url: str
    results: dict[str, AssertionResult] = field(default_factory=dict)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    idle: list[IdleOutcome] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    probe_cost: an.ProbeCost | None = None
    probe_ms: float | None = None
    sampler_cost: SamplingCost = field(default_factory=lambda: SamplingCost(0))
    initial_browser: BrowserFigures | None = None
    final_browser: BrowserFigures | None = None
    initial_sites: tuple[an.AllocSite, ...] | None = None
    final_sites: tuple[an.AllocSite, ...] | None = None
    unavailable: list[Unavailable] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    relay_stats: dict[str, Any] | None = None
    relay_run: dict[str, Any] | None = None
    relay_unreached: str | None = None
    relay_scope: str | None = None
    hosts_tried: tuple[HostTried, ...] | None = None
    alloc_log: list[dict[str, Any]] = field(default_factory=list)
    thread_closes: list[ThreadClose] = field(default_factory=list)
    page_visits: list[PageVisit] = field(default_factory=list)
    subscription_views: list[SubscriptionView] = field(default_factory=list)
    cycle_readings: list[an.CycleReading] = field(default_factory=list)
    cycles: an.CycleGrowth | None = None
    isolates: list[an.IsolateReading] = field(default_factory=list)
    browser_cycles: an.BrowserCycles | None = None
    cache_readings: list[tuple[float, tuple[an.CacheGroupSize, ...]]] = field(default_factory=list)
    seconds: float = 0.0
    started_at: float = 0.0
    timeline: Path | None = None

    @property
    def verdict(self) -> Verdict:
        return an.overall_verdict(self.results.values())

    @property
    def hooks_missing(self) -> tuple[str, ...]:
        """The app hooks that were absent (sorted), from the typed :class:`Unavailable` entries."""
        return tuple(sorted({u.missing_hook for u in self.unavailable if u.missing_hook}))

    def exit_code(self, allow_unavailable: bool = False) -> ExitCode:
        """The exit-code table's answer for this run (README, "Exit codes"); a page that never reached
        the relay is a usage problem (2), whatever the assertions said."""
        if self.relay_unreached is not None:
            return ExitCode.USAGE
        return exit_code_for(self.results.values(), allow_unavailable)

    def unreached_message(self) -> str | None:
        """One line naming the relay the page never connected to (None when it did)."""
        if self.relay_unreached is None:
            return None
        return (
            f"the page never connected to the harness's relay {self.relay_unreached}: nothing it did "
            "was measured (point the app at that relay, or pass --relay-url for the relay the app uses)"
        )
