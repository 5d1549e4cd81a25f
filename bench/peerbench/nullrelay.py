"""A do-nothing websocket endpoint that answers the bench's client at once with canned frames.

It is how the load generator's own ceiling gets into the table: every row runs against it
exactly as against a relay, and whatever rate comes out is the most the generator (and this
endpoint, which is cheaper than any relay) can show. It stores nothing and checks nothing:

* ``EVENT`` -> ``OK`` with the event's id, and the event to every connection holding an open REQ;
* ``REQ`` -> as many copies of one canned stored event as the filter asks for (``len(ids)``, or
  ``limit`` up to 5,000, default 500), then ``EOSE``; the REQ stays open until ``CLOSE``;
* ``CLOSE`` -> forgets the subscription.

It serves only the bench's own client: it reads client frames as sent with the all-zero masking
key (``wsraw.client_frame``) and does not unmask. Run it with :func:`serve` in a process of its own.

This is the fallback: where a C compiler is present the bench runs ``fastload.c``'s ``serve``
mode instead, which answers byte for byte the same (tests/test_bench_peers.py compares them) at
C speed, so the ceiling column measures the generator rather than this loop.
"""

from __future__ import annotations

import base64
import hashlib
import os
import selectors
import socket
import struct
import time
from collections.abc import Callable

import orjson

__all__ = ["serve", "server_frame"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_ANSWER = 5_000


def server_frame(payload: bytes) -> bytes:
    """One unmasked text frame, as a server sends it."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 65_536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class _Conn:
    __slots__ = ("fd", "inbuf", "open", "out", "sock", "subs")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.inbuf = bytearray()
        self.out = bytearray()
        self.open = False
        self.subs: list[str] = []


class _Endpoint:
    def __init__(self, listener: socket.socket, canned_event: bytes) -> None:
        self.sel = selectors.DefaultSelector()
        self.listener = listener
        self.canned_event = canned_event
        self.conns: dict[int, _Conn] = {}
        self._broadcast: list[bytes] = []
        self._answers: dict[tuple[str, int], bytes] = {}  # a REQ's answer, built once per (sub, count)
        self.sel.register(listener, selectors.EVENT_READ, None)

    def run(self, stop_after: float) -> None:
        deadline = time.monotonic() + stop_after
        while time.monotonic() < deadline:
            for key, mask in self.sel.select(timeout=0.5):
                if key.data is None:
                    self._accept()
                    continue
                conn: _Conn = key.data
                if mask & selectors.EVENT_WRITE:
                    self._flush(conn)
                if mask & selectors.EVENT_READ:
                    self._read(conn)

    def _accept(self) -> None:
        sock, _ = self.listener.accept()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        conn = _Conn(sock)
        self.conns[sock.fileno()] = conn
        self.sel.register(sock, selectors.EVENT_READ, conn)

    def _drop(self, conn: _Conn) -> None:
        self.conns.pop(conn.sock.fileno(), None)
        self.sel.unregister(conn.sock)
        conn.sock.close()

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(262_144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        conn.inbuf += data
        if not conn.open:
            self._handshake(conn)
        if conn.open:
            self._frames(conn)

    def _handshake(self, conn: _Conn) -> None:
        head_end = conn.inbuf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        key = b""
        for line in bytes(conn.inbuf[:head_end]).split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        del conn.inbuf[: head_end + 4]
        conn.open = True
        self._send(
            conn,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n",
        )

    def _frames(self, conn: _Conn) -> None:
        buf = conn.inbuf
        pos, end = 0, len(buf)
        while end - pos >= 6:
            opcode = buf[pos] & 0x0F
            n = buf[pos + 1] & 0x7F
            head = 6
            if n == 126:
                if end - pos < 8:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 8
            elif n == 127:
                if end - pos < 14:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 14
            stop = pos + head + n
            if stop > end:
                break
            if opcode == 1:
                self._message(conn, bytes(buf[pos + head : stop]))
            elif opcode == 8:
                self._send(conn, b"\x88\x00")
            pos = stop
        del buf[:pos]
        if self._broadcast:
            # Every event of this read goes to each subscriber in one write, as a relay batches;
            # the bytes are built once per subscription id.
            bodies, self._broadcast = self._broadcast, []
            built: dict[str, bytes] = {}
            write = os.write
            for other in list(self.conns.values()):
                if other.subs:
                    sub = other.subs[0]
                    data = built.get(sub)
                    if data is None:
                        head = b'["EVENT","' + sub.encode() + b'",'
                        data = built[sub] = b"".join(server_frame(head + body + b"]") for body in bodies)
                    if other.out:
                        other.out += data
                        continue
                    try:
                        sent = write(other.fd, data)  # the common case: one plain write, no buffering
                    except (BlockingIOError, InterruptedError):
                        sent = 0
                    except OSError:
                        continue
                    if sent < len(data):
                        self._send(other, data[sent:])

    def _message(self, conn: _Conn, payload: bytes) -> None:
        verb = payload[2:4]
        if verb == b"EV":
            at = payload.find(b'"id":"') + 6
            event_id = payload[at : at + 64]
            self._send(conn, server_frame(b'["OK","' + event_id + b'",true,""]'))
            self._broadcast.append(payload[payload.index(b"{") : payload.rindex(b"}") + 1])
        elif verb == b"RE":
            message = orjson.loads(payload)
            sub_id, flt = message[1], (message[2] if len(message) > 2 else {})
            count = len(flt["ids"]) if "ids" in flt else min(int(flt.get("limit", 500)), MAX_ANSWER)
            if sub_id not in conn.subs:
                conn.subs.append(sub_id)
            answer = self._answers.get((sub_id, count))
            if answer is None:
                sub = sub_id.encode()
                frame = server_frame(b'["EVENT","' + sub + b'",' + self.canned_event + b"]")
                answer = frame * count + server_frame(b'["EOSE","' + sub + b'"]')
                if len(self._answers) < 1000:
                    self._answers[(sub_id, count)] = answer
            self._send(conn, answer)
        elif verb == b"CL":
            sub_id = orjson.loads(payload)[1]
            if sub_id in conn.subs:
                conn.subs.remove(sub_id)

    def _send(self, conn: _Conn, data: bytes) -> None:
        if conn.out:
            conn.out += data
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return
        if sent < len(data):
            conn.out += data[sent:]
            self.sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def _flush(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            conn.out.clear()
            sent = 0
        del conn.out[:sent]
        if not conn.out:
            self.sel.modify(conn.sock, selectors.EVENT_READ, conn)


def serve(port: int, canned_event: bytes, *, stop_after: float = 900.0, ready: Callable[[int], None]) -> None:
    """Listen on 127.0.0.1:``port`` (0: any), call ``ready(port)``, serve until ``stop_after`` s pass."""
    listener = socket.create_server(("127.0.0.1", port), backlog=2048)
    listener.setblocking(False)
    ready(listener.getsockname()[1])
    _Endpoint(listener, canned_event).run(stop_after)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    serve(
        int(sys.argv[1]),
        Path(sys.argv[2]).read_bytes().strip(),
        ready=lambda port: print(f"ready {port}", flush=True),
    )
