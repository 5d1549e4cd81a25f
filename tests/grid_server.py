"""A real Selenium Grid on loopback for the tests: standalone, or hub + node, started and always ended.

The jar comes from the npm package ``@nightwatch/selenium-server`` (``tests/grid``, installed by
scripts/install); Debian's ``default-jre-headless`` runs it. Every server is started with
``--host 127.0.0.1`` (or the node would register under the machine's other address),
``--selenium-manager false`` and ``SE_OFFLINE=true`` (or it would try to download drivers), in its
own process group, so ending it also ends the chromedrivers and browsers it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

JAR = Path(__file__).parent / "grid/node_modules/@nightwatch/selenium-server/lib/selenium-server-4.20.0.jar"
READY_TIMEOUT_S = 60.0


def missing() -> str | None:
    """Why no Grid can start here (None: it can)."""
    if shutil.which("java") is None:
        return "java not found: apt-get install -y default-jre-headless (scripts/install)"
    if not JAR.is_file():
        return f"{JAR} missing: (cd tests/grid && npm ci --ignore-scripts) (scripts/install)"
    if shutil.which("chromedriver") is None:
        return "chromedriver not found: apt-get install -y chromium-driver"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status(url: str) -> dict:
    with urllib.request.urlopen(url.rstrip("/") + "/status", timeout=5) as r:
        return json.loads(r.read())["value"]


def sessions(url: str) -> list[str]:
    """Ids of the sessions the Grid holds now (from its /status slots)."""
    ids = []
    for node in status(url).get("nodes", []):
        for slot in node.get("slots", []):
            if slot.get("session"):
                ids.append(slot["session"]["sessionId"])
    return ids


def delete_session(url: str, session_id: str) -> None:
    """End a session through the WebDriver API, as a Grid losing it would look to the harness."""
    request = urllib.request.Request(f"{url.rstrip('/')}/session/{session_id}", method="DELETE")
    with urllib.request.urlopen(request, timeout=30) as r:
        r.read()


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SE_OFFLINE": "true"}
    with log.open("ab") as out:
        return subprocess.Popen(["java", "-jar", str(JAR), *args], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)


def _end(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
            break
    with contextlib.suppress(ProcessLookupError):  # the group's chromedrivers and browsers
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_ready(url: str, procs: list[subprocess.Popen[bytes]], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"selenium server exited ({p.returncode}): {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError, ValueError, KeyError):
            st = status(url)
            if st.get("ready") and any(n.get("availability") == "UP" for n in st.get("nodes", [])):
                return
        time.sleep(0.5)
    raise RuntimeError(f"Grid at {url} not ready after {READY_TIMEOUT_S:g} s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def standalone(log: Path, max_sessions: int = 2) -> Iterator[str]:
    """``selenium-server standalone`` on loopback; yields its URL."""
    port = free_port()
    args = ["standalone", "--host", "127.0.0.1", "--port", str(port), "--selenium-manager", "false",
            "--max-sessions", str(max_sessions), "--override-max-sessions", "true",
            "--session-request-timeout", "60"]
    proc = _start(args, log)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, [proc], log)
        yield url
    finally:
        _end(proc)


@contextlib.contextmanager
def hub_and_node(log: Path, max_sessions: int = 2) -> Iterator[str]:
    """A ``hub`` and one ``node`` registered with it, on loopback; yields the hub's URL."""
    hub_port, pub, sub, node_port = (free_port() for _ in range(4))
    bus = ["--publish-events", f"tcp://127.0.0.1:{pub}", "--subscribe-events", f"tcp://127.0.0.1:{sub}"]
    hub = _start(["hub", "--host", "127.0.0.1", "--port", str(hub_port), "--session-request-timeout", "60",
                  *bus], log)
    node = None
    try:
        node = _start(["node", "--host", "127.0.0.1", "--port", str(node_port), "--hub",
                       f"http://127.0.0.1:{hub_port}", *bus, "--selenium-manager", "false",
                       "--max-sessions", str(max_sessions), "--override-max-sessions", "true"], log)
        url = f"http://127.0.0.1:{hub_port}"
        _wait_ready(url, [hub, node], log)
        yield url
    finally:
        if node is not None:
            _end(node)
        _end(hub)
