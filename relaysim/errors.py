"""The exception tree of relaysim.

One root, :class:`RelaysimError`, so a caller can catch everything relaysim raises on purpose.
Two families below it, kept apart as h11 keeps its Local/Remote errors apart:

* :class:`UsageError` -- the caller misused relaysim (a bad CLI argument, a missing file, a bad
  scenario). The CLI prints its message on one line and exits 2.
* :class:`ProtocolError` -- a peer or a file sent something that breaks a protocol or format
  (a bad event, a bad filter). Its ``reason`` is already phrased for the wire: it starts with a
  NIP-01 prefix such as ``invalid:``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Protocol


class RelaysimError(Exception):
    """Root of every error relaysim raises on purpose."""


class UsageError(RelaysimError):
    """The caller misused relaysim: the message says how to fix the call."""


class EnvironmentProblem(UsageError):
    """Something the run needs is missing from this machine (a browser, a driver, a port)."""


class ProtocolError(RelaysimError):
    """A peer or an input file broke a protocol; ``reason`` is the NIP-01 style answer.

    ``reason`` always starts with a machine-readable prefix (``invalid:``, ``error:``,
    ``unsupported:``, ...) so the relay can put it on the wire unchanged.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidEvent(ProtocolError):
    """An event failed validation; ``field`` names the offending field when one is to blame."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.field = field


class InvalidFilter(ProtocolError):
    """A REQ/COUNT filter failed validation."""


class InvalidMessage(ProtocolError):
    """A client message could not be understood at all (not JSON, not an array, unknown verb)."""


class ExitCode(enum.IntEnum):
    """The exit status of every command that judges (``run``, ``soak``, ``explore``, ``compare``).

    One table for all of them (README, "Exit codes"): 0 passed (or nothing found), 1 an assertion failed
    (or a regression or a leak was found), 2 a usage error or unusable input, 3 nothing could be judged
    (every asserted figure unavailable; ``--allow-unavailable`` makes that 0).
    """

    PASSED = 0
    FAILED = 1
    USAGE = 2
    NOT_JUDGED = 3


class _Judged(Protocol):
    @property
    def verdict(self) -> str: ...


def exit_code_for(results: Iterable[_Judged], allow_unavailable: bool = False) -> ExitCode:
    """FAILED if any result failed; NOT_JUDGED if there were results and none could be judged (all
    UNAVAILABLE) unless ``allow_unavailable``; else PASSED. Some UNAVAILABLE beside a PASS is a pass:
    the report names what was missing."""
    verdicts = [str(r.verdict) for r in results]
    if "FAIL" in verdicts:
        return ExitCode.FAILED
    if verdicts and all(v == "UNAVAILABLE" for v in verdicts) and not allow_unavailable:
        return ExitCode.NOT_JUDGED
    return ExitCode.PASSED
