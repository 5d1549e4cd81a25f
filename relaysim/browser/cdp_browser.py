"""A connection to Chromium's **browser-level** DevTools websocket, for what the page target cannot reach.

Why a second CDP channel: :meth:`BrowserSession.cdp` goes through chromedriver's ``goog/cdp/execute``,
which talks to the page target only. A dedicated Worker is a target of its own (its isolate, its
``WebAssembly.Memory``), reachable only from the browser endpoint. chromedriver starts Chromium with a
DevTools port and says where in the session's capabilities (``goog:chromeOptions.debuggerAddress``);
``http://ADDRESS/json/version`` gives the browser's ``webSocketDebuggerUrl``. Several DevTools clients
may attach to one target at once, so this connection does not disturb chromedriver's.

Theory of operation: one synchronous websocket (``websockets.sync``), flat sessions
(``Target.attachToTarget`` with ``flatten``: every message to a target carries its ``sessionId``).
:meth:`BrowserCdp.call` sends one command and reads until its answer arrives; events read meanwhile go to
the ``on_event`` callback given to that call (a heap snapshot's chunks) or are dropped. Every wait has a
timeout, so a hung browser costs at most ``timeout`` seconds, never the run.

Only loopback addresses are accepted: the harness reads memory figures from its own browser, not from a
machine somewhere else (a Selenium Grid node's DevTools port is not reachable, and that is reported).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from websockets.exceptions import WebSocketException

from relaysim.browser.drivers import BrowserSession, CdpUnavailable

__all__ = ["BrowserCdp", "CdpError", "debugger_address", "open_browser_cdp"]

EventHandler = Callable[[str, dict[str, Any], str | None], None]
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


class CdpError(RuntimeError):
    """A CDP command answered with an error (``method`` and the browser's ``message``)."""

    def __init__(self, method: str, message: str) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.message = message


def debugger_address(session: BrowserSession) -> str:
    """``host:port`` of the browser's DevTools endpoint, or :class:`CdpUnavailable` saying why not."""
    if not session.has_cdp:
        raise CdpUnavailable(f"no CDP in a {session.kind} session")
    options = session.driver.capabilities.get("goog:chromeOptions") or {}
    address = options.get("debuggerAddress") if isinstance(options, dict) else None
    if not isinstance(address, str) or ":" not in address:
        raise CdpUnavailable("the session's capabilities give no goog:chromeOptions.debuggerAddress")
    host = address.rsplit(":", 1)[0]
    if host not in _LOOPBACK:
        raise CdpUnavailable(f"the browser's DevTools endpoint {address} is not on this machine")
    return address


class BrowserCdp:
    """One browser-level DevTools connection; close it (or use ``with``)."""

    def __init__(self, ws: Any, url: str) -> None:
        self._ws = ws
        self.url = url
        self._ids = itertools.count(1)
        self.commands = 0
        self.sessions: dict[str, str] = {}  # target id -> flat session id, shared by every probe

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session_id: str | None = None,
        timeout: float = 30.0,
        on_event: EventHandler | None = None,
    ) -> dict[str, Any]:
        """Send ``method`` (to the target of ``session_id``, or the browser) and return its result."""
        msg_id = next(self._ids)
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        deadline = time.monotonic() + timeout
        try:
            self._ws.send(json.dumps(message))
        except WebSocketException as exc:
            raise CdpError(method, f"the DevTools connection is closed ({exc})") from exc
        self.commands += 1
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{method}: no answer from the browser within {timeout:g} s")
            try:
                got = json.loads(self._ws.recv(timeout=remaining))
            except WebSocketException as exc:
                raise CdpError(method, f"the DevTools connection is closed ({exc})") from exc
            if got.get("id") == msg_id:
                if "error" in got:
                    raise CdpError(method, str(got["error"].get("message", got["error"])))
                result: dict[str, Any] = got.get("result", {})
                return result
            if on_event is not None and "method" in got:
                on_event(got["method"], got.get("params", {}), got.get("sessionId"))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ws.close()

    def __enter__(self) -> BrowserCdp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_browser_cdp(session: BrowserSession, timeout: float = 10.0) -> BrowserCdp:
    """Connect to the browser endpoint of ``session``'s Chromium; :class:`CdpUnavailable` if it cannot."""
    from websockets.sync.client import connect

    address = debugger_address(session)
    try:
        with urllib.request.urlopen(f"http://{address}/json/version", timeout=timeout) as answer:
            url = json.load(answer)["webSocketDebuggerUrl"]
        # entered as a context manager (websockets 17.1 warns otherwise); closed by BrowserCdp.close
        ws = connect(url, max_size=None, open_timeout=timeout, close_timeout=2).__enter__()
    except (OSError, KeyError, ValueError) as exc:
        raise CdpUnavailable(f"the browser's DevTools endpoint {address} did not answer: {exc}") from exc
    return BrowserCdp(ws, url)
