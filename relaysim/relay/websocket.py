"""One websocket connection: websockets' Sans-I/O ``ServerProtocol`` driven by three kinds of task.

Theory of operation (read -> feed -> flush -> dispatch):

* the **reader** receives bytes, feeds ``ServerProtocol.receive_data``, reassembles fragmented
  messages, hands each complete text message to :meth:`RelayCore.receive` and queues the answers;
  it wakes the writer after every read because the protocol may have produced a pong or a close;
* the **writer** is the only task that calls ``send_all`` on the stream (two tasks must never
  write at once): it takes everything queued in the :class:`~relaysim.relay.outbox.Outbox`, frames
  it with ``send_text``, drains ``data_to_send()`` and writes it in one call -- so a REQ's stored
  events leave in a few large writes, not one syscall per event;
* one **query pump** per connection sends the stored events of its REQs, round robin, one batch
  at a time, and encodes a batch only when the outbox has room for it; it drops a query as soon
  as its subscription is closed or replaced, and queues the EOSE after a query's last batch.

Memory per connection is bounded whatever the client does (docs/relay.md, "Limits"): encoded
frames queued or being written count against ``outbox_bytes``; the stored-event references of
REQs not yet sent count against ``backlog_bytes`` (while that is full the reader takes no new
message from the socket, so TCP pushes back on the client); the writer frames at most
``write_bytes`` at a time; a message begun in fragments must end within ``fragment_timeout``.

Live events take one path whoever publishes them (a client's EVENT here, the relay's ``publish``
for traffic and tests): :meth:`Connections.deliver` puts each on its subscription's connection.

Failure rules, each counted in ``/stats``:

* a binary message gets ``NOTICE`` (NIP-01 messages are JSON text) and the connection stays up;
* a text message that is not valid UTF-8 fails the connection with close code 1007, as RFC 6455
  section 8.1 requires (the relay decodes it; websockets' Sans-I/O layer leaves that to its user);
* a message longer than ``max_message_length`` fails it with 1009 (``max_size``, in websockets);
* a client whose outbound queue is full (it stopped reading), or whose queries found no room for
  ``send_timeout`` seconds, gets a ``NOTICE`` and close code 1008 with the reason and, if it does
  not read those either, its TCP connection is dropped ``kill_grace`` seconds later;
* a fragmented message not finished within ``fragment_timeout`` fails the connection with 1008;
* any other exception ends this connection only, never the server.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import struct
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import trio
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from relaysim.nostr.messages import encode_notice
from relaysim.relay.core import Delivery, Query, RelayCore, Session, Signed
from relaysim.relay.faults_io import FaultLink
from relaysim.relay.outbox import Outbox, OutboxFull, Outgoing
from relaysim.relay.verifier import shared_verifier

__all__ = ["ConnectionSettings", "Connections", "WebSocketConnection"]

log = logging.getLogger("relaysim.relay")

RECEIVE_SIZE = 65_536
BINARY_NOTICE = "invalid: binary messages are not supported; NIP-01 messages are JSON text"
SLOW_CLIENT_REASON = "client is not reading: outbound queue full"
MiB = 1024 * 1024
# What one pending query holds besides its event references: the Query, the list, the cursor.
QUERY_OVERHEAD = 512
# A list of stored events holds one 8-byte reference per event.
REFERENCE_BYTES = 8
# A read with at least this many EVENTs has their signatures checked off the event loop
# (relay/verifier.py: the signature process, waited on from a worker thread).
SIGNATURE_BATCH = 8
# A fan-out with at least this many direct writes shares them with a helper thread.
SPLIT_WRITES_MIN = 128


@dataclass(frozen=True, kw_only=True)
class ConnectionSettings:
    """Transport knobs (not advertised in NIP-11; they bound the relay, not the protocol)."""

    #: Encoded frames held for one client (queued + the write in progress), plus one unit.
    outbox_bytes: int = 8 * MiB
    outbox_items: int = 10_000
    #: A REQ's stored events leave in batches of at most this many events and (past the first
    #: event) this many bytes; a batch is encoded only when the outbox has room.
    batch_events: int = 250
    batch_bytes: int = 256 * 1024
    #: The stored-event references of REQs whose events are not all sent yet (8 bytes each);
    #: while it is full the reader takes no new message from this client.
    backlog_bytes: int = 4 * MiB
    #: The most one socket write frames and sends (at least one unit).
    write_bytes: int = 256 * 1024
    #: How long a query (or the reader, on a full backlog) waits for room before the client is
    #: dropped as not reading.
    send_timeout: float = 10.0
    kill_grace: float = 2.0
    close_timeout: float = 2.0
    #: A message begun in fragments must be finished within this many seconds.
    fragment_timeout: float = 30.0
    #: A plain HTTP request (head and body, or a websocket upgrade) must arrive within this.
    request_timeout: float = 10.0


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented server text frame (RFC 6455 5.2), as websockets would build it
    without extensions: built once per live event and shared by every connection it goes to."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 65_536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class Connections:
    """The open websocket connections by id, and the one path live events take to them.

    Both producers of live events -- a client's EVENT (:meth:`WebSocketConnection._on_message`)
    and an in-process publish (the relay's ``publish``, which the traffic uses) -- hand their
    :class:`~relaysim.relay.core.Delivery` list to :meth:`deliver`. :attr:`change` is the event
    that anything waiting on relay state (``wait_idle``, shutdown) waits on: take it, check the
    state, then wait on the event taken, so that no change is missed in between.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, WebSocketConnection] = {}
        self.change = trio.Event()

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, conn_id: int) -> WebSocketConnection | None:
        return self._by_id.get(conn_id)

    def all(self) -> list[WebSocketConnection]:
        """A snapshot: safe to iterate while connections come and go."""
        return list(self._by_id.values())

    def add(self, conn_id: int, conn: WebSocketConnection) -> None:
        if not self._by_id:
            shared_verifier().start()  # ready before a publisher's first burst of EVENTs
        self._by_id[conn_id] = conn
        self.changed()

    def remove(self, conn_id: int) -> None:
        self._by_id.pop(conn_id, None)
        self.changed()

    def changed(self) -> None:
        """Wake everything waiting on :attr:`change`."""
        self.change.set()
        self.change = trio.Event()

    def deliver(self, deliveries: list[Delivery]) -> None:
        """Pass each live event to its subscription's connection (gone connections are skipped).

        A connection's deliveries go together, in order (all of a read's events for one client
        leave in one write), and each distinct message is framed once: a fan-out to 1,000
        subscriptions with one id frames one, shared by every connection's write. Idle
        connections are written at once (:meth:`_write_live`), the others queue. The loop
        allocates little per connection: a big fan-out's garbage is what wakes the cyclic
        collector, in the middle of the writes.
        """
        # A connection's one delivery, or the list of them once it has several.
        units: dict[Session, Delivery | list[Delivery]] = {}
        for delivery in deliveries:
            session = delivery.sub.session
            seen = units.get(session)
            if seen is None:
                units[session] = delivery
            elif type(seen) is list:
                seen.append(delivery)
            else:
                units[session] = [seen, delivery]  # type: ignore[list-item]
        frames: dict[int, bytes] = {}
        conns: list[WebSocketConnection] = []
        data: list[bytes] = []
        written: list[Delivery | list[Delivery]] = []
        for session, unit in units.items():
            conn = session.transport  # None once the connection is gone
            if conn is None:
                continue
            if type(unit) is list:
                unit = [d for d in unit if d.sub.active]  # CLOSE wins over what was matched before
                if not unit:
                    continue
                frame = b"".join([_frame_of(d.payload, frames) for d in unit])
            else:
                assert isinstance(unit, Delivery)
                if not unit.sub.active:
                    continue
                frame = _frame_of(unit.payload, frames)
            if conn.can_write_now():
                conns.append(conn)
                data.append(frame)
                written.append(unit)
            else:
                conn.queue_live(unit)
        if conns:
            self._write_live(conns, data, written)

    def _write_live(
        self, conns: list[WebSocketConnection], data: list[bytes], units: list[Delivery | list[Delivery]]
    ) -> None:
        """Write ``data[i]`` (the frames of ``units[i]``) to ``conns[i]``, each idle, at once.

        A big fan-out's writes may be split between this thread and a helper thread: ``write`` on
        a socket spends its time in the kernel (loopback TCP, waking the reader) without the GIL,
        so the two halves overlap. This thread waits for the helper's half before anything else
        runs, so the event loop never sees a write in progress; the results are booked here.
        """
        fds = [conn._fd for conn in conns]
        if len(fds) >= SPLIT_WRITES_MIN:
            half = len(fds) // 2
            other = _write_helper().submit(_write_all, fds[half:], data[half:])
            sent = _write_all(fds[:half], data[:half])
            sent += other.result()
        else:
            sent = _write_all(fds, data)
        for conn, frame, unit, nbytes in zip(conns, data, units, sent, strict=True):
            if nbytes:
                conn.wrote_live(frame, nbytes, unit)
            else:
                conn.queue_live(unit)


