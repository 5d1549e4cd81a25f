"""Keep the harness's browser on loopback, and write down every other host the page tried to reach.

A client under test should talk to the test relay only, but real ones also try their defaults: public
relays, an NDK outbox list, a CDN, an avatar service. Two things make that harmless and visible:

* Chromium's ``--host-resolver-rules`` maps every name to NOTFOUND except loopback
  (:data:`RESOLVER_RULES`), so nothing is resolved, let alone reached, outside the machine;
* ``--proxy-server`` points at a :class:`HostRecorder` on 127.0.0.1, which Chromium asks for every
  request that is not to a loopback address (plain HTTP, ``CONNECT`` for HTTPS and secure websockets,
  websockets; loopback bypasses any proxy). The recorder reads the request's first line, notes the
  host and port, answers ``403`` and closes: it never connects anywhere.

:meth:`HostRecorder.hosts` is what the report lists as the hosts the page tried to reach. Chromium
itself also asks for a few of its own services whatever the switches (sign-in, component updates, the
search engine's start page, measured on Debian's Chromium): those hosts (:data:`BROWSER_HOSTS`) are
marked ``browser_own``, so the page is not blamed for them. The recorder is a small threaded TCP
server; every connection is read for at most :data:`READ_TIMEOUT` seconds and :data:`MAX_HEAD` bytes,
and at most :data:`MAX_HOSTS` distinct hosts are kept.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections import Counter
from dataclasses import dataclass

__all__ = ["BROWSER_HOSTS", "MAX_HOSTS", "RESOLVER_RULES", "HostRecorder", "HostTried", "parse_proxy_request"]

RESOLVER_RULES = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"
"""Chromium's ``--host-resolver-rules``: no name resolves but loopback's."""

BROWSER_HOSTS = frozenset({
    "accounts.google.com",
    "clients2.google.com",
    "clients2.googleusercontent.com",
    "update.googleapis.com",
    "safebrowsing.googleapis.com",
    "optimizationguide-pa.googleapis.com",
    "content-autofill.googleapis.com",
    "redirector.gvt1.com",
    "edgedl.me.gvt1.com",
    "start.duckduckgo.com",
})
"""Hosts Chromium asks for on its own account (not the page's): marked ``browser_own``."""

MAX_HEAD = 8192
MAX_HOSTS = 500
READ_TIMEOUT = 5.0
_REFUSAL = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class HostTried:
    """A host the page tried to reach (``host:port``), how many requests went there, and whether it is
    one of the browser's own services (:data:`BROWSER_HOSTS`) rather than the page's."""

    host: str
    requests: int
    browser_own: bool = False


def parse_proxy_request(head: bytes) -> str | None:
    """``host:port`` from the first line a browser sends its proxy (``CONNECT h:443 HTTP/1.1`` or
    ``GET http://h/path HTTP/1.1``), lower-cased; None when the line is not one of those."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    parts = line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    method, target = parts[0].upper(), parts[1]
    if method == "CONNECT":
        host = target
    else:
        scheme, sep, rest = target.partition("://")
        if not sep or scheme.lower() not in ("http", "https", "ws", "wss"):
            return None
        netloc = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        default = "443" if scheme.lower() in ("https", "wss") else "80"
        host = netloc if ":" in netloc.rsplit("]", 1)[-1] else f"{netloc}:{default}"
    host = host.lower()
    return host if 0 < len(host) <= 300 else None


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(READ_TIMEOUT)
        head = b""
        try:
            while b"\r\n" not in head and len(head) < MAX_HEAD:
                chunk = conn.recv(MAX_HEAD - len(head))
                if not chunk:
                    break
                head += chunk
            host = parse_proxy_request(head)
            if host is not None:
                self.server.recorder._note(host)
            conn.sendall(_REFUSAL)
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, recorder: HostRecorder) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.recorder = recorder


class HostRecorder:
    """The refusing proxy of the module docstring: ``start()``, give Chromium :meth:`chromium_flags`,
    read :meth:`hosts`, ``close()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> HostRecorder:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="relaysim-host-recorder", daemon=True
        )
        self._thread.start()
        return self

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("the host recorder is not started")
        port = self._server.server_address[1]
        return f"127.0.0.1:{port}"

    def chromium_flags(self) -> tuple[str, ...]:
        """The switches that keep Chromium on loopback and send everything else here."""
        return (f"--host-resolver-rules={RESOLVER_RULES}", f"--proxy-server=http://{self.address}")

    def _note(self, host: str) -> None:
        with self._lock:
            if host in self._seen or len(self._seen) < MAX_HOSTS:
                self._seen[host] += 1

    def hosts(self) -> tuple[HostTried, ...]:
        """Every host a request was refused for so far, most requests first."""
        with self._lock:
            ranked = sorted(self._seen.items(), key=lambda hn: (-hn[1], hn[0]))
        return tuple(HostTried(h, n, h.rsplit(":", 1)[0] in BROWSER_HOSTS) for h, n in ranked)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
