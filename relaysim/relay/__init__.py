"""The test relay: trio + h11 + websockets Sans-I/O on one port.

``open_relay(RelayConfig(...))`` is the async context manager (``serve`` the same for a caller's
nursery), ``Relay`` the handle it yields, ``SyncRelay`` the thread-backed wrapper for synchronous
code, ``RelayCore`` the Sans-I/O NIP-01 logic they drive, ``Limits`` what NIP-11 advertises.
See docs/relay.md.
"""

from relaysim.relay.config import DEFAULT_MAX_EVENTS, RelayConfig
from relaysim.relay.core import RelayCore
from relaysim.relay.limits import Limits, nip11_document
from relaysim.relay.server import HARNESS_CLOSE_REASON, Relay, ResetReport, open_relay, serve
from relaysim.relay.sync import SyncRelay
from relaysim.relay.websocket import ConnectionSettings

__all__ = [
    "DEFAULT_MAX_EVENTS",
    "HARNESS_CLOSE_REASON",
    "ConnectionSettings",
    "Limits",
    "Relay",
    "RelayConfig",
    "RelayCore",
    "ResetReport",
    "SyncRelay",
    "nip11_document",
    "open_relay",
    "serve",
]
