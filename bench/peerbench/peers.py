"""Installing the peer relays into a scratch folder, and starting each one fresh on loopback.

Each target is started as its own process (group), loaded with the same seed1 JSONL, and is
"ready" when a REQ for a seed1 event comes back with it: ``ready_s`` is the wall time from
``Popen`` to that answer, whatever each relay does in between (relaysim reads its dataset
cache; the TypeScript relay inserts seed1 into SQLite; PyPI nostr-relay runs ``load`` into its
SQLite file first; LocalRelay has no loading API in Python, so the bench publishes seed1 to it).

What gets installed (``--scratch``, default ``~/.cache/relaysim-bench``):

* ``venv/``: PyPI ``nostr-sdk`` (rust-nostr's LocalRelay) and ``nostr-relay`` (pinned below);
* ``node/``: npm ``@nostr-relay/core`` + ``event-repository-sqlite`` + ``validator`` + ``ws``, with
  better-sqlite3 12.x built from source against Debian's Node headers (``npm_config_nodedir=/usr``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerbench.fastload import serve_command

HERE = Path(__file__).resolve().parent
PY_PEERS = ["nostr-sdk==0.45.1", "nostr-relay==1.14"]
NODE_PACKAGES = {
    "@nostr-relay/common": "0.0.40",
    "@nostr-relay/core": "0.0.40",
    "@nostr-relay/event-repository-sqlite": "0.0.40",
    "@nostr-relay/validator": "0.0.40",
    "better-sqlite3": "12.9.0",
    "ws": "8.18.3",
}


class PeerError(Exception):
    """A peer could not be installed or started; the bench reports it and goes on."""


def _run(
    cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float
) -> None:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise PeerError(f"{' '.join(cmd[:3])} failed: {' | '.join(tail)}")


def install_python_peers(scratch: Path) -> Path:
    """A venv with the Python peers; returns its python."""
    venv = scratch / "venv"
    python = venv / "bin" / "python"
    marker = venv / "installed.json"
    if marker.is_file() and json.loads(marker.read_text()) == PY_PEERS:
        return python
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    _run([str(python), "-m", "pip", "install", "-q", *PY_PEERS], timeout=600)
    marker.write_text(json.dumps(PY_PEERS))
    return python


def install_node_peers(scratch: Path) -> Path:
    """node_modules with @nostr-relay/*; returns that folder (for NODE_PATH)."""
    folder = scratch / "node"
    modules = folder / "node_modules"
    package = {
        "name": "relaysim-bench-peers",
        "private": True,
        "dependencies": NODE_PACKAGES,
        # event-repository-sqlite asks for better-sqlite3 ^11; 12.x is the line that builds for Node 20+.
        "overrides": {"better-sqlite3": NODE_PACKAGES["better-sqlite3"]},
    }
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "package.json"
    built = modules / "better-sqlite3" / "build" / "Release" / "better_sqlite3.node"
    if manifest.is_file() and json.loads(manifest.read_text()) == package and built.is_file():
        return modules
    if shutil.which("npm") is None:
        raise PeerError("npm is not installed (apt-get install nodejs npm)")
    manifest.write_text(json.dumps(package, indent=2))
    env = {**os.environ, "npm_config_nodedir": "/usr"}
    _run(["npm", "install", "--no-audit", "--no-fund"], cwd=folder, env=env, timeout=900)
    if not built.is_file():
        raise PeerError(
            "better-sqlite3 did not build (needs Node headers in /usr/include/node, python3, g++)"
        )
    return modules


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (a gunicorn master and its worker, say)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            pids += [int(c) for c in task.read_text().split()]
    return total


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    ready_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def rss(self) -> int:
        return tree_rss(self.proc.pid)

    def stop(self) -> None:
        """End the process group this bench started (and only it)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def _spawn(
    cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        cwd=cwd,
        start_new_session=True,  # its own process group: stop() ends the relay and its children only
    )


def _wait_line(proc: subprocess.Popen[bytes], prefix: bytes, timeout: float) -> bytes:
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PeerError(f"exited with {proc.returncode} before it was ready")
        chunk = proc.stdout.read()
        if chunk:
            buf += chunk
            for line in buf.splitlines():
                if line.startswith(prefix):
                    return line
        time.sleep(0.01)
    raise PeerError(f"not ready within {timeout:g} s")


def _wait_port(port: int, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise PeerError(f"port {port} did not open within {timeout:g} s")


Loader = Callable[[int], None]


def start(
    name: str,
    port: int,
    seed_path: Path,
    scratch: Path,
    *,
    load_over_ws: Loader,
    canned: Path,
    fast: Path | None = None,
) -> Running:
    """Start target ``name`` on ``port`` with seed1; returns once a REQ is answered from seed1.

    The do-nothing endpoint (``null``) is fastload's C one with ``fast``, else nullrelay.py.
    """
    t0 = time.perf_counter()
    notes: list[str] = []
    if name == "null":
        if fast is not None:
            proc = _spawn(serve_command(fast, port, canned))
            notes.append("fastload.c serve (C)")
        else:
            proc = _spawn([sys.executable, str(HERE / "nullrelay.py"), str(port), str(canned)])
            notes.append("nullrelay.py (Python)")
        _wait_line(proc, b"ready", 30)
    elif name == "relaysim":
        cmd = [sys.executable, "-m", "relaysim", "serve", "--dataset", "seed1", "--port", str(port)]
        proc = _spawn(cmd)
        _wait_line(proc, b"relaysim: ready", 120)
        notes.append("relaysim serve --dataset seed1 (dataset cache warm)")
    elif name == "localrelay":
        python = install_python_peers(scratch)
        proc = _spawn([str(python), str(HERE / "localrelay_main.py"), str(port)])
        _wait_line(proc, b"ready", 60)
        load_over_ws(port)
        notes.append("in-memory; seed1 published over the websocket (no loading API in Python)")
    elif name == "nostr-relay-ts":
        modules = install_node_peers(scratch)
        cmd = ["node", str(HERE / "nostr_relay_ts.cjs"), str(port), str(seed_path)]
        proc = _spawn(cmd, env={"NODE_PATH": str(modules)})
        _wait_line(proc, b"ready", 120)
        notes.append("ws wrapper; SQLite :memory:; seed1 upserted at start")
    elif name == "nostr-relay-py":
        python = install_python_peers(scratch)
        proc = _start_nostr_relay_py(python, port, seed_path, scratch)
        notes.append("gunicorn (1 worker), SQLite file; seed1 via `nostr-relay load`")
    else:
        raise PeerError(f"unknown target {name}")
    running = Running(name, proc, port, notes=notes)
    running.ready_s = time.perf_counter() - t0
    return running


def _start_nostr_relay_py(python: Path, port: int, seed_path: Path, scratch: Path) -> subprocess.Popen[bytes]:
    folder = scratch / "nostr-relay"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = folder / "config.yaml"
    config.write_text(
        "DEBUG: false\n"
        "relay_name: relaysim bench peer\n"
        "storage:\n"
        f"  sqlalchemy.url: sqlite+aiosqlite:///{folder / 'nostr.sqlite3'}\n"
        "  num_concurrent_reqs: 10\n"
        "  num_concurrent_adds: 2\n"
        "gunicorn:\n"
        f"  bind: 127.0.0.1:{port}\n"
        "  workers: 1\n"
        "  loglevel: warning\n"
        # gunicorn's default 30 s heartbeat kills a worker whose loop is busy with a large REQ.
        "  timeout: 600\n"
        "  reload: false\n"
        # seed1's window ends 2026-01-01; the default refuses events older than a year.
        "oldest_event: 315360000\n"
        "subscription_limit: 5000\n"
        "max_limit: 6000\n"
    )
    cli = str(python.parent / "nostr-relay")
    _run([cli, "-c", str(config), "alembic", "upgrade", "head"], cwd=folder, timeout=120)
    _run([cli, "-c", str(config), "load", str(seed_path)], cwd=folder, timeout=600)
    proc = _spawn([cli, "-c", str(config), "serve"], cwd=folder)
    _wait_port(port, 60)
    return proc


def describe_versions(scratch: Path) -> dict[str, Any]:
    """What was measured: versions of each peer as installed."""
    out: dict[str, Any] = {"python_peers": PY_PEERS, "node_packages": NODE_PACKAGES}
    try:
        out["node"] = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        out["node"] = None
    return out
