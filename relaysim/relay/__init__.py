"""The test relay: trio + h11 + websockets Sans-I/O on one port.

``Relay`` is the async context manager, ``SyncRelay`` the thread-backed wrapper for synchronous
code, ``RelayCore`` the Sans-I/O NIP-01 logic both drive, ``Limits`` what NIP-11 advertises.
See docs/relay.md.
"""

from relaysim.relay.core import RelayCore
from relaysim.relay.limits import Limits, nip11_document
from relaysim.relay.server import HARNESS_CLOSE_REASON, Relay
from relaysim.relay.sync import SyncRelay
from relaysim.relay.websocket import ConnectionSettings

__all__ = [
    "HARNESS_CLOSE_REASON",
    "ConnectionSettings",
    "Limits",
    "Relay",
    "RelayCore",
    "SyncRelay",
    "nip11_document",
]