def _frame_of(payload: bytes, frames: dict[int, bytes]) -> bytes:
    """``payload``'s frame; ``frames`` caches them by the payload's identity for the connections
    of one fan-out (the payloads outlive the call, so their ids stay unique)."""
    frame = frames.get(id(payload))
    if frame is None:
        frame = frames[id(payload)] = text_frame(payload)
    return frame


def _defer_collector() -> bool:
    """Hold Python's cyclic collector off (True) until :func:`_resume_collector`, if it is on.

    Why: a fan-out to 1,000 subscribers allocates a tuple per delivery, enough to start a
    collection or three between its matching and its last write -- with 1,000 connections'
    objects alive a full one took ~100 ms, a young one ~1-10 ms. Deferred, the same collections
    run just after the writes, while the clients read. Never held across a wait.
    """
    if gc.isenabled():
        gc.disable()
        return True
    return False


def _resume_collector(deferred: bool) -> None:
    if deferred:
        gc.enable()


@cache
def _write_helper() -> ThreadPoolExecutor:
    """The one thread (per process) that shares big fan-outs' writes; started on first use."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="relaysim-write")


def _write_all(fds: list[int], data: list[bytes]) -> list[int]:
    """``os.write`` each ``data[i]`` to ``fds[i]``: how much each wrote, 0 for nothing (would block,
    or broken: the connection's reader finds out and ends it). Either thread runs it: it touches
    nothing but the sockets."""
    out = []
    write = os.write
    for fd, chunk in zip(fds, data, strict=True):
        try:
            out.append(write(fd, chunk))
        except OSError:
            out.append(0)
    return out


class WebSocketConnection:
    """The relay side of one websocket; create, then ``await run(handshake_bytes)``."""

    def __init__(
        self,
        stream: trio.SocketStream,
        peer: str,
        core: RelayCore,
        settings: ConnectionSettings,
        connections: Connections,
        faults: FaultLink | None = None,
    ) -> None:
        self.stream = stream
        self.faults = faults  # injected faults (relay/faults_io.py): None = a plain connection
        self.peer = peer
        self.core = core
        self.settings = settings
        self._connections = connections
        self.proto = ServerProtocol(max_size=core.limits.max_message_length)
        self.outbox = Outbox(max_bytes=settings.outbox_bytes, max_items=settings.outbox_items)
        self.session: Session | None = None
        self.cancel_scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self._fragment_deadline = math.inf
        self._killed = False
        self.opened = trio.Event()
        # The query pump's round robin: REQs whose stored events are not all queued yet.
        self._queries: deque[_PendingQuery] = deque()
        self.backlog_bytes = 0
        self._backlog_changed = trio.Event()
        self._pump_wakeup = trio.Event()
        self._pump_started = False  # started on the first REQ that has to wait: idle costs nothing
        self._writing = False  # the writer is in a socket write: nothing else may write now
        self._live: list[Delivery] = []  # live events of the read being handled, delivered at its end
        self._plain = False  # no extension negotiated: frames may be built here, not by websockets
        # Plain and still OPEN: live frames may go straight to the socket (can_write_now). Set once
        # open, cleared where the protocol may leave OPEN (close, fail, what the reader feeds it),
        # so a fan-out need not ask every connection's protocol object.
        self._direct = False
        self._fd = -1

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self, head: bytes, trailing: bytes) -> None:
        """Do the opening handshake, then serve until either side closes.

        ``head`` is the handshake request; ``trailing`` what the client sent right after it.
        """
        proto = self.proto
        proto.receive_data(head)
        events = proto.events_received()
        if not events or not isinstance(events[0], Request):
            await self._flush()  # an invalid request: websockets answered it (400) or will close
            return
        response = proto.accept(events[0])
        proto.send_response(response)
        await self._flush()
        if not self._is_open():  # the handshake was refused
            return
        self._plain = not proto.extensions
        self._direct = self._plain
        self._fd = self.stream.socket.fileno()
        self.session = self.core.open_session(self.peer)
        self.session.transport = self
        self._connections.add(self.session.conn_id, self)
        self.opened.set()
        close_code: int | None = None
        try:
            with self.cancel_scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._writer)
                    if self.faults is not None:
                        self.faults.start(nursery, self, self.stream, self.session.conn_id)
                    if trailing:
                        await self._receive(trailing)
                    await self._reader()
                    nursery.cancel_scope.cancel()
            close_code = proto.close_code if proto.state is State.CLOSED else None
            if close_code is None and proto.close_sent is not None:
                close_code = proto.close_sent.code
        finally:
            self._direct = False
            self.session.transport = None
            self.outbox.close()
            self._queries.clear()
            self.backlog_bytes = 0
            self.core.close_session(self.session, close_code)
            self._connections.remove(self.session.conn_id)

    def _is_open(self) -> bool:
        return self.proto.state is State.OPEN

    def close(self, code: int, reason: str, *, grace: float | None = None) -> None:
        """Start the closing handshake; the TCP connection goes after ``grace`` seconds at most."""
        self._direct = False
        if self.proto.state is State.OPEN:
            self.proto.send_close(code, reason)
            self.outbox.wake()
        grace = self.settings.close_timeout if grace is None else grace
        self.cancel_scope.deadline = min(self.cancel_scope.deadline, trio.current_time() + grace)

    def kill_slow(self, reason: str = SLOW_CLIENT_REASON) -> None:
        """The client stopped reading: drop what is queued, say why, close 1008, bound the wait.

        The NOTICE and the close frame go behind the write in progress (if any), so a client that
        reads again within ``kill_grace`` learns why it was dropped; one that does not is cut off.
        """
        if self._killed:
            return
        self._killed = True
        self.core.totals.slow_client_disconnects += 1
        self.outbox.close()
        self._queries.clear()
        self.backlog_bytes = 0
        self._backlog_changed.set()
        log.info("connection %s: %s", self.session.conn_id if self.session else "?", reason)
        if self.proto.state is State.OPEN:
            self.core.totals.notices_sent += 1
            self.proto.send_text(encode_notice(f"error: closing the connection: {reason}"))
        self.close(1008, reason, grace=self.settings.kill_grace)

    # -- sending -------------------------------------------------------------------------------

    def send(self, payloads: list[bytes]) -> None:
        """Queue answers (OK, NOTICE, CLOSED, COUNT) for this client."""
        try:
            self.outbox.put_nowait(Outgoing(payloads))
        except OutboxFull:
            self.kill_slow()

    def deliver(self, delivery: Delivery) -> None:
        """Queue one live event; a client that cannot take it is disconnected, never waited for."""
        try:
            self.outbox.put_nowait(Outgoing([delivery.payload], delivery.sub, events=1, live=True))
        except OutboxFull:
            self.kill_slow()

    def queue_live(self, unit: Delivery | list[Delivery]) -> None:
        """Live events (of active subscriptions) for the writer task, in order."""
        if type(unit) is list:
            for delivery in unit:
                self.deliver(delivery)
        else:
            assert isinstance(unit, Delivery)
            self.deliver(unit)

    def can_write_now(self) -> bool:
        """True when live events may be written to the socket at once, from the publisher's call.

        Why: a fan-out to 1,000 connections through their writer tasks costs 1,000 task switches
        and as many frame builds; this is one ``write`` each (:meth:`Connections.deliver`). Idle
        means nothing queued, nothing being written, a plain connection (no extension, no fault
        in force) and an open one (``_direct``): then no frame can be cut in two. A pong the
        protocol still holds may follow the event (RFC 6455 5.5: control frames go between
        messages); once it holds a close frame the connection is no longer open. A connection
        with faults switched on (drop, delay) takes the outbox path.
        """
        return (
            self._direct
            and not self._writing
            and self.outbox.idle()
            and (self.faults is None or self.faults.passthrough())
        )

    def wrote_live(self, data: bytes, sent: int, unit: Delivery | list[Delivery]) -> None:
        """A direct write took ``sent`` bytes of ``data`` (``unit``'s frames): book the events as
        sent; what the socket did not take goes to the outbox as raw bytes, first in line, so
        frames never interleave."""
        if sent < len(data):
            self.outbox.put_nowait(Outgoing([data[sent:]], None, raw=True))
        assert self.session is not None
        if type(unit) is list:
            self.core.record_live(self.session, [d.sub for d in unit], sent)
        else:
            assert isinstance(unit, Delivery)
            self.core.record_live(self.session, (unit.sub,), sent)

    async def _flush(self) -> None:
        """Write what the protocol has to send (used before the writer task exists)."""
        chunks = self.proto.data_to_send()
        data = b"".join(chunks)
        if data:
            await self.stream.send_all(data)
        if chunks and chunks[-1] == b"":
            await self._send_eof()

    async def _send_eof(self) -> None:
        if self.faults is not None and self.faults.decisions is not None:
            await self.faults.send_eof()  # after the frames the fault line still holds
            return
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await self.stream.send_eof()

    async def _writer(self) -> None:
        proto, core, session, faults = self.proto, self.core, self.session, self.faults
        assert session is not None
        while True:
            items = await self.outbox.take(self.settings.write_bytes)
            out: list[bytes] = []
            for item in items:
                sub = item.sub
                if item.raw:
                    out += proto.data_to_send()
                    out += item.payloads  # the rest of a frame already begun: it must go
                    continue
                if sub is not None and not sub.active:
                    continue  # closed or replaced after this was queued: CLOSE wins
                if proto.state is not State.OPEN:
                    break
                payloads = item.payloads if faults is None else faults.admit(item.payloads)
                if self._plain:
                    out += proto.data_to_send()  # a pong queued meanwhile goes first
                    out += [text_frame(payload) for payload in payloads]
                else:
                    for payload in payloads:
                        proto.send_text(payload)
                if item.events:
                    events = item.events - (len(item.payloads) - len(payloads))  # less those withheld
                    core.record_sent(session, events=events, live=item.live, nbytes=0, sub=sub)
            chunks = proto.data_to_send()
            eof = bool(chunks) and chunks[-1] == b""
            out += chunks
            if not out:
                self.outbox.sent()
                continue
            data = b"".join(out)
            del chunks, items, out  # only the joined copy waits on the socket
            if data:
                self._writing = True
                try:
                    await (self.stream.send_all(data) if faults is None else faults.send_all(data))
                finally:
                    self._writing = False
                core.record_sent(session, events=0, live=False, nbytes=len(data))
            self.outbox.sent()
            if eof:
                await self._send_eof()
                # The server closes first; the client's FIN ends the reader. Do not wait forever.
                self.cancel_scope.deadline = min(
                    self.cancel_scope.deadline, trio.current_time() + self.settings.close_timeout
                )
                return

    # -- receiving -----------------------------------------------------------------------------

    async def _reader(self) -> None:
        while True:
            with trio.move_on_at(self._fragment_deadline) as late:
                data = await self.stream.receive_some(RECEIVE_SIZE)
            if late.cancelled_caught:
                self._fragments, self._fragment_deadline = [], math.inf
                self._fail(1008, f"message not finished within {self.settings.fragment_timeout:g} s")
                continue
            if not data:
                self.proto.receive_eof()
                self._direct = False
                self.outbox.wake()
                return
            await self._receive(data)
            if self.proto.state is State.CLOSED:
                return

    async def _receive(self, data: bytes) -> None:
        self.proto.receive_data(data)
        if self.proto.state is not State.OPEN:  # a close frame came, or the data broke the protocol
            self._direct = False
        messages: list[tuple[Opcode, bytes]] = []
        for frame in self.proto.events_received():
            if not isinstance(frame, Frame):
                continue  # a server protocol only yields frames once open
            opcode = frame.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if frame.fin:
                    messages.append((opcode, bytes(frame.data)))
                else:
                    self._fragment_opcode, self._fragments = opcode, [bytes(frame.data)]
                    self._fragment_deadline = trio.current_time() + self.settings.fragment_timeout
            elif opcode is Opcode.CONT:
                self._fragments.append(bytes(frame.data))
                if frame.fin:
                    data, self._fragments = b"".join(self._fragments), []
                    self._fragment_deadline = math.inf
                    assert self._fragment_opcode is not None
                    messages.append((self._fragment_opcode, data))
            # PING, PONG and CLOSE are answered by the protocol object itself.
        signed = await self._check_signatures(messages)
        deferred = _defer_collector()  # from a fan-out's matching to its last write
        try:
            for opcode, message in messages:
                self._on_message(opcode, message, signed)
                if self.backlog_bytes >= self.settings.backlog_bytes:
                    # Queries wait for this client to read: take no new message until they move on.
                    self._deliver_live()
                    self.outbox.wake()
                    _resume_collector(deferred)
                    deferred = False
                    await self._wait_backlog()
                    deferred = _defer_collector()
            self._deliver_live()
        finally:
            _resume_collector(deferred)
        self.outbox.wake()

    def _deliver_live(self) -> None:
        """Pass on the live events of this read's EVENTs: all of a read's events for one subscriber
        leave in one write (a burst of 20 events to 1,000 subscribers: 1,000 writes, not 20,000)."""
        if self._live:
            live, self._live = self._live, []
            self._connections.deliver(live)

    async def _check_signatures(self, messages: list[tuple[Opcode, bytes]]) -> Signed:
        """Verify the signatures of a read's EVENTs off the event loop when there are enough of them.

        A signature costs ~30 us of libsecp256k1: a publisher's pipelined EVENTs are checked beside
        the event loop -- in the helper process of :mod:`relaysim.relay.verifier`, a worker thread
        waiting on its pipe -- while the loop serves the other connections; the messages are then
        handled in order as before. A lone EVENT is checked inline (a hop would cost more than it
        saves).
        """
        events = [m for op, m in messages if op is Opcode.TEXT and m.startswith(b'["EVENT"')]
        if len(events) < SIGNATURE_BATCH:
            return frozenset()
        return await trio.to_thread.run_sync(shared_verifier().check, events)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the websocket (close frame with ``code`` and ``reason``), drop it after a grace."""
        self._direct = False
        if self.proto.state is State.OPEN:
            self.proto.fail(code, reason)
            self.outbox.wake()  # the writer sends the close frame
        self.close(code, reason)

    async def _wait_backlog(self) -> None:
        with trio.move_on_after(self.settings.send_timeout):
            while self.backlog_bytes >= self.settings.backlog_bytes:
                self._backlog_changed = trio.Event()
                await self._backlog_changed.wait()
            return
        waited = self.settings.send_timeout
        self.kill_slow(f"client is not reading: its REQs' stored events waited {waited:g} s for room")

    def _on_message(self, opcode: Opcode, data: bytes, signed: Signed = frozenset()) -> None:
        if self.proto.state is not State.OPEN:
            return
        if opcode is Opcode.BINARY:
            self.core.totals.notices_sent += 1
            self.send([encode_notice(BINARY_NOTICE)])
            return
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            # RFC 6455 8.1: a text frame that is not UTF-8 fails the connection with 1007.
            self._fail(1007, f"invalid UTF-8 at position {exc.start}")
            return
        session = self.session
        assert session is not None
        subs_before = session.subs_opened + session.subs_closed
        reply = self.core.receive(session, data, signed)
        if reply.messages:
            self.send(reply.messages)
        if reply.query is not None:
            self._start_query(reply.query)
        if reply.deliveries:
            self._live += reply.deliveries  # delivered at the end of this read (_deliver_live)
        if session.subs_opened + session.subs_closed != subs_before:
            # What Connections.change's waiters watch (open subscriptions; an EOSE says so itself):
            # a published EVENT changes neither, and a new trio.Event per EVENT is not free.
            self._connections.changed()

    # -- REQ -----------------------------------------------------------------------------------

    def _start_query(self, query: Query) -> None:
        """Send the first batch now if there is room (the common case: all of it and EOSE, no
        task switch), and leave the rest to the pump."""
        pending = _PendingQuery(query)
        if self.outbox.has_room() and self._queue_batch(pending):
            return
        self._queries.append(pending)
        self.backlog_bytes += pending.cost
        self._pump_wakeup.set()
        if not self._pump_started:
            assert self._nursery is not None
            self._pump_started = True
            self._nursery.start_soon(self._pump)

    def _queue_batch(self, pending: _PendingQuery) -> bool:
        """Encode and queue the next batch of ``pending`` (the outbox has room); True when done."""
        settings = self.settings
        query = pending.query
        payloads, pending.start = query.batch(pending.start, settings.batch_events, settings.batch_bytes)
        events = len(payloads)
        done = pending.start >= len(query.events)
        if done:
            eose = self.core.finish_query(query.sub)
            if eose is not None:
                payloads.append(eose)
                self._connections.changed()
        self.outbox.put_nowait(Outgoing(payloads, query.sub, events=events))
        return done

    async def _pump(self) -> None:
        """Round robin over the pending queries, one batch each time the outbox has room."""
        queries = self._queries
        while True:
            while not queries:
                self._pump_wakeup = trio.Event()
                await self._pump_wakeup.wait()
            with trio.move_on_after(self.settings.send_timeout):
                await self.outbox.wait_room()
            if self.outbox.closed:
                return
            if not self.outbox.has_room():
                self.kill_slow(
                    f"client is not reading: no room for stored events in {self.settings.send_timeout:g} s"
                )
                return
            if not queries:
                continue  # the connection was dropped meanwhile
            pending = queries.popleft()
            # CLOSE or a replacing REQ arrived mid-query: no more events, no EOSE.
            if not pending.query.sub.active or self._queue_batch(pending):
                self.backlog_bytes -= pending.cost
                self._backlog_changed.set()
            else:
                queries.append(pending)
            # Let the reader run between batches even when the outbox has room, so a CLOSE that
            # has arrived meanwhile is seen before the next batch.
            await trio.lowlevel.checkpoint()


class _PendingQuery:
    """A REQ's stored events and how far they are queued; ``cost`` is charged to the backlog."""

    __slots__ = ("cost", "query", "start")

    def __init__(self, query: Query) -> None:
        self.query = query
        self.start = 0
        self.cost = QUERY_OVERHEAD + REFERENCE_BYTES * len(query.events)
