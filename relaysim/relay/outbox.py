"""A bounded outbound queue per websocket connection.

Why not an unbounded list: a client that stops reading (a frozen tab, a paused debugger) would
make the relay hold every live event for it forever. Why not a plain trio memory channel: the bound
that matters is bytes, and the single writer task wants to take everything pending at once so that
a REQ's stored events leave in a few ``send_all`` calls instead of one syscall per event.

Producers:

* the live fan-out uses :meth:`Outbox.put_nowait`, which raises :class:`OutboxFull` rather than
  wait -- one slow client must never stall a publisher, so the caller disconnects that client;
* a REQ's query task uses ``await`` :meth:`Outbox.put`, which waits for room (backpressure on the
  one client that asked for the data), under a timeout the caller sets;
* the reader calls :meth:`Outbox.wake` after feeding the websocket protocol so the writer flushes
  pongs and close frames even when no message is queued.

The consumer (the connection's writer task) calls :meth:`Outbox.take` for at most one write's
worth of units and :meth:`Outbox.sent` once that write is done. Units taken but not yet written
still count against the bound: a client that stops reading holds at most ``max_bytes`` of encoded
frames in the relay (plus one unit, below), whether they wait here or in the write that blocks.

The bound is checked before a unit goes in: a unit is accepted while the queue is below
``max_bytes`` and ``max_items``, so the queue may exceed ``max_bytes`` by one unit; producers keep
units small (a REQ's batches are capped in bytes) and never encode one before there is room.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import trio

__all__ = ["Outbox", "OutboxFull", "Outgoing"]


class OutboxFull(Exception):
    """The connection's outbound queue is at its bound: its client is not reading."""


@dataclass(slots=True)
class Outgoing:
    """Text messages to send as one unit.

    ``sub`` is the subscription they belong to (None for OK/NOTICE/COUNT/CLOSED): the writer drops
    the unit if that subscription was closed or replaced after it was queued, which is how CLOSE
    stops delivery at once even for frames already waiting here.
    """

    payloads: list[bytes]
    sub: Any = None
    events: int = 0
    live: bool = False
    nbytes: int = field(default=0)
    #: Already framed bytes (the rest of a frame a direct write began): written as they are, first.
    raw: bool = False

    def __post_init__(self) -> None:
        if not self.nbytes:
            self.nbytes = sum(len(p) for p in self.payloads)


class Outbox:
    """FIFO of :class:`Outgoing` units bounded by ``max_bytes`` (queued + being written) and ``max_items``."""

    # Slots: a fan-out asks every connection's outbox whether it is idle (fewer memory lines to touch).
    __slots__ = (
        "_bytes",
        "_closed",
        "_in_flight",
        "_items",
        "_room",
        "_wakeup",
        "high_water_bytes",
        "max_bytes",
        "max_items",
    )

    def __init__(self, *, max_bytes: int, max_items: int) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self._items: deque[Outgoing] = deque()
        self._bytes = 0
        self._in_flight = 0
        self._wakeup = trio.Event()
        self._room = trio.Event()
        self._closed = False
        self.high_water_bytes = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def queued_bytes(self) -> int:
        """Encoded bytes held for this client: queued, plus the write in progress."""
        return self._bytes + self._in_flight

    def __len__(self) -> int:
        return len(self._items)

    def idle(self) -> bool:
        """Nothing queued and nothing being written: a write now cannot overtake anything."""
        return not self._items and not self._in_flight

    def has_room(self) -> bool:
        """True when a unit would be accepted now (always False once closed)."""
        return not self._closed and (
            len(self._items) < self.max_items and self._bytes + self._in_flight < self.max_bytes
        )

    def _append(self, item: Outgoing) -> None:
        self._items.append(item)
        self._bytes += item.nbytes
        self.high_water_bytes = max(self.high_water_bytes, self._bytes + self._in_flight)
        self._wakeup.set()

    def put_nowait(self, item: Outgoing) -> None:
        """Queue ``item`` or raise :class:`OutboxFull`; a closed outbox silently drops it."""
        if self._closed:
            return
        if not self.has_room():
            raise OutboxFull(f"outbound queue holds {len(self._items)} messages, {self.queued_bytes} bytes")
        self._append(item)

    async def wait_room(self) -> None:
        """Return once a unit would be accepted, or the outbox is closed. Wrap in a timeout."""
        while not self._closed and not self.has_room():
            await self._room.wait()

    async def put(self, item: Outgoing) -> None:
        """Queue ``item``, waiting for the writer to make room. Wrap in a timeout."""
        await self.wait_room()
        if not self._closed:
            self._append(item)

    def wake(self) -> None:
        """Make :meth:`take` return even if nothing is queued (data_to_send may hold frames)."""
        self._wakeup.set()

    async def take(self, max_bytes: int) -> list[Outgoing]:
        """Wait for a wake-up, then take queued units up to ``max_bytes`` (at least one, or none).

        What is taken stays counted until :meth:`sent`: call it after the write.
        """
        await self._wakeup.wait()
        self._wakeup = trio.Event()
        items: list[Outgoing] = []
        taken = 0
        queue = self._items
        while queue and (not items or taken + queue[0].nbytes <= max_bytes):
            item = queue.popleft()
            items.append(item)
            taken += item.nbytes
        self._bytes -= taken
        self._in_flight += taken
        if queue:
            self._wakeup.set()  # more to write after this one
        return items

    def sent(self) -> None:
        """The units from the last :meth:`take` are written (or dropped): their room is free."""
        if self._in_flight:
            self._in_flight = 0
            self._room.set()
            self._room = trio.Event()

    def close(self) -> None:
        """Drop everything and release waiters: the connection is going away."""
        self._closed = True
        self._items.clear()
        self._bytes = 0
        self._wakeup.set()
        self._room.set()
