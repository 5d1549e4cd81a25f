"""A relay given by URL (``--relay-url``), driven through its HTTP endpoints.

The in-process :class:`relaysim.relay.SyncRelay` and this class answer the same questions the idle
protocol and the sampler ask -- ``stats()``, ``close_subscriptions(conn_id)``, ``wait_idle(settle)`` and
``traffic`` -- and both offer ``reset()``, so a run against a relay on another machine measures exactly
what a local run does.
``/control/...`` endpoints answer loopback peers only, so closing and traffic work for a relay on this
machine; from elsewhere the relay refuses them (403) and the run says so.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from relaysim.errors import EnvironmentProblem
from relaysim.relay import ResetReport

__all__ = ["RelayHttp", "http_base"]


def http_base(relay_url: str) -> str:
    """``ws://host:port/`` (or http) -> ``http://host:port`` (wss -> https)."""
    parts = urlsplit(relay_url)
    scheme = {"ws": "http", "wss": "https", "http": "http", "https": "https"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise EnvironmentProblem(f"--relay-url {relay_url!r} is not a ws://, wss://, http:// or https:// URL")
    return urlunsplit((scheme, parts.netloc, "", "", "")).rstrip("/")


class _Traffic:
    def __init__(self, relay: RelayHttp) -> None:
        self._relay = relay

    def pause(self) -> Any:
        return self._relay._post("/control/traffic/pause")

    def resume(self, rates: str | None = None) -> Any:
        return self._relay._post("/control/traffic/resume", {"rates": rates} if rates else None)

    def burst(self, kind: str | None, n: int = 1) -> Any:
        return self._relay._post("/control/traffic/burst", {"kind": kind or "notes", "n": n})


class RelayHttp:
    """HTTP handle on a running relaysim relay."""

    def __init__(self, relay_url: str, timeout: float = 10.0) -> None:
        self.http_url = http_base(relay_url)
        self.url = self.http_url.replace("http", "ws", 1) + "/"
        self.timeout = timeout
        self.traffic = _Traffic(self)
        self.stats()  # fail now, with one line, if nothing answers

    def _open(self, request: urllib.request.Request, timeout: float) -> Any:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace").strip().splitlines()
            first = detail[0] if detail else ""
            raise EnvironmentProblem(
                f"relay {self.http_url} answered {exc.code} to {request.full_url}: {first}"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise EnvironmentProblem(f"relay {self.http_url} did not answer ({exc})") from exc
        return json.loads(body) if body.strip().startswith((b"{", b"[")) else body.decode()

    def _get(self, path: str, params: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        url = self.http_url + path + (f"?{urlencode(params)}" if params else "")
        return self._open(urllib.request.Request(url), timeout or self.timeout)

    def _post(self, path: str, params: dict[str, Any] | None = None) -> Any:
        url = self.http_url + path + (f"?{urlencode(params)}" if params else "")
        return self._open(urllib.request.Request(url, data=b"", method="POST"), self.timeout)

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._get("/stats")
        return stats

    def close_subscriptions(self, conn_id: int | str) -> Any:
        return self._post("/control/close-subscriptions", {"conn": conn_id})

    def reset(self) -> ResetReport:
        """``POST /control/reset``: back to the dataset (see :meth:`relaysim.relay.Relay.reset`)."""
        return ResetReport.from_dict(self._post("/control/reset"))

    def wait_idle(self, settle: float = 5.0, timeout: float | None = 120.0) -> Any:
        """Long-poll ``/idle``; ``TimeoutError`` when the relay answers 408 (not idle in time)."""
        timeout = 120.0 if timeout is None else timeout
        url = self.http_url + "/idle?" + urlencode({"settle": settle, "timeout": timeout})
        try:
            with urllib.request.urlopen(url, timeout=timeout + 5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 408:
                raise TimeoutError(f"relay not idle after {timeout:g} s") from exc
            raise EnvironmentProblem(f"relay {self.http_url} answered {exc.code} to /idle") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise EnvironmentProblem(f"relay {self.http_url} did not answer ({exc})") from exc

    def close(self) -> None:
        """Nothing to release: the relay belongs to whoever started it."""
