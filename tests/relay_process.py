"""``relaysim serve`` in a child process, for tests that need the relay on its own (its RSS read from
/proc, or a relay a crash in the test cannot take down with it).

The child imports this checkout (its folder first on PYTHONPATH), installed or not, and runs unbuffered
so its "relaysim: relay ..." and "relaysim: ready" lines arrive as they are printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import relaysim


@dataclass(frozen=True)
class RelayProcess:
    pid: int
    url: str


def write_dataset(path: Path, events: Iterable) -> Path:
    """The signed ``events`` as a JSONL dataset file (one event's JSON per line)."""
    path.write_bytes(b"".join(event.json + b"\n" for event in events))
    return path


@contextmanager
def serve_process(dataset: Path, *extra: str) -> Iterator[RelayProcess]:
    """Start ``relaysim serve --dataset DATASET --port 0 EXTRA...``, yield once it is ready, end it after."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    source_root = str(Path(relaysim.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "relaysim", "serve", "--dataset", str(dataset), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    url = None
    for line in proc.stdout:  # ends at EOF if the relay fails to start
        if line.startswith("relaysim: relay"):
            url = line.split()[2]
        if line.startswith("relaysim: ready"):
            break
    try:
        assert url is not None, proc.stderr.read() if proc.stderr else ""
        yield RelayProcess(proc.pid, url)
    finally:
        proc.terminate()
        proc.wait(20)
        assert proc.returncode in (0, -15), proc.stderr.read() if proc.stderr else ""
