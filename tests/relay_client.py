"""A tiny trio websocket client on websockets' Sans-I/O ``ClientProtocol``, for the relay tests.

Why not ``websockets.asyncio``: the tests run on trio (pytest-trio), and a client in a thread would
make timing-sensitive tests (CLOSE mid-query, a client that never reads) harder to reason about.
This client reads only when asked (:meth:`WsClient.recv`), which is exactly what the "client
that stops reading" test needs, and can send raw frames for the bad-input tests.
"""

from __future__ import annotations

import contextlib
import socket
from collections import deque
from typing import Any

import orjson
import trio
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from relaysim.nostr.event import Event, event_from_json


class WsClient:
    """One websocket connection; use :func:`connect`."""

    def __init__(self, stream: trio.SocketStream, proto: ClientProtocol) -> None:
        self.stream = stream
        self.proto = proto
        self.messages: deque[tuple[Opcode, bytes]] = deque()
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self.eof = False
        self.bytes_received = 0
        self.pongs: list[bytes] = []

    async def _flush(self) -> None:
        """Write everything pending in one ``send_all`` (frames queued together arrive together)."""
        chunks = self.proto.data_to_send()
        data = b"".join(chunks)
        if data:
            await self.stream.send_all(data)
        if chunks and chunks[-1] == b"":
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                await self.stream.send_eof()

    async def _read_more(self) -> None:
        if self.eof:
            raise ConnectionError("connection closed")
        data = await self.stream.receive_some(65536)
        self.bytes_received += len(data)
        if not data:
            self.eof = True
            self.proto.receive_eof()
        else:
            self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Frame):
                self._on_frame(event)
        await self._flush()

    def _on_frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            if frame.fin:
                self.messages.append((frame.opcode, bytes(frame.data)))
            else:
                self._fragment_opcode, self._fragments = frame.opcode, [bytes(frame.data)]
        elif frame.opcode is Opcode.PONG:
            self.pongs.append(bytes(frame.data))
        elif frame.opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                assert self._fragment_opcode is not None
                self.messages.append((self._fragment_opcode, b"".join(self._fragments)))

    # -- sending -------------------------------------------------------------------------------

    async def send(self, data: bytes | str) -> None:
        self.proto.send_text(data.encode() if isinstance(data, str) else data)
        await self._flush()

    async def send_json(self, obj: Any) -> None:
        await self.send(orjson.dumps(obj))

    async def send_binary(self, data: bytes) -> None:
        self.proto.send_binary(data)
        await self._flush()

    async def send_fragments(self, parts: list[bytes]) -> None:
        """One text message split into continuation frames."""
        for index, part in enumerate(parts):
            fin = index == len(parts) - 1
            if index == 0:
                self.proto.send_text(part, fin=fin)
            else:
                self.proto.send_continuation(part, fin=fin)
        await self._flush()

    async def send_raw_text_frame(self, payload: bytes) -> None:
        """A text frame whose payload is sent as is (even if it is not UTF-8)."""
        self.proto.send_frame(Frame(Opcode.TEXT, payload))
        await self._flush()

    async def ping(self, data: bytes = b"hi") -> None:
        self.proto.send_ping(data)
        await self._flush()

    # -- receiving -----------------------------------------------------------------------------

    async def recv(self) -> bytes:
        """The next text message (bytes); ConnectionError when the connection ends first."""
        while not self.messages:
            await self._read_more()
        opcode, data = self.messages.popleft()
        assert opcode is Opcode.TEXT, f"unexpected {opcode}"
        return data

    async def recv_json(self) -> Any:
        return orjson.loads(await self.recv())

    async def recv_until_eose(self, sub_id: str) -> tuple[list[Event], list[Any]]:
        """(events for ``sub_id`` up to its EOSE, other messages seen meanwhile)."""
        events: list[Event] = []
        others: list[Any] = []
        while True:
            msg = await self.recv_json()
            if msg[0] == "EVENT" and msg[1] == sub_id:
                events.append(event_from_json(orjson.dumps(msg[2]), verify=False))
            elif msg[0] == "EOSE" and msg[1] == sub_id:
                return events, others
            else:
                others.append(msg)

    async def wait_closed(self) -> tuple[int | None, str | None]:
        """Read until the server closes; returns (close code, reason) the server sent."""
        while not self.eof and self.proto.state is not State.CLOSED:
            try:
                await self._read_more()
            except (ConnectionError, trio.BrokenResourceError):
                break
        rcvd = self.proto.close_rcvd
        return (rcvd.code, rcvd.reason) if rcvd is not None else (None, None)

    async def close(self, code: int = 1000) -> None:
        if self.proto.state is State.OPEN:
            self.proto.send_close(code)
            try:
                await self._flush()
                with trio.move_on_after(2):
                    await self.wait_closed()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
        await self.stream.aclose()


