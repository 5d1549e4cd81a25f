"""The reference client: a static Nostr web app (host.mjs + worker.mjs + heap.wasm) served at `/`.

It is the harness's control group: the default (fixed) build bounds its caches, releases its DOM
handles, closes its subscriptions on every page switch and allocates nothing while idle; each
`?leaks=` switch breaks exactly one of those.  See docs/hooks.md for the hooks it exposes.
"""

from pathlib import Path

CLIENT_DIR = Path(__file__).resolve().parent
"""The directory to serve as the static root (index.html, host.mjs, worker.mjs, heap.wasm)."""

LEAKS = ("maps", "dom", "subs", "idle", "thread", "thread-profile", "reconnect")
"""The leak switches the client understands in `?leaks=a,b`."""

__all__ = ["CLIENT_DIR", "LEAKS"]
