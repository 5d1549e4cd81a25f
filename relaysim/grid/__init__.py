"""Many browser sessions against one relay: ``--browsers N``, locally or on a Selenium Grid.

Public surface: :func:`run_grid_soak` / :class:`GridSoakOptions` (``relaysim soak --browsers N``),
:func:`run_grid_batch` / :class:`GridRunOptions` (``relaysim run --browsers N``), :class:`RelayPlace`
(``--bind``, ``--public-url``), :class:`SessionRelay` (one session's view of the shared relay) and
:func:`label_browser`, the summary (:class:`GridSummary`, :func:`render_grid_table`). docs/grid.md
explains running a Grid across machines.
"""

from relaysim.grid._place import RelayPlace, browser_args, page_base
from relaysim.grid._relay import SessionRelay, label_browser
from relaysim.grid._run import GridRunOptions, Job, jobs_for, run_grid_batch
from relaysim.grid._soak import GridSoakOptions, GridSoakResult, run_grid_soak, spread
from relaysim.grid._summary import (
    GridSummary,
    SessionRow,
    build_grid_summary,
    grid_junit_suites,
    render_grid_table,
    session_row,
)

__all__ = [
    "GridRunOptions",
    "GridSoakOptions",
    "GridSoakResult",
    "GridSummary",
    "Job",
    "RelayPlace",
    "SessionRelay",
    "SessionRow",
    "browser_args",
    "build_grid_summary",
    "grid_junit_suites",
    "jobs_for",
    "label_browser",
    "page_base",
    "render_grid_table",
    "run_grid_batch",
    "run_grid_soak",
    "session_row",
    "spread",
]
