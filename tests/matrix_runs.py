"""One real ``relaysim run`` per (scenario, app, arguments) for the whole pytest session.

The leak matrix (tests/test_leak_matrix.py) runs every client of the matrix through the real CLI
with real Chromium; the regression gate's tests (tests/test_compare_matrix.py) compare exactly those
reports instead of running the clients again. Whichever test asks first pays for the run; its
report stays in that test's temporary directory (pytest keeps it for the session), and the exit
code and stdout are kept beside it, so every later test sees what the first one saw.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relaysim.cli import main

__all__ = ["MatrixRun", "matrix_run"]


@dataclass(frozen=True)
class MatrixRun:
    """A finished run: its exit code, report file and what it printed on stdout."""

    code: int
    report_path: Path
    out: str

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self.report_path.read_text())


_RUNS: dict[tuple[str, str, tuple[str, ...]], MatrixRun] = {}


def matrix_run(tmp_path: Path, scenario: str, app: str, *args: str) -> MatrixRun:
    """``relaysim run SCENARIO --app APP ARGS --report ...``, once per session for the same arguments."""
    key = (scenario, app, tuple(args))
    if key not in _RUNS:
        report = tmp_path / f"{re.sub(r'[^A-Za-z0-9]+', '-', f'{scenario}-{app}')}.json"
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["run", scenario, "--app", app, *args, "--report", str(report)])
        _RUNS[key] = MatrixRun(code, report, out.getvalue())
    return _RUNS[key]
