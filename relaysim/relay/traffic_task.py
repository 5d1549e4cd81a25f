"""``relay.traffic``: the relay's live-traffic task and the one handle that steers it.

Theory of operation: a named dataset's relay owns one :class:`RelayTraffic`. It runs
:func:`~relaysim.traffic.run_traffic` in the relay's nursery, under its own cancel scope, with a
:class:`~relaysim.traffic.TrafficGenerator` signing as the dataset's cast. The cast takes seconds
to build, so it is built in a worker thread, once, and only when traffic is first wanted: at
start when rates were given, otherwise on the first :meth:`~RelayTraffic.burst` or
:meth:`~RelayTraffic.resume` -- a relay nobody sends traffic through spends no CPU on it.

:meth:`RelayTraffic.restart` (the traffic part of ``POST /control/reset``) cancels the running
loop and starts a new one with a new generator from the same seed and the initial paused state;
the cast is kept, so a restart costs milliseconds. The handle stays the same object, so code that
holds ``relay.traffic`` keeps steering the traffic after a reset.

Every method runs on the relay's trio thread (``SyncRelay`` crosses over for its callers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import trio

from relaysim.dataset import DatasetSpec, cast_for
from relaysim.nostr.event import Event
from relaysim.traffic import (
    Rates,
    TrafficCast,
    TrafficControl,
    TrafficGenerator,
    TrafficStatistics,
    run_traffic,
)

__all__ = ["RelayTraffic"]

log = logging.getLogger("relaysim.relay")


class RelayTraffic:
    """Pause, resume and burst a relay's live traffic; read what it has published since (re)start.

    ``rates`` None means no scheduled traffic was asked for (bursts and resume still work);
    ``publish`` is the relay's own path for a new event.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        *,
        rates: Rates | None,
        seed: int | str,
        paused: bool,
        relay_url: str | None,
        publish: Callable[[Event], Awaitable[object]],
    ) -> None:
        self.seed = seed
        self.rates = rates
        self.initially_paused = paused
        self._spec = spec
        self._relay_url = relay_url
        self._publish = publish
        self._cast: TrafficCast | None = None
        self._cast_lock = trio.Lock()
        #: Set once the cast is built and events can flow (it stays set across restarts).
        self.ready = trio.Event()
        #: Why the traffic stopped, if it failed; the relay keeps serving and /stats says so.
        self.error: str | None = None
        self._scope = trio.CancelScope()
        self._control, self._wanted = self._fresh_control()

    def _fresh_control(self) -> tuple[TrafficControl, trio.Event]:
        wanted = trio.Event()
        if self.rates is not None:
            wanted.set()
        return TrafficControl(paused=self.initially_paused), wanted

    # -- the control API (what /control/traffic/... and relay.traffic offer) ------------------

    @property
    def paused(self) -> bool:
        return self._control.paused

    def pause(self) -> None:
        """Stop scheduled traffic at the next tick (bursts still go out)."""
        self._control.pause()

    def resume(self) -> None:
        """Restart scheduled traffic from now on (builds the generator if it is not there yet)."""
        self._control.resume()
        self._wanted.set()

    def burst(self, kind_name: str, n: int) -> None:
        """Publish ``n`` extra events of ``kind_name`` at the next tick, paused or not."""
        self._control.burst(kind_name, n)
        self._wanted.set()

    def statistics(self) -> TrafficStatistics:
        """What has been published since the relay started or was last reset."""
        return self._control.statistics()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, nursery: trio.Nursery) -> None:
        """Run the traffic loop in ``nursery`` (the relay's) until :meth:`restart` or the end."""
        nursery.start_soon(self._run, self._scope, self._control, self._wanted)

    def restart(self, nursery: trio.Nursery) -> None:
        """Back to the seed and the initial paused state; nothing queued survives."""
        self._scope.cancel()
        self._scope = trio.CancelScope()
        self._control, self._wanted = self._fresh_control()
        self.error = None
        self.start(nursery)

    async def _ensure_cast(self) -> TrafficCast:
        async with self._cast_lock:  # a restart during the build waits for it, never builds twice
            if self._cast is None:
                self._cast = await trio.to_thread.run_sync(cast_for, self._spec, self._relay_url)
            return self._cast

    async def _run(self, scope: trio.CancelScope, control: TrafficControl, wanted: trio.Event) -> None:
        with scope:
            await wanted.wait()
            try:
                cast = await self._ensure_cast()
                generator = TrafficGenerator(cast, self.seed, self.rates or Rates(), time.time())
                self.ready.set()
                await run_traffic(self._publish, generator, control)
            except Exception as exc:
                # Traffic is an add-on: its failure is reported in /stats, the relay keeps serving.
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("traffic generator failed")