async def connect(
    url: str, *, path: str | None = None, rcvbuf: int | None = None, user_agent: str | None = None
) -> WsClient:
    """Open a websocket to ``url``; ``rcvbuf`` shrinks the socket's receive buffer (slow-client tests);
    ``user_agent`` sends that User-Agent (a different client for the relay's refuse-reconnect)."""
    uri = parse_uri(url)
    stream = await trio.open_tcp_stream(uri.host, uri.port)
    if rcvbuf is not None:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    proto = ClientProtocol(uri, max_size=None)
    request = proto.connect()
    if path is not None:
        request.path = path
    if user_agent is not None:
        request.headers["User-Agent"] = user_agent
    proto.send_request(request)
    client = WsClient(stream, proto)
    await client._flush()
    while True:
        data = await stream.receive_some(65536)
        if not data:
            raise ConnectionError("server closed during the handshake")
        proto.receive_data(data)
        events = proto.events_received()
        leftovers = []
        for event in events:
            if isinstance(event, Response):
                if event.status_code != 101:
                    raise ConnectionError(f"handshake refused: {event.status_code}")
            elif isinstance(event, Frame):
                leftovers.append(event)
        if proto.state is State.OPEN:
            for frame in leftovers:
                client._on_frame(frame)
            return client


async def http_request(
    url: str, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request with h11 over trio: (status, headers lower-cased, body)."""
    import h11

    uri = parse_uri(url.replace("http://", "ws://"))
    stream = await trio.open_tcp_stream(uri.host, uri.port)
    conn = h11.Connection(h11.CLIENT)
    hdrs = [("Host", f"{uri.host}:{uri.port}"), ("Connection", "close"), *(headers or {}).items()]
    if body or method == "POST":
        hdrs.append(("Content-Length", str(len(body))))
    data = conn.send(h11.Request(method=method, target=path, headers=hdrs))
    if body:
        data += conn.send(h11.Data(data=body))
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)
    status, resp_headers, chunks = 0, {}, []
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                resp_headers = {k.decode().lower(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
    finally:
        await stream.aclose()
    return status, resp_headers, b"".join(chunks)


# -- events for tests ----------------------------------------------------------------------------

SK1 = bytes(range(1, 33))
SK2 = bytes(range(2, 34))
AUX = bytes(32)


def signed_note(created_at: int, content: str = "hi", *, sk: bytes = SK1, kind: int = 1, tags=()) -> Event:
    from relaysim.nostr.event import sign_event

    return sign_event(sk, created_at=created_at, kind=kind, tags=tags, content=content, aux=AUX)


def bulk_events(n: int, *, start: int = 1_000_000, content_size: int = 100) -> list[Event]:
    """``n`` kind-1 events with correct ids and dummy signatures: loaded into a relay's store
    directly (which trusts its dataset), they make big queries cheap to set up."""
    from relaysim.nostr.event import PubKey, compute_id, pubkey_of

    pubkey = PubKey(pubkey_of(SK2))
    out = []
    for i in range(n):
        content = f"bulk {i} " + "x" * content_size
        event_id = compute_id(pubkey, start + i, 1, (), content)
        out.append(Event(event_id, pubkey, start + i, 1, (), content, "0" * 128))
    return out


# -- bursts of EVENTs ------------------------------------------------------------------------------


async def send_burst(client: WsClient, events: list[Event]) -> list[Any]:
    """Publish ``events`` in one write (the relay reads them in one or a few reads); their OKs."""
    from relaysim.nostr.messages import encode_client_event

    for event in events:
        client.proto.send_text(encode_client_event(event))
    await client._flush()
    return [await client.recv_json() for _ in events]


async def assert_forged_burst_judged(client: WsClient, *, since: int, n: int) -> None:
    """``n`` real notes in one burst with a forged one (another event's valid signature over other
    content) and one with a wrong signature among them: each EVENT gets its own OK, in order, the
    two fakes are refused with their reason, and only the real ones are stored."""
    from relaysim.nostr.messages import encode_req

    good = [signed_note(since + i, f"burst {i}", sk=SK2) for i in range(n)]
    third, fifth = good[3], good[5]
    forged = Event(third.id, third.pubkey, third.created_at, 1, (), "not what was signed", third.sig)
    wrong_sig = Event(fifth.id, fifth.pubkey, fifth.created_at, 1, (), fifth.content, good[6].sig)
    burst = [*good[:10], forged, wrong_sig, *good[10:]]
    answers = await send_burst(client, burst)
    assert [a[1] for a in answers] == [e.id for e in burst]
    assert answers[10] == ["OK", third.id, False, "invalid: event id does not match its content"]
    assert answers[11] == ["OK", fifth.id, False, "invalid: signature does not verify"]
    assert [a[2] for a in answers[:10] + answers[12:]] == [True] * n
    await client.send(encode_req("burst", {"authors": [third.pubkey], "since": since}))
    events, _ = await client.recv_until_eose("burst")
    assert sorted(e.id for e in events) == sorted(e.id for e in good)
