"""TEST DOUBLE of the relaysim relay, used by the client's tests only (not the real relay).

Why it exists: the client was built while the real trio relay (relaysim.relay) was still being
written.  tests/client_fixtures.py uses the real `relaysim.relay.SyncRelay` when it is available
and this double otherwise.  It is a real server on a real socket: a small asyncio websockets
server on one port speaking NIP-01 REQ/CLOSE/EVENT over the project's EventStore and Filter,
serving the static client at `/` with the COOP/COEP/CORP test headers (relaysim.relay.static),
`/stats` in the real relay's shape (each connection's open subscriptions) and `/viewer.json`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from relaysim.nostr import Event, event_from_json
from relaysim.nostr.filter import parse_filter
from relaysim.relay.static import resolve_static
from relaysim.store import EventStore


class DevRelay:
    """`with DevRelay(events, static_root, viewer) as r:` r.http_url, r.stats(), r.publish(ev)."""

    def __init__(
        self, events: list[Event], static_root: Path, viewer: str | None = None, test_headers: bool = True
    ) -> None:
        self.test_headers = test_headers
        self.store = EventStore()
        self.store.load(events)
        self.static_root = static_root
        self.viewer = viewer
        self.conns: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.port = 0

    # -- lifecycle
    def __enter__(self) -> DevRelay:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("dev relay did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop and self._stop
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def stats(self) -> dict[str, Any]:
        conns = [
            {"id": cid, "closed_at": None, "subscriptions": {sid: [] for sid in c["subs"]}}
            for cid, c in list(self.conns.items())
        ]
        return {"connections": conns}

    def publish(self, event: Event) -> tuple[bool, str]:
        assert self._loop
        asyncio.run_coroutine_threadsafe(self._publish(event), self._loop).result(5)
        return True, ""

    # -- server
    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", 0, process_request=self._http, max_size=2**22) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        path = request.path.split("?", 1)[0]
        if path == "/stats":
            body = json.dumps(self.stats()).encode()
            return Response(200, "OK", Headers([("Content-Type", "application/json")]), body)
        if path == "/viewer.json" and self.viewer:
            body = json.dumps({"pubkey": self.viewer}).encode()
            return Response(
                200,
                "OK",
                Headers(
                    [("Content-Type", "application/json"), ("Cross-Origin-Resource-Policy", "same-origin")]
                ),
                body,
            )
        res = resolve_static(self.static_root, request.path, test_headers=self.test_headers)
        headers = Headers([(k.decode(), v.decode("latin-1")) for k, v in res.headers])
        return Response(res.status, "OK" if res.status == 200 else "Error", headers, res.body)

    async def _handler(self, ws: ServerConnection) -> None:
        cid = next(self._ids)
        conn: dict[str, Any] = {"ws": ws, "subs": {}}
        self.conns[cid] = conn
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg[0] == "REQ":
                    sub_id = msg[1]
                    filters = tuple(parse_filter(f) for f in msg[2:])
                    conn["subs"][sub_id] = filters
                    for ev in self.store.query(filters):
                        await ws.send(b'["EVENT",' + orjson.dumps(sub_id) + b"," + ev.json + b"]", text=True)
                    await ws.send(json.dumps(["EOSE", sub_id]))
                elif msg[0] == "CLOSE":
                    conn["subs"].pop(msg[1], None)
                elif msg[0] == "EVENT":
                    ev = event_from_json(json.dumps(msg[1]))
                    await self._publish(ev)
                    await ws.send(json.dumps(["OK", ev.id, True, ""]))
        except Exception:  # a broken client must not take the server down
            pass
        finally:
            del self.conns[cid]

    async def _publish(self, event: Event) -> None:
        self.store.add(event)
        for conn in list(self.conns.values()):
            for sub_id, filters in list(conn["subs"].items()):
                if any(f.matches(event) for f in filters):
                    frame = b'["EVENT",' + orjson.dumps(sub_id) + b"," + event.json + b"]"
                    await conn["ws"].send(frame, text=True)
