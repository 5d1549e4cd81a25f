"""Building and driving ``fastload.c``, the compiled half of the load generator.

Why: in Python, the fan-out receivers and the do-nothing endpoint were two interpreter loops
sharing the box's cores, so the generator's "ceiling" sat within 1.6x of the fastest relay on the
fan-out and large-REQ rows. ``fastload.c`` does those hot loops in C (see its header for the
three modes and their line protocol on stdout); this module compiles it and speaks that protocol.

:func:`build` compiles the source with ``cc -O2`` into the scratch folder, once per version of
the source (the binary's name carries the source's hash). Without a C compiler it returns a
:class:`Generator` whose ``binary`` is None and whose ``description`` says why: the rows then use
their Python loops, and the bench says so in its output and its JSON.

Times come back as CLOCK_MONOTONIC seconds, the clock of ``time.perf_counter()`` on Linux, so a
send time taken here and an arrival time taken in C compare.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from peerbench.wsraw import FrameScanner

__all__ = ["SOURCE", "Generator", "Receivers", "big_req", "build", "serve_command"]

SOURCE = Path(__file__).resolve().with_name("fastload.c")
CFLAGS = ["-O2", "-std=c99", "-pthread"]
#: Threads sharing out a broadcast's sends in the do-nothing endpoint. A loopback TCP send cost
#: ~7 us on this 2-core VM (9.5 us with the receiver waking), so one thread needs ~10 ms for
#: 1,000 connections; two brought the fan-out ceiling to ~5-5.7 ms, three or four no further.
SENDERS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Generator:
    """Which load generator the bench runs: the compiled one (``binary``) or the Python loops."""

    binary: Path | None
    description: str

    @property
    def compiled(self) -> bool:
        return self.binary is not None


def build(scratch: Path, *, compiler: str = "cc") -> Generator:
    """Compile ``fastload.c`` into ``scratch`` unless this version is there already."""
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + " ".join(CFLAGS).encode()).hexdigest()[:12]
    binary = scratch / f"fastload-{digest}"
    description = f"C (fastload.c, {compiler} {' '.join(CFLAGS)})"
    if binary.is_file():
        return Generator(binary, description)
    if shutil.which(compiler) is None:
        return Generator(None, f"Python (no C compiler: {compiler} not found)")
    scratch.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_suffix(".tmp")
    try:
        done = subprocess.run(
            [compiler, *CFLAGS, "-o", str(tmp), str(SOURCE)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Generator(None, f"Python ({compiler} failed: {exc})")
    if done.returncode != 0:
        first = (done.stderr or done.stdout).strip().splitlines()[:1]
        return Generator(None, f"Python ({compiler} failed: {first[0] if first else done.returncode})")
    tmp.rename(binary)
    return Generator(binary, description)


def serve_command(binary: Path, port: int, canned: Path, *, senders: int = SENDERS) -> list[str]:
    """The do-nothing endpoint (says ``ready PORT`` once it listens; ends after 900 s at most)."""
    return [str(binary), "serve", str(port), str(canned), "900", str(senders)]


class FastloadError(ConnectionError):
    """fastload said ``error ...`` (the relay closed a connection, refused the websocket...)."""


def _read_blob(out: IO[bytes], line: bytes) -> bytes:
    size = int(line.split()[1])
    return out.read(size) if size else b""


class Receivers:
    """Fan-out receiver processes (``fastload fanout``), read the way rows.fanout reads its own.

    ``queue`` gets ``("opened", n)``, ``("event", k, t)`` and ``("done", counts, sample)``;
    ``ready`` gets each process's EOSE count. A process that fails puts ``("error", why)`` on
    both, so the waiting side raises instead of timing out.
    """

    def __init__(
        self,
        binary: Path,
        port: int,
        shares: list[int],
        *,
        expect: int,
        keep: int,
        deadline: float,
        req: bytes,
    ) -> None:
        self.queue: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.ready: queue.Queue[Any] = queue.Queue()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.threads: list[threading.Thread] = []
        for share in shares:
            cmd = [str(binary), "fanout", str(port), str(share), str(expect), str(keep), f"{deadline:g}"]
            proc = subprocess.Popen(
                [*cmd, req.decode()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
            thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
            thread.start()
            self.procs.append(proc)
            self.threads.append(thread)

    def __len__(self) -> int:
        return len(self.procs)

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        out = proc.stdout
        counts: list[int] = []
        for line in iter(out.readline, b""):
            word = line.split(maxsplit=1)[0] if line.strip() else b""
            if word == b"event":
                _, k, t = line.split()
                self.queue.put(("event", int(k), float(t)))
            elif word == b"opened":
                self.queue.put(("opened", int(line.split()[1])))
            elif word == b"ready":
                self.ready.put(int(line.split()[1]))
            elif word == b"counts":
                counts = [int(c) for c in line.split()[1:]]
            elif word == b"sample":
                blob = _read_blob(out, line)
                self.queue.put(("done", counts, _sample_payloads(blob)))
            elif word == b"error":
                why = line[6:].decode(errors="replace").strip()
                self.queue.put(("error", why))
                self.ready.put(("error", why))
                return
        if proc.wait() != 0:
            why = f"fastload fanout exited with {proc.returncode}"
            self.queue.put(("error", why))
            self.ready.put(("error", why))

    def go(self) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()

    def join(self, timeout: float = 10.0) -> None:
        for proc in self.procs:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        for thread in self.threads:
            thread.join(timeout=timeout)


def _sample_payloads(blob: bytes) -> list[bytes]:
    """The kept connections' bytes (4-byte little-endian length + bytes each), as payloads."""
    payloads: list[bytes] = []
    pos = 0
    while pos + 4 <= len(blob):
        size = int.from_bytes(blob[pos : pos + 4], "little")
        scan = FrameScanner()
        scan.feed(blob[pos + 4 : pos + 4 + size])
        payloads += scan.payloads
        pos += 4 + size
    return payloads


def big_req(binary: Path, port: int, flt: bytes, *, rounds: int, deadline: float) -> dict[str, Any]:
    """``fastload bigreq``: per round, events and seconds from the REQ to its EOSE."""
    proc = subprocess.Popen(
        [str(binary), "bigreq", str(port), str(rounds), f"{deadline:g}", flt.decode()],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    rates: list[tuple[int, float]] = []
    answer = b""
    error = None
    try:
        for line in iter(proc.stdout.readline, b""):
            if line.startswith(b"rate "):
                _, events, seconds = line.split()
                rates.append((int(events), float(seconds)))
            elif line.startswith(b"answer "):
                answer = _read_blob(proc.stdout, line)
            elif line.startswith(b"error "):
                error = line[6:].decode(errors="replace").strip()
        proc.wait(timeout=deadline + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    if error is not None:
        raise FastloadError(error)
    scan = FrameScanner()
    scan.feed(answer)
    return {"rates": rates, "answer": scan.payloads}
