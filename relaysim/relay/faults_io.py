"""The trio side of injected faults: holding frames back, ending connections, refusing upgrades.

:mod:`relaysim.relay.faults` decides (pure, seeded); this module acts on the decisions with the
clock and the sockets. The relay owns one :class:`FaultControl`; each websocket gets a
:class:`FaultLink` from it, and the connection calls the link at three places only:

* the writer passes each unit's payloads through :meth:`FaultLink.admit` (EVENT frames withheld,
  each frame's departure time drawn) and writes with :meth:`FaultLink.send_all` /
  :meth:`FaultLink.send_eof` instead of the stream's own methods;
* :meth:`FaultLink.start` runs, in the connection's nursery, the delay line (the one task that
  writes to the socket while frames are held back, so the writer never sleeps and order is kept)
  and the disconnect timer (close 1001, or a TCP reset: ``SO_LINGER`` 0, then the socket closed);
* before an upgrade, the server asks :meth:`FaultControl.refuse` and answers 503 with
  :func:`send_refusal`.

Why a delay line instead of sleeping in the writer: a writer that slept for each chunk would add
each chunk's delay to every chunk queued behind it (50 ms each, cumulatively); the line keeps every
chunk's own due time and sends them in order, so a frame leaves ``delay ± jitter`` after it was
queued, never earlier than the frame before it.
"""

from __future__ import annotations

import contextlib
import math
import socket
import struct
from typing import Protocol

import trio

from relaysim.relay.faults import ConnectionFaults, Faults, FaultSpec, client_key

__all__ = ["DISCONNECT_REASON", "FaultControl", "FaultLink", "send_refusal", "upgrade_client"]

DISCONNECT_REASON = "fault injected: disconnect-every"
#: What the delay line holds at most, in chunks and in bytes; beyond that the writer waits
#: (backpressure, as a full socket buffer would), so held-back frames stay within the connection's
#: memory bound plus ``LINE_BYTES``.
LINE_CHUNKS = 1024
LINE_BYTES = 4 * 1024 * 1024
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"Content-Length: 52\r\n"
    b"\r\n"
    b"503 Service Unavailable: fault injected (reconnect)\n"
)
assert len(REFUSAL.split(b"\r\n\r\n", 1)[1]) == 52


class Closable(Protocol):
    """What the disconnect timer needs of a websocket connection."""

    cancel_scope: trio.CancelScope

    def close(self, code: int, reason: str, *, grace: float | None = None) -> None: ...


def upgrade_client(peer_host: str, head: bytes) -> str:
    """The ``refuse-reconnect`` key of an upgrade request (see :func:`relaysim.relay.faults.client_key`)."""
    origin = agent = None
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        lowered = name.strip().lower()
        if lowered == b"origin":
            origin = value.strip().decode("latin-1")
        elif lowered == b"user-agent":
            agent = value.strip().decode("latin-1")
    return client_key(peer_host, origin, agent)


async def send_refusal(stream: trio.abc.Stream) -> None:
    """Answer an upgrade with 503 and end the connection (the caller closes the stream)."""
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        await stream.send_all(REFUSAL)


