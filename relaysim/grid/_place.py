"""Where the shared relay listens, where the browsers reach it, and the relay itself.

Theory of operation. On one machine the relay binds ``127.0.0.1`` on any free port and the
browsers (local, or a Grid on loopback) open ``http://127.0.0.1:PORT/``. When the browsers run on
other machines (Grid nodes), two addresses differ: ``--bind`` is where the relay listens (an
address those machines can reach, or ``0.0.0.0``) and ``--public-url`` is the URL they open
(``http://relay-host.lan:7447/``: the app's page, and with it the websocket on the same origin).
The harness itself steers the relay in-process, so the ``/control`` endpoints stay loopback-only
whatever the bind.

A page on ``http://`` from a host other than loopback is not a *secure context* in Chromium, and
without one the app loses ``crossOriginIsolated`` (SharedArrayBuffer, the precise memory figures).
For such a public URL the browsers are started with
``--unsafely-treat-insecure-origin-as-secure=ORIGIN`` (:func:`browser_args`), Chromium's own switch
for exactly this test setup; an ``https://`` public URL needs nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from relaysim.errors import UsageError
from relaysim.relay.config import check_public_url

__all__ = ["RelayPlace", "browser_args", "open_shared_relay", "page_base"]

WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class RelayPlace:
    """``host``/``port`` the relay binds, ``public_url`` the browsers open (None: the bound address)."""

    host: str = "127.0.0.1"
    port: int = 0
    public_url: str | None = None

    @classmethod
    def parse(cls, bind: str | None, public_url: str | None) -> RelayPlace:
        """``--bind HOST[:PORT]`` (default ``127.0.0.1:0``) and ``--public-url URL``, checked."""
        host, port = "127.0.0.1", 0
        if bind:
            text = bind.strip()
            if text.startswith("["):  # [v6]:port
                inner, _, rest = text[1:].partition("]")
                host, port_text = inner, rest.removeprefix(":")
            elif text.count(":") == 1:
                host, port_text = text.split(":")
            else:
                host, port_text = text, ""
            try:
                port = int(port_text) if port_text else 0
            except ValueError:
                raise UsageError(f"--bind must be HOST[:PORT], got {bind!r}") from None
            if not host or not 0 <= port <= 65535:
                raise UsageError(f"--bind must be HOST[:PORT] with a port 0-65535, got {bind!r}")
        if public_url is not None:
            check_public_url(public_url)
        elif host not in WILDCARDS and not _loopback(host):
            public_url = f"http://{f'[{host}]' if ':' in host else host}/"
        return cls(host, port, public_url)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def page_base(relay: Any) -> str:
    """The origin the browsers open: the relay's public URL, else its own (127.0.0.1 for a wildcard bind)."""
    config = relay.config
    public = config.public_http_url(relay.port)
    if public is not None:
        return str(public)
    if config.host in WILDCARDS:
        return f"http://127.0.0.1:{relay.port}/"
    return str(relay.http_url)


def browser_args(base: str) -> tuple[str, ...]:
    """Chromium switches a page on ``base`` needs (module docstring): none for https or loopback."""
    parts = urlsplit(base)
    if parts.scheme != "http" or _loopback(parts.hostname or ""):
        return ()
    return (f"--unsafely-treat-insecure-origin-as-secure={parts.scheme}://{parts.netloc}",)


@contextlib.contextmanager
def open_shared_relay(config: Any, place: RelayPlace) -> Iterator[Any]:
    """A :class:`~relaysim.relay.SyncRelay` for ``config`` (from :func:`relaysim.scenario._app.relay_config`)
    bound at ``place``."""
    from relaysim.relay import SyncRelay

    placed = dataclasses.replace(config, host=place.host, port=place.port, public_url=place.public_url)
    with SyncRelay(placed) as relay:
        yield relay
