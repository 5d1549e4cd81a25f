"""``relaysim soak``: hours of seeded browsing, idle periods and live traffic, crash-safe, judged by trends.

API summary
-----------
``SoakOptions(meta: SoakMeta, out: Path, resume=False, browser=BrowserSpec(), allow_unavailable=False,
max_session_failures=3)``; ``SoakMeta(duration_s, app, adapter, traffic, interval, seed, browse_s,
idle_window, idle_settle, dataset, browser, webdriver_url)`` (what the ``start`` event records).
``run_soak(options, progress=None) -> SoakResult(out, report, exit_code, written, stop_reason)``: runs
(or resumes) the loop (:mod:`._loop`), then judges the directory (:func:`finish_soak`).
``finish_soak(directory, allow_unavailable=False) -> (Report, ExitCode)``: ``summary.json`` and
``report.html`` from the files alone. ``default_out_dir()``; ``read_prior(directory) -> PriorRun``.
Progress displays: :mod:`relaysim.soak.progress` (``open_progress(mode, title, total_s)``).
The output directory and the clock: :mod:`._files` and docs/report-schema.md ("Soak output directory").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relaysim.errors import ExitCode
from relaysim.report import Report
from relaysim.soak._files import PriorRun, SoakMeta, default_out_dir, read_prior
from relaysim.soak._loop import SoakOptions, SoakStopped, run_loop
from relaysim.soak._plan import BrowsePlan, browsing_step_types, draw_step, plan_rng
from relaysim.soak._summary import SEED_CHECKS, build_summary, finish_soak
from relaysim.soak.progress import Progress

__all__ = [
    "SEED_CHECKS",
    "BrowsePlan",
    "PriorRun",
    "SoakMeta",
    "SoakOptions",
    "SoakResult",
    "SoakStopped",
    "browsing_step_types",
    "build_summary",
    "default_out_dir",
    "draw_step",
    "finish_soak",
    "plan_rng",
    "read_prior",
    "run_soak",
]


@dataclass(frozen=True)
class SoakResult:
    """A finished soak process: where, what it judged, its exit code, samples it wrote, why it stopped."""

    out: Path
    report: Report
    exit_code: ExitCode
    written: int
    stop_reason: str


def run_soak(options: SoakOptions, progress: Progress | None = None) -> SoakResult:
    """Run or resume a soak in ``options.out``, then write ``summary.json`` and ``report.html``."""
    import contextlib
    import signal

    reason, written, out = run_loop(options, progress)
    old = None
    with contextlib.suppress(ValueError):  # a second SIGTERM must not leave the report half written
        old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        if progress is not None:
            progress.phase("writing summary.json and report.html")
        report, code = finish_soak(out, options.allow_unavailable)
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    return SoakResult(out, report, code, written, reason)
