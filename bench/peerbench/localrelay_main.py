"""Runs rust-nostr's LocalRelay (PyPI ``nostr-sdk``) on 127.0.0.1:PORT until killed; prints ``ready PORT``.

Started by the bench with the scratch venv's Python, not relaysim's. Two settings differ from the
defaults, both so that the bench measures the relay and not a guard rail:

* ``rate_limit``: the default allows 60 notes a minute per connection and 20 open REQs;
* ``max_filter_limit`` / ``default_filter_limit``: a REQ's ``limit`` is clamped to the first and a
  REQ without one gets the second (500).

The builder is immutable: each setter *returns* a new builder (nostr-sdk-ffi's
``LocalRelayBuilder`` clones itself in every method), so the result must be kept --
``builder.max_filter_limit(20000)`` on its own line changes nothing, and the relay then answers
a ``limit: 5000`` REQ with its defaults. (That, not a limit of the relay, is why an earlier
measurement saw at most 500 events per REQ.)

Its in-memory database is the default one (``MemoryDatabase`` bounded at 75,000 events); the
bench loads seed1 by publishing it over the websocket, the only way in from Python.
"""

from __future__ import annotations

import asyncio
import sys

import nostr_sdk


async def main(port: int) -> None:
    builder = nostr_sdk.LocalRelayBuilder()
    builder = builder.port(port)
    builder = builder.rate_limit(nostr_sdk.RateLimit(max_reqs=5_000, notes_per_minute=100_000_000))
    builder = builder.max_filter_limit(20_000)
    builder = builder.default_filter_limit(500)
    relay = builder.build()
    await relay.run()
    print(f"ready {port} {await relay.url()}", flush=True)
    while True:
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
