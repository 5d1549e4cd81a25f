"""relaysim: a test bench for Nostr web clients that must run for hours without leaking."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relaysim._version import __version__

__all__ = ["Relay", "RelayConfig", "SyncRelay", "__version__", "open_relay"]

if TYPE_CHECKING:
    from relaysim.relay import Relay, RelayConfig, SyncRelay, open_relay


def __getattr__(name: str) -> Any:
    # Lazy: ``import relaysim`` stays cheap for the CLI and the pure core; the relay pulls in
    # trio, websockets, h11 and prometheus-client only when someone asks for it.
    if name in ("Relay", "RelayConfig", "SyncRelay", "open_relay"):
        from relaysim import relay

        return getattr(relay, name)
    raise AttributeError(f"module 'relaysim' has no attribute {name!r}")
