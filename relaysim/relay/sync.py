"""``SyncRelay``: the trio relay in a background thread, for synchronous (Selenium) test code.

Theory of operation: ``__enter__`` starts a thread running ``trio.run``, which enters
:func:`~relaysim.relay.server.open_relay` and then waits for a stop event; every method crosses
into that thread with ``trio.from_thread`` (``run_sync`` for plain calls, ``run`` for awaitables),
so the relay's state is only ever touched by its own trio thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import trio

from relaysim.nostr.event import Event
from relaysim.relay.config import RelayConfig
from relaysim.relay.server import Relay, ResetReport, open_relay
from relaysim.relay.traffic_task import RelayTraffic
from relaysim.traffic import TrafficStatistics

__all__ = ["SyncRelay", "SyncTrafficControl"]

T = TypeVar("T")


class SyncTrafficControl:
    """Thread-safe proxy for the relay's :class:`~relaysim.traffic.TrafficControl`."""

    def __init__(self, owner: SyncRelay, control: RelayTraffic) -> None:
        self._owner = owner
        self._control = control

    def pause(self) -> None:
        self._owner._call(self._control.pause)

    def resume(self) -> None:
        self._owner._call(self._control.resume)

    def burst(self, kind_name: str, n: int) -> None:
        self._owner._call(partial(self._control.burst, kind_name, n))

    def statistics(self) -> TrafficStatistics:
        return self._owner._call(self._control.statistics)

    @property
    def paused(self) -> bool:
        return bool(self._owner._call(lambda: self._control.paused))


class SyncRelay:
    """``with SyncRelay(RelayConfig(dataset="seed1")) as relay:`` -- the :class:`Relay` methods, blocking."""

    def __init__(self, config: RelayConfig, *, start_timeout: float = 120.0) -> None:
        self.config = config
        self._relay_handle: Relay | None = None
        self._start_timeout = start_timeout
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> SyncRelay:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=trio.run, args=(self._main,), name="relaysim-relay", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise TimeoutError(f"relay did not start within {self._start_timeout} s")
        if self._error is not None:
            self._thread.join()
            raise self._error

    def close(self) -> None:
        """Close the websockets (1001) and stop the thread. Idempotent."""
        if self._thread is None:
            return
        if self._token is not None and self._stop is not None and self._thread.is_alive():
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join()
        self._thread = None

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        try:
            async with open_relay(self.config) as relay:
                self._relay_handle = relay
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
                return
            raise

    def _call(self, fn: Callable[[], T]) -> T:
        return trio.from_thread.run_sync(fn, trio_token=self._token)

    def _await(self, fn: Callable[[], Awaitable[T]]) -> T:
        return trio.from_thread.run(fn, trio_token=self._token)

    # -- the Relay API -------------------------------------------------------------------------

    @property
    def _relay(self) -> Relay:
        if self._relay_handle is None:
            raise RuntimeError("the relay is not running: use `with SyncRelay(config) as relay:`")
        return self._relay_handle

    @property
    def relay(self) -> Relay:
        """The underlying :class:`Relay` (touch it only through this wrapper's methods)."""
        return self._relay

    @property
    def url(self) -> str:
        return self._relay.url

    @property
    def http_url(self) -> str:
        return self._relay.http_url

    @property
    def port(self) -> int:
        return self._relay.port

    @property
    def traffic(self) -> SyncTrafficControl | None:
        control = self._relay.traffic
        return SyncTrafficControl(self, control) if control is not None else None

    def stats(self) -> dict[str, Any]:
        return self._call(self._relay.stats)

    def publish(self, event: Event, *, verify: bool = False) -> tuple[bool, str]:
        return self._await(partial(self._relay.publish, event, verify=verify))

    def wait_idle(
        self, settle: float = 5.0, conn: int | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """Block until idle (see :meth:`Relay.wait_idle`); ``TimeoutError`` after ``timeout`` s."""

        async def wait() -> dict[str, Any]:
            if timeout is None:
                return await self._relay.wait_idle(settle=settle, conn=conn)
            with trio.move_on_after(timeout):
                return await self._relay.wait_idle(settle=settle, conn=conn)
            report = self._relay.idle_report(settle=settle, conn=conn)
            raise TimeoutError(f"relay not idle after {timeout} s: {report}")

        return self._await(wait)

    def close_subscriptions(self, conn: int | str = "all", *, reason: str | None = None) -> int:
        return self._call(partial(self._relay.close_subscriptions, conn, reason=reason))

    def reset(self) -> ResetReport:
        """Back to the dataset (see :meth:`Relay.reset`)."""
        return self._await(self._relay.reset)

    def metrics(self) -> bytes:
        return self._call(self._relay.metrics)
