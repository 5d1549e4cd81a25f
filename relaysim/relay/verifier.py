"""Signature checks of pipelined EVENTs in a helper process, beside the event loop.

Why a process and not a thread: libsecp256k1 runs without the GIL, but a thread must take the GIL
back after every check, and the event loop holds it while it handles the messages already
checked. Measured publishing 20,000 events on 4 pipelined connections (2 cores): a check took
~38 us of the thread's CPU but ~150 us of wall time, so the readers waited on their threads most of
the time (16.6-19.7k events/s); with the checks in a process of their own, 23.1k/s.

How: one process per relay process (``python -m relaysim.nostr.signatures``: a fixed command, no
shell; not multiprocessing, which would re-import the user's main script and pickle), started when
the relay takes its first websocket, so that it has imported (~0.1 s, ~12 MB) by the time a
publisher's burst comes; a relay nobody connects to never starts it. Until the process says it is
ready (one byte), batches are checked in the calling thread as before. A batch goes to it whole --
the raw EVENT messages, length-prefixed on its stdin -- and it answers with
:func:`~relaysim.nostr.signatures.check_signatures`'s triples as JSON (orjson): nothing but bytes
and strings cross the pipe. Callers run
:meth:`Verifier.check` in a worker thread (it blocks on the pipe without the GIL). If the process
cannot start or dies, the check runs in the calling thread: slower, never wrong, since the event
loop still checks every id against its content and verifies inline any event left out of the set.
The process ends when the relay's process closes the pipe (or exits).
"""

from __future__ import annotations

import contextlib
import select
import subprocess
import sys
import threading
from collections.abc import Sequence
from functools import cache

import orjson

from relaysim.nostr.signatures import READY, Signed, check_signatures, encode_batch, read_exact, read_length

__all__ = ["Verifier", "shared_verifier"]


class Verifier:
    """A helper process that runs :func:`check_signatures`; thread-safe, one batch at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._failed = False
        self.batches_in_process = 0  # how many batches the helper process checked (tests, figures)

    def start(self) -> None:
        """Start the helper process now if it is not running (it imports while the relay serves).

        Called on the event loop: it never waits for the lock (a batch being checked holds it;
        that batch's check starts the process anyway if it is not there).
        """
        if self._process is not None or self._failed or not self._lock.acquire(blocking=False):
            return
        try:
            if self._process is None:
                self._ready_process()
        finally:
            self._lock.release()

    def check(self, messages: Sequence[bytes]) -> Signed:
        """:func:`check_signatures` of ``messages``, in the helper process once it is ready."""
        with self._lock:
            process = self._ready_process()
            if process is not None:
                assert process.stdin is not None and process.stdout is not None
                try:
                    process.stdin.write(encode_batch(messages))
                    process.stdin.flush()
                    answer = read_exact(process.stdout, read_length(process.stdout))
                    signed = frozenset(tuple(triple) for triple in orjson.loads(answer))
                    self.batches_in_process += 1
                    return signed
                except (EOFError, OSError, ValueError):
                    self._stop()  # it died: from now on, check here
                    self._failed = True
        return check_signatures(messages)

    def _ready_process(self) -> subprocess.Popen[bytes] | None:
        """The process if it is ready; else start it (once) and return None: check here meanwhile."""
        if self._failed:
            return None
        process = self._process
        if process is None:
            try:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "relaysim.nostr.signatures"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            except OSError:
                self._failed = True  # no process (resource limits): check in threads
            return None
        if not self._ready:
            assert process.stdout is not None
            if not select.select([process.stdout], [], [], 0)[0]:
                return None  # still importing
            try:
                self._ready = read_exact(process.stdout, 1) == READY
            except (EOFError, OSError):
                self._ready = False
            if not self._ready:
                self._stop()
                self._failed = True
                return None
        return process

    def _stop(self) -> None:
        process, self._process = self._process, None
        self._ready = False
        if process is not None:
            with contextlib.suppress(OSError):
                assert process.stdin is not None and process.stdout is not None
                process.stdin.close()
                process.stdout.close()
            process.kill()
            process.wait()

    def close(self) -> None:
        """Stop the helper process (a test's cleanup; a relay's process ends it by exiting)."""
        with self._lock:
            self._stop()
            self._failed = False


@cache
def shared_verifier() -> Verifier:
    """The verifier every connection of this process uses."""
    return Verifier()
