"""What a relay is asked to serve: one frozen :class:`RelayConfig`, checked when it is made.

Why one value instead of keyword arguments: the CLI, the scenario runner, the pytest plugin and
the tests all start relays; with a config object each of them builds one value that can be
printed, compared and changed with :func:`dataclasses.replace`, and every mistake a user can make
is reported when the value is made -- before a port is bound or a dataset is read.

Messages name the ``relaysim serve`` option (``--port``, ``--traffic``) because that is how most
users meet these settings; the field of the same name is the Python spelling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from relaysim.errors import UsageError
from relaysim.nostr.event import Event
from relaysim.relay.faults import FaultSpec, parse_faults
from relaysim.relay.limits import Limits
from relaysim.relay.loading import is_jsonl, parse_traffic
from relaysim.relay.websocket import ConnectionSettings
from relaysim.traffic import Rates

__all__ = ["DEFAULT_MAX_EVENTS", "RelayConfig", "check_public_url"]

# Live (non-dataset) events kept at most: ~10 hours of the default traffic mix, ~100 MB.
DEFAULT_MAX_EVENTS = 100_000


@dataclass(frozen=True, kw_only=True)
class RelayConfig:
    """Everything a relay needs to start; pass it to :func:`~relaysim.relay.open_relay`.

    ``dataset`` is a dataset name from ``datasets/`` (built on first use), a path to a JSONL file,
    or None for an empty relay; ``events`` adds events to it (tests), pinned like the dataset.
    ``host``/``port`` is where to listen (port 0: any free port). ``static`` is the directory
    served at ``/`` (default: the built-in reference client); ``test_headers`` adds
    COOP/COEP/CORP to every response (default: on for the built-in client, off for ``static``).
    ``traffic`` (``"notes=2/s,reactions=10/s"`` or a :class:`~relaysim.traffic.Rates`) starts
    the live traffic generator, seeded with ``traffic_seed``, paused if ``traffic_paused``; it
    needs a named dataset, whose cast signs the events (a named dataset without ``traffic`` still
    answers bursts). ``max_events`` caps the store (oldest non-dataset events are evicted; None
    lifts the cap). A named dataset's relay hints point at ``dataset_relay_url`` (default
    ``ws://127.0.0.1:7447/``), or at the relay's own URL with ``hints_follow_url`` (the CLI does
    that for a fixed port; a different URL is a separate cached build).
    ``public_url`` is where browsers on other machines (Selenium Grid nodes) reach the relay,
    ``http(s)://HOST[:PORT]/``: the app's page and its websocket are opened there (see
    :meth:`public_http_url`); ``host`` must then be an address those machines can reach (``0.0.0.0``,
    or this machine's address). The ``/control`` endpoints answer loopback peers only, whatever the bind.
    ``faults`` (``"drop=0.01,delay=50ms,disconnect-every=60s"`` or a
    :class:`~relaysim.relay.faults.FaultSpec`) injects network faults, every draw seeded with
    ``faults_seed`` (docs/relay.md, "Faults").
    """

    dataset: str | Path | None = None
    events: Sequence[Event] = ()
    host: str = "127.0.0.1"
    port: int = 0
    static: str | Path | None = None
    test_headers: bool | None = None
    traffic: str | Rates | None = None
    traffic_seed: int | str = 1
    traffic_paused: bool = False
    limits: Limits = field(default_factory=Limits)
    max_events: int | None = DEFAULT_MAX_EVENTS
    settings: ConnectionSettings = field(default_factory=ConnectionSettings)
    dataset_relay_url: str | None = None
    hints_follow_url: bool = False
    public_url: str | None = None
    faults: str | FaultSpec | None = None
    faults_seed: int | str = 1

    def __post_init__(self) -> None:
        # A frozen value must not share a caller's list: keep a tuple of the events.
        object.__setattr__(self, "events", tuple(self.events))
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not 0 <= self.port <= 65535:
            raise UsageError(f"--port must be between 0 and 65535, got {self.port}")
        if not self.host:
            raise UsageError("--host must not be empty (use 127.0.0.1 for this machine only)")
        if self.max_events is not None and (isinstance(self.max_events, bool) or self.max_events < 1):
            raise UsageError(f"--max-events must be a positive number, got {self.max_events}")
        if self.static is not None and not Path(self.static).is_dir():
            raise UsageError(f"--static {self.static}: not a directory")
        if isinstance(self.traffic_seed, bool) or not isinstance(self.traffic_seed, int | str):
            raise UsageError(f"--traffic-seed must be an integer or a string, got {self.traffic_seed!r}")
        if isinstance(self.faults_seed, bool) or not isinstance(self.faults_seed, int | str):
            raise UsageError(f"--faults-seed must be an integer or a string, got {self.faults_seed!r}")
        _ = self.fault_spec  # a bad --faults fails here, naming the item it does not understand
        parse_traffic(self.traffic)  # a bad --traffic fails here, naming the item it does not understand
        if self.traffic is not None and (self.dataset is None or is_jsonl(self.dataset)):
            what = "an empty relay" if self.dataset is None else "a JSONL file"
            raise UsageError(f"--traffic needs a named dataset (its authors sign the traffic), not {what}")
        if self.public_url is not None:
            check_public_url(self.public_url)

    def public_http_url(self, port: int) -> str | None:
        """``public_url`` with ``port`` (the bound one) filled in when it names none; None without one."""
        if self.public_url is None:
            return None
        return check_public_url(self.public_url, port)

    @property
    def fault_spec(self) -> FaultSpec:
        """The faults to inject from the start (none by default)."""
        return self.faults if isinstance(self.faults, FaultSpec) else parse_faults(self.faults)

    @property
    def rates(self) -> Rates:
        """The scheduled traffic rates (all zero without ``traffic``: bursts only)."""
        return parse_traffic(self.traffic)


def check_public_url(url: str, port: int | None = None) -> str:
    """``url`` as ``scheme://host:port/`` (``port`` when it names none); a one-line error when it is not
    an ``http(s)://HOST[:PORT][/]`` URL. The page is served at ``/``, so a path is refused."""
    try:
        parts = urlsplit(url)
        named = parts.port
    except ValueError as exc:
        raise UsageError(f"--public-url {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--public-url must be http(s)://HOST[:PORT]/ (where the browsers reach the relay), "
                         f"got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise UsageError(f"--public-url names the relay's origin only (the app is served at /), got {url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    use = named if named is not None else port
    return f"{parts.scheme}://{host}{'' if use is None else f':{use}'}/"
