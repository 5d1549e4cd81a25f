"""What a run points at: the app (``--app``) and the relay that feeds it.

:func:`resolve_app` turns ``--app`` (``builtin``, ``builtin?leaks=...``, a URL or a directory) into an
:class:`AppTarget`; :func:`open_relay` starts the relay a run needs (or wraps ``--relay-url``). An app
relaysim knows nothing about is driven with :func:`generic_adapter`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from relaysim.dataset.generate import DEFAULT_RELAY_URL
from relaysim.errors import UsageError
from relaysim.scenario.adapters import BUILTIN, Adapter, load_adapter, parse_adapter
from relaysim.scenario.model import Scenario
from relaysim.scenario.steps import Traffic

GENERIC_READY = "return document.readyState === 'complete'"


def generic_adapter() -> Adapter:
    """The adapter for an app relaysim knows nothing about: wait for the page to load, no actions."""
    return parse_adapter({"name": "generic", "ready": GENERIC_READY, "ready_timeout": 20}, "<generic>")


def adapter_for(target: AppTarget, adapter_path: str | None = None) -> Adapter:
    """The adapter that drives ``target``: ``adapter_path`` when given, the built-in client's own, or
    :func:`generic_adapter` for an app relaysim knows nothing about."""
    if adapter_path:
        return load_adapter(adapter_path)
    if target.kind == "builtin" and target.hooks_off:
        return load_adapter(BUILTIN.with_name("builtin-dom.toml"))
    if target.kind == "builtin":
        return load_adapter("builtin")
    return generic_adapter()


@dataclass(frozen=True)
class AppTarget:
    """Where the app comes from: ``builtin`` (the relay serves the reference client), ``url``, or ``dir``."""

    kind: str
    spec: str
    query: str = ""
    url: str | None = None
    static_dir: Path | None = None

    @property
    def hooks_off(self) -> bool:
        """``builtin?hooks=off``: the reference client with its hooks removed (driven by its DOM)."""
        return "off" in parse_qs(self.query).get("hooks", [])

    def page_url(self, relay_http_url: str | None) -> str:
        if self.kind == "url":
            return self.url or self.spec
        if relay_http_url is None:
            raise UsageError(f"--app {self.spec} needs a relay that serves it (no --relay-url for a DIR app)")
        base = relay_http_url.rstrip("/") + "/"
        return base + (f"?{self.query}" if self.query else "")


def resolve_app(spec: str) -> AppTarget:
    """``builtin`` / ``builtin?leaks=idle`` / ``builtin?hooks=off`` / ``http(s)://...`` / an existing
    directory."""
    if spec == "builtin" or spec.startswith("builtin?"):
        return AppTarget("builtin", spec, query=spec.partition("?")[2])
    if urlsplit(spec).scheme in ("http", "https"):
        return AppTarget("url", spec, url=spec)
    path = Path(spec)
    if path.is_dir():
        return AppTarget("dir", spec, static_dir=path.resolve())
    raise UsageError(f"--app {spec!r} is neither builtin, builtin?QUERY, an http(s) URL nor a directory")


def relay_config(
    target: AppTarget,
    scenario: Scenario,
    *,
    max_events: int | None = None,
    port: int = 0,
    test_headers: bool | None = None,
) -> Any:
    """The :class:`~relaysim.relay.RelayConfig` a run of ``scenario`` against ``target`` needs: its
    dataset, its traffic (paused unless the scenario starts it; a generator whenever a step steers it),
    the app's directory. ``max_events`` caps the live events kept (default: the relay's own cap);
    ``test_headers`` sends COOP/COEP (default: for the built-in client only). The dataset's relay hints
    and kind-10002 lists name the relay's own URL (``hints_follow_url``), so a client that follows
    them stays on the relay being measured."""
    from relaysim.relay import RelayConfig

    rates = scenario.traffic or next(
        (s.rates for s in scenario.walk() if isinstance(s, Traffic) and s.mode == "on" and s.rates), None
    )
    uses_traffic = any(isinstance(s, Traffic) for s in scenario.walk())
    paused = scenario.traffic is None
    if rates is None and uses_traffic:
        rates, paused = "notes=1/s", True  # bursts need a running generator
    config = RelayConfig(
        dataset=scenario.dataset,
        traffic_seed=scenario.seed,
        traffic=rates,
        traffic_paused=paused if rates is not None else False,
        static=target.static_dir,
        faults=scenario.faults or None,
        faults_seed=scenario.seed if scenario.faults_seed is None else scenario.faults_seed,
        port=port,
        test_headers=test_headers,
        hints_follow_url=True,
    )
    if max_events is not None:
        config = dataclasses.replace(config, max_events=max_events)
    return config


DEFAULT_PORT: int = urlsplit(DEFAULT_RELAY_URL).port or 7447
"""The port a run's relay takes when it is free: the one the datasets' relay hints name by default, so
the cached build is reused and an app configured for ``ws://127.0.0.1:7447/`` finds the relay."""


@contextlib.contextmanager
def open_relay(
    target: AppTarget,
    scenario: Scenario,
    relay_url: str | None,
    *,
    max_events: int | None = None,
    test_headers: bool | None = None,
    prefer_port: int | None = DEFAULT_PORT,
) -> Iterator[Any]:
    """The relay for a run: a local :class:`~relaysim.relay.SyncRelay` (:func:`relay_config`) on
    ``prefer_port`` when it is free (else on any free port), or an HTTP handle on ``relay_url``."""
    if relay_url is not None:
        from relaysim.browser.relay_http import RelayHttp

        handle = RelayHttp(relay_url)
        if scenario.faults:  # the [faults] table, on the relay at --relay-url (its loopback control)
            from relaysim.scenario._faults import switch_faults

            seed = scenario.seed if scenario.faults_seed is None else scenario.faults_seed
            switch_faults(handle, scenario.faults, seed)
        yield handle
        return
    from relaysim.relay import SyncRelay

    config = relay_config(target, scenario, max_events=max_events, test_headers=test_headers)
    relay = None
    if prefer_port:
        preferred = SyncRelay(dataclasses.replace(config, port=prefer_port))
        with contextlib.suppress(UsageError):  # taken (another relay, another run): any free port
            preferred.start()
            relay = preferred
    if relay is None:
        relay = SyncRelay(config)
        relay.start()
    with contextlib.closing(relay):
        yield relay