class FaultControl:
    """The relay's faults: the pure state plus the event live connections watch for a switch."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.switched = trio.Event()

    @property
    def spec(self) -> FaultSpec:
        return self.faults.spec

    def switch(self, spec: FaultSpec, seed: int | str | None = None) -> None:
        """Put ``spec`` in force now, on live connections too (a ``faults`` step, POST /control/faults)."""
        if seed is not None:
            # "27" from a query string is the seed 27 (the draws are the same; /stats shows what was set)
            self.faults.seed = int(seed) if isinstance(seed, str) and seed.isdigit() else seed
        self.faults.switch(spec)
        self.switched.set()
        self.switched = trio.Event()

    def refuse(self, client: str) -> bool:
        return self.faults.refuse(client)

    def link(self, client: str) -> FaultLink:
        return FaultLink(self, client)


class FaultLink:
    """One websocket's faults (module docstring: where the connection calls it)."""

    def __init__(self, control: FaultControl, client: str) -> None:
        self.control = control
        self.client = client
        self.decisions: ConnectionFaults | None = None
        self._stream: trio.abc.HalfCloseableStream | None = None
        self._line_in, self._line_out = trio.open_memory_channel[tuple[float, bytes | None]](LINE_CHUNKS)
        self._held = 0  # chunks in the line not yet written
        self._held_bytes = 0
        self._room = trio.Event()
        self._due: float | None = None  # departure time of the last admitted frame

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, nursery: trio.Nursery, conn: Closable, stream: trio.SocketStream, conn_id: int) -> None:
        """The connection is open: draw from the next serial's streams; run the line and the timer."""
        self.decisions = self.control.faults.open_connection(conn_id, self.client)
        self._stream = stream
        nursery.start_soon(self._run_line)
        nursery.start_soon(self._run_timer, conn, stream)

    # -- sending -------------------------------------------------------------------------------

    def passthrough(self) -> bool:
        """No fault applies to a frame now (nothing dropped or delayed) and the delay line is empty:
        a frame may go straight to the socket (the relay's direct live writes ask this)."""
        spec = self.control.spec
        return spec.drop <= 0 and not spec.delays and self._held == 0

    def admit(self, payloads: list[bytes]) -> list[bytes]:
        """The payloads to send (EVENT frames withheld by ``drop`` left out); draws their delays."""
        decisions = self.decisions
        spec = self.control.spec
        if decisions is None or (spec.drop <= 0 and not spec.delays):
            return payloads
        now = trio.current_time()
        kept = []
        for payload in payloads:
            if decisions.withhold(payload):
                continue
            due = decisions.due(now)
            if due is not None:
                self._due = due
            kept.append(payload)
        return kept

    async def send_all(self, data: bytes) -> None:
        """Write ``data`` now, or hand it to the delay line with the due time of its last frame."""
        assert self._stream is not None
        due, self._due = self._due, None
        if due is None and self._held == 0:
            await self._stream.send_all(data)
            return
        while self._held and self._held_bytes + len(data) > LINE_BYTES:
            self._room = trio.Event()
            await self._room.wait()
        self._held += 1
        self._held_bytes += len(data)
        await self._line_in.send((trio.current_time() if due is None else due, data))

    async def send_eof(self) -> None:
        """Half-close after everything already handed over (the close frame included)."""
        assert self._stream is not None
        if self._held == 0:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                await self._stream.send_eof()
            return
        self._held += 1
        await self._line_in.send((trio.current_time(), None))

    async def _run_line(self) -> None:
        assert self._stream is not None
        async for due, data in self._line_out:
            await trio.sleep_until(due)
            if data is None:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    await self._stream.send_eof()
            else:
                await self._stream.send_all(data)
                self._held_bytes -= len(data)
            self._held -= 1
            self._room.set()

    # -- disconnecting -------------------------------------------------------------------------

    async def _run_timer(self, conn: Closable, stream: trio.SocketStream) -> None:
        """End the connection after each drawn interval; re-draw when the spec is switched."""
        decisions = self.decisions
        assert decisions is not None
        while True:
            switched = self.control.switched
            armed_at = trio.current_time()
            interval = decisions.next_disconnect()
            deadline = math.inf if interval is None else armed_at + interval
            with trio.move_on_at(deadline):
                await switched.wait()
                continue  # the spec changed: draw again under the new one
            reset = self.control.spec.reset
            decisions.disconnected(reset=reset, after=trio.current_time() - armed_at)
            if reset:
                _abort(stream)
                conn.cancel_scope.cancel()
            else:
                conn.close(1001, DISCONNECT_REASON)
            return


def _abort(stream: trio.SocketStream) -> None:
    """Make the coming close a TCP reset (RST, no FIN, no close frame): SO_LINGER on, timeout 0."""
    with contextlib.suppress(OSError):
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
