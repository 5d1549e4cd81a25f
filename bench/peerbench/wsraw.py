"""The load generator's websocket layer: raw sockets, pre-built frames, a frame scanner that copies little.

Why not a websocket library: the generator must be faster than every relay it measures, and a
library's per-message work (unmasking, UTF-8 checks, a Python object per message, an event loop
per read) made an earlier Python client measure itself rather than the relays. Here:

* client frames are built once, before the clock starts, with an all-zero masking key. RFC 6455
  section 5.3 wants an unpredictable key from *browsers* (against cache poisoning by proxies that
  do not speak websocket); a server must unmask whatever key it gets, and a zero key makes masking
  the identity, so a frame is header + payload and costs the generator nothing to send;
* server frames (never masked) are walked header to header in :meth:`FrameScanner.feed`: a
  message's kind is read from its first bytes (``["EV``, ``["EO``, ``["OK`` ...) without parsing
  its JSON, and its payload is kept as bytes so the answers can be checked *after* the clock
  stops (``parse_payloads``);
* a socket that has ``TCP_QUICKACK`` re-armed after every read acknowledges at once, so a relay
  that leaves Nagle on (no ``TCP_NODELAY``) is not held 40 ms by our delayed ACKs -- Linux clears
  quick-ack mode by itself, hence "re-armed".
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from collections.abc import Iterable

import orjson

__all__ = [
    "EOSE",
    "EVENT",
    "OK",
    "FrameScanner",
    "client_frame",
    "connect",
    "kind_of",
    "parse_payloads",
    "quickack",
]

EVENT, EOSE, OK, CLOSED, NOTICE, OTHER = "EVENT", "EOSE", "OK", "CLOSED", "NOTICE", "OTHER"
_KINDS = {b"EV": EVENT, b"EO": EOSE, b"OK": OK, b"CL": CLOSED, b"NO": NOTICE}
_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)
_ZERO_MASK = b"\x00\x00\x00\x00"


def client_frame(payload: bytes) -> bytes:
    """One masked text frame (FIN set) carrying ``payload``, with the all-zero masking key."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65_536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return head + _ZERO_MASK + payload


def quickack(sock: socket.socket) -> None:
    """Re-arm TCP_QUICKACK (Linux turns it off again after a while on its own)."""
    sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)


def connect(port: int, host: str = "127.0.0.1", *, timeout: float = 10.0) -> tuple[socket.socket, bytes]:
    """Open a websocket to ``ws://host:port/``; returns the blocking socket and bytes read past the 101."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data:
        if time.monotonic() > deadline:
            raise ConnectionError(f"no websocket handshake answer from port {port}")
        chunk = sock.recv(65_536)
        if not chunk:
            raise ConnectionError(f"port {port} closed the connection during the handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"port {port} refused the websocket: {head.splitlines()[0]!r}")
    return sock, rest


def kind_of(payload: bytes) -> str:
    """The NIP-01 verb of a relay message, from its first bytes (``["EVENT"`` -> EVENT)."""
    start = payload.find(b'"') + 1
    return _KINDS.get(payload[start : start + 2], OTHER)


class FrameScanner:
    """Walks server frames as bytes arrive; counts messages by verb and keeps their payloads.

    ``feed`` returns how many EVENT, EOSE and OK/CLOSED/NOTICE messages the new bytes completed.
    Control frames (ping, pong, close) are skipped; ``closed`` turns True on a close frame.
    """

    __slots__ = ("_buf", "_pos", "closed", "keep", "payloads")

    def __init__(self, *, keep: bool = True) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.keep = keep
        self.payloads: list[bytes] = []
        self.closed = False

    def feed(self, data: bytes) -> tuple[int, int, int]:
        buf = self._buf
        buf += data
        pos, end = self._pos, len(buf)
        events = eoses = others = 0
        keep, payloads = self.keep, self.payloads
        while end - pos >= 2:
            opcode = buf[pos] & 0x0F
            n = buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if end - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif n == 127:
                if end - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            stop = pos + head + n
            if stop > end:
                break
            if opcode == 1:
                start = pos + head
                # The verb's second and third letters sit right after '["' in every relay seen.
                tag = buf[start + 2 : start + 4]
                if tag == b"EV":
                    events += 1
                elif tag == b"EO":
                    eoses += 1
                else:
                    others += 1
                if keep:
                    payloads.append(bytes(buf[start:stop]))
            elif opcode == 8:
                self.closed = True
            pos = stop
        if pos > 1 << 20:
            del buf[:pos]
            pos = 0
        self._pos = pos
        return events, eoses, others


def parse_payloads(payloads: Iterable[bytes]) -> list[list[object]]:
    """The relay messages as JSON lists (after the clock: this is where answers get checked)."""
    return [orjson.loads(p) for p in payloads]
