"""Injected network faults: the ``--faults`` mini-language and a pure, seeded plan of fault draws.

Theory of operation. ``relaysim serve --faults drop=0.01,delay=50ms,jitter=20ms,disconnect-every=60s,
refuse-reconnect=2 --faults-seed 7`` makes the relay a bad network on purpose, so a client's
reconnect paths run in a test. :func:`parse_faults` reads the text into a frozen :class:`FaultSpec`;
:class:`Faults` is the relay's one fault state: it hands each accepted websocket a
:class:`ConnectionFaults` that decides, frame by frame, what to withhold and how long to hold
back what it sends, and when to end the connection; it answers whether an upgrade is refused; it
counts and logs every fault it injects (``/stats`` ``faults``, the run report's ``relay.faults``).

Determinism. Every draw comes from ``--faults-seed``, and from nothing that depends on timing: the
n-th websocket the relay accepts (its ``serial``) gets three private random streams,
``Random("<seed>/<serial>/drop")``, ``.../delay`` and ``.../disconnect``, and draws from them in the
order of its own frames (drop: one draw per EVENT frame; delay: one per frame; disconnect: one
interval per arming). So the same seed, the same client and the same frames give the same faults,
however the connections interleave and however the machine is loaded. Switching the spec during a
run (a scenario's ``faults`` step, ``POST /control/faults``) keeps the streams: what changes is
only which draws are taken from here on.

This module does no I/O and knows no trio: the relay's trio side (:mod:`relaysim.relay.faults_io`)
asks it for decisions and does the waiting, closing and refusing. See docs/relay.md, "Faults".

Which client is "that client" for ``refuse-reconnect``: on loopback every peer has the address
127.0.0.1 and a fresh ephemeral port per connection, so the address cannot tell two clients apart.
A browser tab keeps its page's ``Origin`` and its ``User-Agent`` across reconnects, so the key is
(peer address, Origin, User-Agent): one tab of the app under test is one client, and the harness's
own HTTP calls are never refused (they do not upgrade). Two tabs of the same app in the same browser
share a key; that is the price of needing nothing from the client.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from relaysim.errors import UsageError

__all__ = [
    "FAULT_KINDS",
    "NO_FAULTS",
    "ConnectionFaults",
    "FaultCounts",
    "FaultEvent",
    "FaultSpec",
    "Faults",
    "client_key",
    "fault_spec",
    "fault_value",
    "is_event_frame",
    "parse_faults",
]

log = logging.getLogger("relaysim.relay.faults")

#: The items ``--faults`` understands, in the order :meth:`FaultSpec.describe` writes them.
FAULT_KINDS: tuple[str, ...] = ("drop", "delay", "jitter", "disconnect-every", "refuse-reconnect", "reset")

#: Most entries kept in the in-memory fault log (``/stats`` ``faults.events``); counts are never cut.
LOG_LIMIT = 500

_DURATION = re.compile(r"^((?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)\s*(ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_EVENT_PREFIX = b'["EVENT"'


@dataclass(frozen=True)
class FaultSpec:
    """What to inject; the zero value (:data:`NO_FAULTS`) injects nothing.

    ``drop``: probability in [0, 1] that a relay->client EVENT frame is withheld. ``delay`` and
    ``jitter`` (seconds): each relay->client frame leaves ``delay`` ± up to ``jitter`` seconds
    (uniform, never below 0) after the relay queued it, order kept. ``disconnect_every`` (seconds,
    None = never): mean of the exponential interval after which each connection is ended; ``reset``
    ends it with a TCP reset instead of a close frame with code 1001. ``refuse_reconnect``: after an
    injected disconnect, the next this-many upgrade attempts from that client get HTTP 503.
    """

    drop: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    disconnect_every: float | None = None
    refuse_reconnect: int = 0
    reset: bool = False

    @property
    def active(self) -> bool:
        return self != NO_FAULTS

    @property
    def delays(self) -> bool:
        return self.delay > 0 or self.jitter > 0

    def describe(self) -> str:
        """The spec as ``--faults`` text, canonical (``""`` for no faults): parses back to itself."""
        items = []
        if self.drop:
            items.append(f"drop={self.drop:g}")
        if self.delay:
            items.append(f"delay={_seconds_text(self.delay)}")
        if self.jitter:
            items.append(f"jitter={_seconds_text(self.jitter)}")
        if self.disconnect_every is not None:
            items.append(f"disconnect-every={_seconds_text(self.disconnect_every)}")
        if self.refuse_reconnect:
            items.append(f"refuse-reconnect={self.refuse_reconnect}")
        if self.reset:
            items.append("reset=1")
        return ",".join(items)


NO_FAULTS = FaultSpec()


def _seconds_text(seconds: float) -> str:
    ms = seconds * 1000
    if seconds < 1 and abs(ms - round(ms)) < 1e-9:
        return f"{round(ms)}ms"
    return f"{seconds:g}s"


def _duration(key: str, raw: str) -> float:
    m = _DURATION.match(raw.strip().lower())
    if m is None:
        raise ValueError("must be a duration with a unit (ms, s, m or h), e.g. 50ms or 60s")
    value = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if not math.isfinite(value):
        raise ValueError("must be a finite duration")
    return value


def _probability(raw: str) -> float:
    text = raw.strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError("must be a probability between 0 and 1 (or a percentage such as 1%)") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError("must be a probability between 0 and 1 (or a percentage such as 1%)")
    return value


def _count(raw: str) -> int:
    text = raw.strip()
    if not text.isdigit():
        raise ValueError("must be a whole number >= 0")
    return int(text)


def _flag(raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be 1 or 0")


def fault_value(key: str, raw: str) -> float | int | bool:
    """The value of one item (``key`` one of :data:`FAULT_KINDS`); ValueError says what it must be."""
    if key == "drop":
        return _probability(raw)
    if key in ("delay", "jitter"):
        return _duration(key, raw)
    if key == "disconnect-every":
        seconds = _duration(key, raw)
        if seconds <= 0:
            raise ValueError("must be longer than 0 (leave it out for no disconnects)")
        return seconds
    if key == "refuse-reconnect":
        return _count(raw)
    if key == "reset":
        return _flag(raw)
    raise ValueError(f"unknown fault {key!r} (known: {', '.join(FAULT_KINDS)})")


def fault_spec(values: dict[str, Any]) -> FaultSpec:
    """A spec from checked item values by ``--faults`` name; UsageError when they do not fit together."""
    spec = FaultSpec(**{key.replace("-", "_"): value for key, value in values.items()})
    if spec.reset and spec.disconnect_every is None:
        raise UsageError(
            "bad --faults item 'reset=1': it says how disconnect-every ends connections; add disconnect-every"
        )
    return spec


def parse_faults(text: str | None) -> FaultSpec:
    """Parse ``drop=0.01,delay=50ms,...`` into a :class:`FaultSpec`; ``""``, ``off`` or None: no faults.

    Raises :class:`UsageError` with one line naming the bad item and what it must be, e.g.
    ``bad --faults item 'delay=50': must be a duration with a unit (ms, s, m or h), e.g. 50ms or 60s``.
    """
    if text is None:
        return NO_FAULTS
    stripped = text.strip()
    if stripped.lower() in ("", "off", "none"):
        return NO_FAULTS
    values: dict[str, Any] = {}
    for item in stripped.split(","):
        item = item.strip()
        if not item:
            raise UsageError(f"bad --faults {text!r}: an empty item (two commas in a row, or one at the end)")
        key, sep, raw = item.partition("=")
        key = key.strip().lower()
        if not sep:
            names = ", ".join(FAULT_KINDS)
            raise UsageError(f"bad --faults item {item!r}: expected name=value (names: {names})")
        if key in values:
            raise UsageError(f"bad --faults item {item!r}: {key} is given twice")
        try:
            values[key] = fault_value(key, raw)
        except ValueError as exc:
            raise UsageError(f"bad --faults item {item!r}: {exc}") from None
    return fault_spec(values)


def is_event_frame(payload: bytes) -> bool:
    """True for a NIP-01 ``["EVENT",...]`` message as the relay encodes it (no space after ``[``)."""
    return payload.startswith(_EVENT_PREFIX)


def client_key(peer_host: str, origin: str | None, user_agent: str | None) -> str:
    """The key ``refuse-reconnect`` counts refusals under (module docstring: why these three)."""
    return f"{peer_host} {origin or '-'} {user_agent or '-'}"


@dataclass
class FaultCounts:
    """Every fault injected since the relay started (or was reset), by kind."""

    events_dropped: int = 0
    frames_delayed: int = 0
    delay_seconds_total: float = 0.0
    delay_seconds_max: float = 0.0
    disconnects_close: int = 0
    disconnects_reset: int = 0
    upgrades_refused: int = 0

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["delay_seconds_total"] = round(self.delay_seconds_total, 6)
        doc["delay_seconds_max"] = round(self.delay_seconds_max, 6)
        return doc


@dataclass(frozen=True)
class FaultEvent:
    """One entry of the fault log: when (Unix time), which connection (None: an upgrade), what."""

    at: float
    conn: int | None
    fault: str  # drop | disconnect | reset | refuse | spec
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": round(self.at, 6), "conn": self.conn, "fault": self.fault, "detail": self.detail}


class ConnectionFaults:
    """The fault decisions for one websocket, in the order of its frames (get one from :class:`Faults`).

    Call :meth:`withhold` for every frame about to be sent (True: skip it), :meth:`due` for every
    frame sent (the time it may leave, or None when no delay is set), :meth:`next_disconnect` to
    arm the disconnect timer and :meth:`disconnected` when the timer ended the connection.
    """

    def __init__(self, owner: Faults, serial: int, conn_id: int, client: str) -> None:
        self._owner = owner
        self.serial = serial
        self.conn_id = conn_id
        self.client = client
        seed = owner.seed
        self._drop = random.Random(f"{seed}/{serial}/drop")
        self._delay = random.Random(f"{seed}/{serial}/delay")
        self._disconnect = random.Random(f"{seed}/{serial}/disconnect")
        self._last_due = -math.inf
        self.frames = 0
        self.events = 0

    @property
    def spec(self) -> FaultSpec:
        """The relay's spec right now (a ``faults`` step may switch it while this connection lives)."""
        return self._owner.spec

    def withhold(self, payload: bytes) -> bool:
        """Whether to withhold this frame: only EVENT frames, each with probability ``drop``."""
        if not is_event_frame(payload):
            return False
        self.events += 1
        p = self.spec.drop
        if p <= 0 or self._drop.random() >= p:
            return False
        self._owner._count_drop(self, self.events)
        return True

    def due(self, now: float) -> float | None:
        """When a frame queued at ``now`` may leave (never before the frame before it), or None."""
        spec = self.spec
        self.frames += 1
        if not spec.delays:
            return None
        wait = spec.delay
        if spec.jitter:
            wait += self._delay.uniform(-spec.jitter, spec.jitter)
        wait = max(0.0, wait)
        due = max(now + wait, self._last_due)
        self._last_due = due
        self._owner._count_delay(due - now)
        return due

    def next_disconnect(self) -> float | None:
        """Seconds until this connection is ended (an exponential draw with the spec's mean), or None."""
        mean = self.spec.disconnect_every
        if mean is None:
            return None
        return self._disconnect.expovariate(1.0 / mean)

    def disconnected(self, *, reset: bool, after: float) -> None:
        """The timer ended this connection: count it and arm the client's refusals."""
        self._owner._count_disconnect(self, reset=reset, after=after)


@dataclass
class _Refusals:
    pending: int = 0


class Faults:
    """The relay's fault state: the spec in force, the seed, the counts and the log.

    ``clock`` gives the Unix time for the log (the relay passes its own). Not thread-safe: the relay
    touches it from its trio thread only.
    """

    def __init__(
        self, spec: FaultSpec = NO_FAULTS, seed: int | str = 1, clock: Callable[[], float] | None = None
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.clock = clock or time.time
        self.counts = FaultCounts()
        self.events: deque[FaultEvent] = deque(maxlen=LOG_LIMIT)
        self.logged = 0  # every event ever logged (the deque keeps the last LOG_LIMIT)
        self._serial = 0
        self._refusals: dict[str, _Refusals] = {}
        self.generation = 0  # bumped by every switch: a connection's timer re-arms on a change
        if spec.active:
            log.info("faults: %s (seed %s)", spec.describe(), seed)

    # -- what the relay asks ------------------------------------------------------------------

    def open_connection(self, conn_id: int, client: str) -> ConnectionFaults:
        """A new websocket was accepted: its decisions, from the next serial's streams."""
        self._serial += 1
        return ConnectionFaults(self, self._serial, conn_id, client)

    def refuse(self, client: str) -> bool:
        """Whether to answer this upgrade attempt with 503 (it uses up one pending refusal)."""
        pending = self._refusals.get(client)
        if pending is None or pending.pending <= 0:
            return False
        pending.pending -= 1
        if pending.pending == 0:
            del self._refusals[client]
        self.counts.upgrades_refused += 1
        left = pending.pending
        self._log(None, "refuse", f"upgrade from {client} refused with 503 ({left} more to refuse)")
        return True

    def switch(self, spec: FaultSpec) -> None:
        """Put ``spec`` in force from now on (live connections included); refusals pending stay."""
        self.spec = spec
        self.generation += 1
        self._log(None, "spec", spec.describe() or "off")

    def reset(self) -> None:
        """The relay was reset: counts and log start over; the spec, the seed and the serials stay."""
        self.counts = FaultCounts()
        self.events.clear()
        self.logged = 0
        self._refusals.clear()

    def statistics(self) -> dict[str, Any]:
        """The ``faults`` object of ``/stats``."""
        return {
            "spec": self.spec.describe(),
            "seed": self.seed,
            "connections": self._serial,
            "counts": self.counts.to_dict(),
            "refusals_pending": {k: v.pending for k, v in self._refusals.items()},
            "logged": self.logged,
            "events": [e.to_dict() for e in self.events],
        }

    # -- bookkeeping --------------------------------------------------------------------------

    def _log(self, conn: int | None, fault: str, detail: str, *, quiet: bool = False) -> None:
        self.events.append(FaultEvent(self.clock(), conn, fault, detail))
        self.logged += 1
        where = "-" if conn is None else conn
        (log.debug if quiet else log.info)("fault %s conn %s: %s", fault, where, detail)

    def _count_drop(self, conn: ConnectionFaults, nth: int) -> None:
        self.counts.events_dropped += 1
        self._log(conn.conn_id, "drop", f"EVENT frame #{nth} of this connection withheld")

    def _count_delay(self, seconds: float) -> None:
        c = self.counts
        c.frames_delayed += 1
        c.delay_seconds_total += seconds
        c.delay_seconds_max = max(c.delay_seconds_max, seconds)

    def _count_disconnect(self, conn: ConnectionFaults, *, reset: bool, after: float) -> None:
        if reset:
            self.counts.disconnects_reset += 1
            how = "TCP reset"
        else:
            self.counts.disconnects_close += 1
            how = "close 1001"
        n = self.spec.refuse_reconnect
        if n:
            self._refusals.setdefault(conn.client, _Refusals()).pending = n
        refusing = f"; the next {n} upgrade(s) from this client get 503" if n else ""
        self._log(conn.conn_id, "reset" if reset else "disconnect", f"{how} after {after:.3f} s{refusing}")
