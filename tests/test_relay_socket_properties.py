"""``relaysim serve`` against a model of NIP-01, over real sockets (issue 9, no browser).

A Hypothesis ``RuleBasedStateMachine`` plays up to three simulated clients, each a websockets
sync connection to one real ``relaysim serve`` process, sending well-formed REQ, CLOSE, EVENT
(regular, duplicate, replaceable, addressable, NIP-09 deletions of own and of others' events and
before their target, NIP-40 expired / expiring soon / far, ephemeral, oversized) and COUNT
(NIP-45). After every message the answer is compared with ``tests/nip01_model.py``:

* a REQ gets exactly the stored events the model predicts, in NIP-01 order, each filter's
  ``limit`` obeyed, then EOSE -- or ``CLOSED`` with the prefix NIP-11's limits imply;
* every EVENT gets OK with the model's boolean and prefix (``duplicate:``, ``invalid:``,
  ``blocked:``), and a broadcast event reaches exactly the open subscriptions whose filters match
  it, on every connection (ephemeral ones too), once;
* nothing reaches a subscription after its CLOSE has been answered by a round trip, even when
  the CLOSE races a publish on another connection;
* COUNT answers the model's count;
* the relay's own ``/stats`` lists exactly the subscriptions the model holds open.

How "after" is known without sleeping: the relay handles one connection's messages in order and
queues an EVENT's live deliveries to every connection before its OK, so once a client has its
OK, a COUNT round trip on each other connection (:meth:`Client.sync`) returns everything that
EVENT delivered there. Every rule ends with all connections synced, so anything unexpected that
arrives is caught by the next read.

Isolation (one relay for the whole test session): starting a relay per example would cost more
than the example, so the relay runs once (``relay_process``, session scope) and examples are
kept apart by data instead: each example run gets fresh secret keys and its own ``t`` tag value,
and every filter it sends names this example's authors, this example's event ids (``ids`` or
``#e``) or its ``t`` tag. Events of earlier examples can therefore never match, stored or live,
and the model can start empty. The relay serves an empty JSONL dataset and no traffic. Its store
cap (``--max-events``, 100,000) evicts the oldest events first, i.e. earlier examples' events, which
no filter of the current example can see. Keys are fresh on every run, so Hypothesis's replays
(shrinking, ``@reproduce_failure``) never meet events of the run they replay.

Limits are read from the relay's NIP-11 document, ``max_filters`` included (the model refuses a
REQ with more filters the way the relay does; the generated REQs have a few filters).

Budget: the ``relay-socket-ci`` profile (the default; derandomised, 400 examples of up to 30
steps) took 79 s on the shared 2-core machine (1,000 examples of up to 50 steps with
``RELAYSIM_HYPOTHESIS_PROFILE=dev``: 4 min 17 s, random). The profiles are registered here, not in
``conftest.py``, whose ``ci``/``dev`` profiles govern every other Hypothesis test. After the run
the test asserts that the examples reached every case of ``MUST_SEE`` (a refusal of each kind, a
live fan-out to several subscriptions, a cut REQ, an expired event hidden, ``default_limit``...),
so a generator that drifted into checking nothing fails. A failure prints the shrunk steps and a
``@reproduce_failure`` line: put it on ``new_machine`` in the test to replay.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from nip01_model import Limits, Nip01Model, Outcome, filter_matches, is_expired
from websockets.sync.client import ClientConnection, connect

from relaysim.nostr.event import Event, parse_event, pubkey_of, sign_event

# -- budget ---------------------------------------------------------------------------------------

settings.register_profile(
    "relay-socket-ci",
    derandomize=True,
    max_examples=400,
    stateful_step_count=30,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "relay-socket-dev",
    max_examples=1000,
    stateful_step_count=50,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
_PROFILE = os.environ.get("RELAYSIM_HYPOTHESIS_PROFILE", "ci")
if _PROFILE not in ("ci", "dev"):
    raise pytest.UsageError(f"RELAYSIM_HYPOTHESIS_PROFILE must be 'ci' or 'dev', got {_PROFILE!r}")
SETTINGS = settings.get_profile(f"relay-socket-{_PROFILE}")

RECV_TIMEOUT = 10.0  # seconds for any one answer; the relay answers in milliseconds
MAX_READ = 20_000  # messages read while waiting for one answer (bounds every loop)
START_TIMEOUT = 60.0
MAX_CLIENTS = 3
AUTHORS = 3
T0 = 1_700_000_000  # created_at = T0 + 0..7: few distinct seconds, so same-second ties are common
SUB_IDS = ("a", "b", 'q"\\ü 😀')  # ids are JSON strings: quotes, backslashes and non-ASCII too
NO_SUCH_ID = "0" * 64  # the sync COUNT's filter: never an event id
REGULAR_KINDS = (1, 7, 1111)
REPLACEABLE_KINDS = (0, 3, 10002, 19999)
ADDRESSABLE_KINDS = (30000, 30023, 39999)
EPHEMERAL_KINDS = (20000, 20001, 29999)
FILTER_KINDS = (0, 1, 3, 5, 7, 1111, 10002, 19999, 20001, 30000, 30023, 39999)

client_index = st.integers(0, MAX_CLIENTS - 1)
author_index = st.integers(0, AUTHORS - 1)
offsets = st.integers(0, 7)
x_values = st.sampled_from([None, "1", "2"])

# -- the relay process ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelayProcess:
    url: str
    http_url: str
    limitation: dict[str, Any]


def _read_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@pytest.fixture(scope="session")
def relay_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """One ``relaysim serve`` on an empty dataset and a free port, for every example of the session."""
    workdir = tmp_path_factory.mktemp("relay-socket")
    empty = workdir / "empty.jsonl"
    empty.write_bytes(b"")
    stderr_path = workdir / "serve.stderr"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "relaysim", "serve", "--port", "0", "--dataset", str(empty)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        urls = _wait_ready(proc, stderr_path)
        request = urllib.request.Request(urls["app"], headers={"Accept": "application/nostr+json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            nip11 = orjson.loads(response.read())
        yield RelayProcess(urls["relay"], urls["app"], nip11["limitation"])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[str], stderr_path: Path) -> dict[str, str]:
    """The URLs ``relaysim serve`` prints (``relaysim: relay ws://...``) up to its ``ready`` line."""
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    urls: dict[str, str] = {}
    deadline = time.monotonic() + START_TIMEOUT
    while "ready" not in urls:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"relaysim serve printed no 'ready' line within {START_TIMEOUT} s") from None
        if line is None:
            proc.wait(10)
            raise AssertionError(f"relaysim serve exited with {proc.returncode}: {stderr_path.read_text()}")
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "relaysim:":
            urls[parts[1]] = parts[2]
    return urls


# -- one simulated client ---------------------------------------------------------------------------


class Client:
    """One websocket connection (websockets sync client). The test takes messages only where it
    expects an answer, so anything it did not expect is caught at the next read."""

    def __init__(self, no: int, url: str) -> None:
        self.no = no
        self.ws: ClientConnection = connect(
            url,
            compression=None,
            proxy=None,
            max_size=None,
            max_queue=None,
            open_timeout=10,
            close_timeout=2,
            ping_interval=None,
            legacy=True,
        )
        self.port = self.ws.local_address[1]
        self._syncs = 0
        self._unread: list[list[Any]] = []

    def send(self, message: list[Any]) -> None:
        self.ws.send(orjson.dumps(message).decode())

    def pushback(self, messages: list[list[Any]]) -> None:
        """Messages read too early: the next reads return them first, in order."""
        self._unread[:0] = messages

    def recv(self) -> list[Any]:
        if self._unread:
            return self._unread.pop(0)
        try:
            raw = self.ws.recv(timeout=RECV_TIMEOUT)
        except TimeoutError:
            raise AssertionError(
                f"client {self.no}: no answer from the relay within {RECV_TIMEOUT} s"
            ) from None
        message: list[Any] = orjson.loads(raw)
        return message

    def read_until(self, done: Callable[[list[Any]], bool]) -> tuple[list[Any], list[list[Any]]]:
        """(the first message ``done`` accepts, every message read before it)."""
        before: list[list[Any]] = []
        for _ in range(MAX_READ):
            message = self.recv()
            if done(message):
                return message, before
            before.append(message)
        raise AssertionError(f"client {self.no}: {MAX_READ} messages without the awaited answer")

    def sync(self) -> list[list[Any]]:
        """A COUNT round trip: returns everything the relay sent this client before answering it."""
        self._syncs += 1
        query_id = f"sync-{self._syncs}"
        self.send(["COUNT", query_id, {"ids": [NO_SUCH_ID]}])
        answer, before = self.read_until(lambda m: m[0] in ("COUNT", "CLOSED") and m[1] == query_id)
        assert answer == ["COUNT", query_id, {"count": 0}], f"client {self.no}: sync answered {answer}"
        return before

    def close(self) -> None:
        self.ws.close()


# -- the machine ------------------------------------------------------------------------------------

_SALT = os.urandom(8).hex()  # fresh keys in every process, so a re-run never meets its old events
_RUNS = itertools.count()


def _secret(run: int, index: int) -> bytes:
    return hashlib.sha256(f"relay-socket {_SALT} {run} {index}".encode()).digest()


# What the examples of this process exercised. A test that passes because the generator never
# reached a case would prove nothing, so the test asserts at the end that these all happened.
COVERAGE: Counter[str] = Counter()
MUST_SEE = (
    "OK True (plain)",
    "OK True duplicate:",
    "OK False invalid:",
    "OK False blocked:",
    "REQ CLOSED rate-limited:",
    "REQ CLOSED invalid:",
    "REQ stored events: 4+",
    "REQ stored events: 0+",
    "live deliveries: 1+",
    "live deliveries: 3+",
    "REQ+CLOSE at once: complete",
    "REQ+CLOSE at once: nothing",
    "REQ replaced at once: first completed",
    "REQ replaced at once: first cut",
    "expired event hidden",
    "default_limit applied",
)


def _seen(label: str) -> None:
    COVERAGE[label] += 1


def _ok_for(event_id: str) -> Callable[[list[Any]], bool]:
    return lambda message: message[:2] == ["OK", event_id]


def _has_prefix(message: str, prefix: str) -> bool:
    return message == "" if prefix == "" else message.startswith(prefix)


def _describe(event: Event | dict[str, Any]) -> str:
    """One line a person can read in a failure message."""
    if isinstance(event, dict):
        event = parse_event(event)
    tags = [list(t) if len(t) < 6 else [*t[:2], "..."] for t in event.tags[:6]]
    more = f" (+{len(event.tags) - 6} tags)" if len(event.tags) > 6 else ""
    when = f"T0+{event.created_at - T0}"
    return f"kind {event.kind} by {event.pubkey[:8]} at {when} id {event.id[:8]} {tags}{more}"


def _normal(filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Filters as /stats prints them (lists sorted), for comparison."""
    return [{k: sorted(v) if isinstance(v, list) else v for k, v in f.items()} for f in filters]


class RelaySocketMachine(RuleBasedStateMachine):
    """Simulated clients against one ``relaysim serve``, checked message by message against
    :class:`nip01_model.Nip01Model`. See the module docstring for what is checked and how."""

    def __init__(self, relay: RelayProcess) -> None:
        super().__init__()
        self.relay = relay
        self.model = Nip01Model(Limits.from_nip11(relay.limitation))
        self.clients: dict[int, Client] = {}
        self._next_conn = 0
        run = next(_RUNS)
        self.keys = [_secret(run, i) for i in range(AUTHORS)]
        self.authors = [pubkey_of(key) for key in self.keys]
        self.nobody = pubkey_of(_secret(run, 99))  # never publishes: the filter of filler subscriptions
        self.tag = f"ex-{_SALT}-{run}"
        self.sent: list[Event] = []  # every event sent once (duplicates are drawn from here)
        self._sent_ids: set[str] = set()
        self.pending: list[Event] = []  # signed, named by a deletion, not sent yet
        self._serial = 0
        self._filled = False

    def teardown(self) -> None:
        for client in self.clients.values():
            client.close()

    # -- helpers -------------------------------------------------------------------------------

    def _client(self, index: int) -> Client:
        clients = list(self.clients.values())
        return clients[index % len(clients)]

    def _sign(self, author: int, kind: int, offset: int, tags: list[list[str]], content: str = "") -> Event:
        self._serial += 1
        return sign_event(
            self.keys[author],
            created_at=T0 + offset,
            kind=kind,
            tags=tags,
            content=content or f"{self.tag} #{self._serial}",
        )

    def _tags(self, tagged: bool, x: str | None) -> list[list[str]]:
        tags = [["t", self.tag]] if tagged else []
        if x is not None:
            tags.append(["x", x])
        return tags

    def _filters(self) -> st.SearchStrategy[dict[str, Any]]:
        """A filter that names this example's authors, ids or tag (see Isolation), plus extras."""
        anchors: list[st.SearchStrategy[dict[str, Any]]] = [
            st.fixed_dictionaries(
                {
                    "authors": st.lists(
                        st.sampled_from(self.authors), min_size=1, max_size=AUTHORS, unique=True
                    )
                }
            ),
            st.just({"#t": [self.tag]}),
        ]
        known = [ev.id for ev in self.sent + self.pending]
        if known:
            some_ids = st.lists(st.sampled_from(known), min_size=1, max_size=4, unique=True)
            anchors += [st.fixed_dictionaries({"ids": some_ids}), st.fixed_dictionaries({"#e": some_ids})]
        used_kinds = sorted({ev.kind for ev in self.sent}) or list(FILTER_KINDS)
        extra = {
            "kinds": st.lists(st.sampled_from(used_kinds), min_size=1, max_size=3, unique=True),
            "since": offsets.map(lambda o: T0 + o),
            "until": offsets.map(lambda o: T0 + o),
            "#x": st.lists(st.sampled_from(["1", "2"]), min_size=1, max_size=2, unique=True),
            "limit": st.integers(0, 6),
        }
        # At most two extra conditions, so that a good share of filters match something.
        extras = st.lists(st.sampled_from(sorted(extra)), max_size=2, unique=True).flatmap(
            lambda keys: st.fixed_dictionaries({key: extra[key] for key in keys})
        )

        def merge(parts: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
            return {**parts[0], **parts[1]}

        return st.tuples(st.one_of(anchors), extras).map(merge)

    def _sync_all(self) -> dict[int, list[list[Any]]]:
        return {no: client.sync() for no, client in self.clients.items()}

    def _publish(self, client: Client, event: Event, *, racing_close: dict[int, str] | None = None) -> None:
        """Send ``event``, check its OK against the model, then check every connection's deliveries.

        ``racing_close`` names a subscription (conn -> sub id) closed just before this publish
        without waiting: the event may reach it once (CLOSE not handled yet) or not at all.
        """
        self._publish_all(client, [event], racing_close=racing_close)

    def _publish_all(
        self, client: Client, events: list[Event], *, racing_close: dict[int, str] | None = None
    ) -> None:
        """:meth:`_publish` for several events sent back to back (their OKs come in order)."""
        t0 = time.time()
        for event in events:
            client.send(["EVENT", event.to_dict()])
        answers: list[list[Any]] = []
        own: list[list[Any]] = []
        for event in events:
            answer, early = client.read_until(_ok_for(event.id))
            # Deliveries to the publisher's own subscriptions follow its OK; nothing else is pending.
            assert all(m[0] == "EVENT" for m in early), f"client {client.no}: unexpected {early} before an OK"
            own += early
            answers.append(answer)
        client.pushback(own)  # checked with every other connection's deliveries below
        t1 = time.time()
        expected: dict[int, Counter[tuple[str, str]]] = {no: Counter() for no in self.clients}
        for event, (_, _, ok, message) in zip(events, answers, strict=True):
            options = self.model.outcomes(event, t0, t1)
            chosen: Outcome | None = next(
                (o for o in options if o.ok == ok and _has_prefix(message, o.prefix)), None
            )
            assert chosen is not None, (
                f"EVENT {_describe(event)}: relay answered OK {ok} {message!r}; the model expects "
                + " or ".join(f"OK {o.ok} {o.prefix!r}" for o in options)
            )
            _seen(f"OK {ok} {chosen.prefix or '(plain)'}" + (" (expiry race)" if len(options) > 1 else ""))
            if chosen.broadcast:
                for no, sub_ids in self.model.live_targets(event).items():
                    expected[no].update((sub_id, event.id) for sub_id in sub_ids)
            self.model.commit(event, chosen)
            if event.id not in self._sent_ids:
                self._sent_ids.add(event.id)
                self.sent.append(event)
        _seen(f"live deliveries: {min(sum(map(len, expected.values())), 3)}+")
        wire = {event.id: event.to_dict() for event in events}
        for no, got in self._sync_all().items():
            hits: Counter[tuple[str, str]] = Counter()
            for msg in got:
                assert msg[0] == "EVENT" and msg[2] == wire.get(msg[2].get("id")), (
                    f"client {no}: unexpected {msg} after publishing"
                )
                hits[(msg[1], msg[2]["id"])] += 1
            maybe = (racing_close or {}).get(no)
            if maybe is not None:
                for key in [k for k in hits if k[0] == maybe and hits[k] == 1]:
                    del hits[key]
            if hits != expected[no]:
                subs = {s: f for s, f in self.model.subs[no].items() if not s.startswith("fill-")}
                raise AssertionError(
                    f"client {no} received (sub, event) {sorted(hits.elements())}, the model expects "
                    f"{sorted(expected[no].elements())}; events: {[_describe(e) for e in events[:5]]}; "
                    f"open subscriptions: {subs}"
                )

    def _note_default_limit(self, filters: list[dict[str, Any]], now: float) -> None:
        limit = self.model.limits.default_limit
        if any("limit" not in f and self.model.count([f], now) > limit for f in filters):
            _seen("default_limit applied")

    def _note_expired(self, filters: list[dict[str, Any]], now: float) -> None:
        if any(
            is_expired(ev, now) and any(filter_matches(f, ev) for f in filters)
            for ev in self.model.stored.values()
        ):
            _seen("expired event hidden")

    def _req(self, client: Client, sub_id: str, filters: list[dict[str, Any]]) -> None:
        t0 = time.time()
        client.send(["REQ", sub_id, *filters])
        answer, before = client.read_until(lambda m: m[0] in ("EOSE", "CLOSED") and m[1] == sub_id)
        t1 = time.time()
        expected = self.model.req(client.no, sub_id, filters)
        if not expected.opens:
            _seen(f"REQ CLOSED {expected.prefix}")
            assert before == [] and answer[0] == "CLOSED", f"REQ {sub_id} {filters}: got {before} {answer}"
            assert answer[2].startswith(expected.prefix), (
                f"REQ {sub_id}: CLOSED {answer[2]!r}, want {expected}"
            )
            return
        assert answer == ["EOSE", sub_id], f"REQ {sub_id} {filters}: CLOSED {answer}, the model opens it"
        for msg in before:
            assert msg[0] == "EVENT" and msg[1] == sub_id, f"REQ {sub_id}: unexpected {msg} before EOSE"
        got = [msg[2]["id"] for msg in before]
        _seen(f"REQ stored events: {min(len(got), 4)}+")
        self._note_expired(filters, t0)
        self._note_default_limit(filters, t0)
        candidates = [[ev.id for ev in self.model.query(filters, t)] for t in self.model.moments(t0, t1)]
        if got not in candidates:
            returned = "\n  ".join(_describe(msg[2]) for msg in before)
            wanted = "\n  ".join(_describe(self.model.stored[i]) for i in candidates[0])
            raise AssertionError(f"REQ {filters} returned\n  {returned}\nthe model expects\n  {wanted}")
        for msg in before:
            assert msg[2] == self.model.stored[msg[2]["id"]].to_dict(), (
                f"REQ {sub_id}: event altered: {msg[2]}"
            )

    # -- connections ---------------------------------------------------------------------------

    @initialize()
    def first_client(self) -> None:
        self.connect()

    @precondition(lambda self: len(self.clients) < MAX_CLIENTS)
    @rule()
    def connect(self) -> None:
        no = self._next_conn
        self._next_conn += 1
        client = Client(no, self.relay.url)
        self.clients[no] = client
        self.model.connect(no)
        assert client.sync() == []  # the relay has registered the session

    @precondition(lambda self: len(self.clients) > 1)
    @rule(c=client_index)
    def disconnect(self, c: int) -> None:
        client = self._client(c)
        client.close()
        del self.clients[client.no]
        self.model.disconnect(client.no)

    # -- EVENT ---------------------------------------------------------------------------------

    @rule(
        c=client_index,
        author=author_index,
        kind=st.sampled_from(REGULAR_KINDS),
        offset=offsets,
        tagged=st.booleans(),
        x=x_values,
        text=st.text(max_size=12),
    )
    def publish_regular(
        self, c: int, author: int, kind: int, offset: int, tagged: bool, x: str | None, text: str
    ) -> None:
        """A regular event; its content is any text, which must come back byte for byte."""
        content = f"{self.tag} #{self._serial} {text}"
        self._publish(self._client(c), self._sign(author, kind, offset, self._tags(tagged, x), content))

    @rule(
        c=client_index,
        author=author_index,
        kind=st.sampled_from(REPLACEABLE_KINDS),
        offset=offsets,
        tagged=st.booleans(),
        x=x_values,
    )
    def publish_replaceable(
        self, c: int, author: int, kind: int, offset: int, tagged: bool, x: str | None
    ) -> None:
        self._publish(self._client(c), self._sign(author, kind, offset, self._tags(tagged, x)))

    @rule(
        c=client_index,
        author=author_index,
        kind=st.sampled_from(ADDRESSABLE_KINDS),
        offset=offsets,
        d=st.sampled_from([None, "", "a", "b"]),
        tagged=st.booleans(),
    )
    def publish_addressable(
        self, c: int, author: int, kind: int, offset: int, d: str | None, tagged: bool
    ) -> None:
        tags = self._tags(tagged, None) + ([] if d is None else [["d", d]])
        self._publish(self._client(c), self._sign(author, kind, offset, tags))

    @rule(
        c=client_index,
        author=author_index,
        kind=st.sampled_from(EPHEMERAL_KINDS),
        offset=offsets,
        tagged=st.booleans(),
        x=x_values,
    )
    def publish_ephemeral(
        self, c: int, author: int, kind: int, offset: int, tagged: bool, x: str | None
    ) -> None:
        self._publish(self._client(c), self._sign(author, kind, offset, self._tags(tagged, x)))

    @rule(
        c=client_index,
        author=author_index,
        offset=offsets,
        tagged=st.booleans(),
        when=st.sampled_from(["expired", "soon", "far"]),
        delta=st.integers(1, 3),
    )
    def publish_expiring(self, c: int, author: int, offset: int, tagged: bool, when: str, delta: int) -> None:
        """NIP-40: already expired (refused), expiring within 1-3 s (may expire mid-example), or later."""
        now = int(time.time())
        expiration = {"expired": now - delta, "soon": now + delta, "far": now + 3600}[when]
        tags = [*self._tags(tagged, None), ["expiration", str(expiration)]]
        self._publish(self._client(c), self._sign(author, 1, offset, tags))

    @rule(
        data=st.data(),
        c=client_index,
        author=author_index,
        offset=offsets,
        tagged=st.booleans(),
        future=st.sampled_from([None, "own", "other"]),
    )
    def publish_deletion(
        self, data: st.DataObject, c: int, author: int, offset: int, tagged: bool, future: str | None
    ) -> None:
        """NIP-09 kind 5 with ``e`` tags (own events, others' events, or an event not sent yet: deletion
        before target) and ``a`` tags (own or others' addresses, occupied or not)."""
        me = self.authors[author]
        own = [ev.id for ev in self.sent + self.pending if ev.pubkey == me]
        others = [ev.id for ev in self.sent + self.pending if ev.pubkey != me]
        e_ids = data.draw(st.lists(st.sampled_from(own), max_size=2, unique=True)) if own else []
        if others:
            e_ids += data.draw(st.lists(st.sampled_from(others), max_size=1))
        if future is not None:
            who = author if future == "own" else (author + 1) % AUTHORS
            kind = data.draw(st.sampled_from(REGULAR_KINDS + REPLACEABLE_KINDS + ADDRESSABLE_KINDS))
            later = self._sign(who, kind, data.draw(offsets), self._tags(True, None))
            self.pending.append(later)
            e_ids.append(later.id)
        addresses = data.draw(
            st.lists(
                st.tuples(
                    st.sampled_from(REPLACEABLE_KINDS + ADDRESSABLE_KINDS),
                    st.sampled_from([author, (author + 1) % AUTHORS]),
                    st.sampled_from(["", "a", "b"]),
                ),
                max_size=2,
            )
        )
        a_values = [f"{kind}:{self.authors[who]}:{d if kind >= 30000 else ''}" for kind, who, d in addresses]
        tags = self._tags(tagged, None) + [["e", i] for i in e_ids] + [["a", v] for v in a_values]
        self._publish(self._client(c), self._sign(author, 5, offset, tags))

    @precondition(lambda self: self.pending)
    @rule(c=client_index, i=st.integers(0, 100))
    def publish_pending(self, c: int, i: int) -> None:
        """The target of an earlier deletion arrives: blocked if the deleter was its author."""
        self._publish(self._client(c), self.pending.pop(i % len(self.pending)))

    @precondition(lambda self: self.sent)
    @rule(c=client_index, i=st.integers(0, 100))
    def publish_again(self, c: int, i: int) -> None:
        """Any event sent before, whatever became of it (stored, replaced, deleted, expired, ephemeral)."""
        self._publish(self._client(c), self.sent[i % len(self.sent)])

    @rule(c=client_index, author=author_index, n=st.sampled_from([3, 30, 510]), tagged=st.booleans())
    def publish_many(self, c: int, author: int, n: int, tagged: bool) -> None:
        """Many events back to back (their OKs come in order). With 510, a REQ streams more than one
        250-event batch, and one without ``limit`` is cut at NIP-11's ``default_limit`` (500)."""
        events = [self._sign(author, 1, i % 8, self._tags(tagged, ["1", "2", None][i % 3])) for i in range(n)]
        self._publish_all(self._client(c), events)

    @rule(data=st.data(), c=client_index, sub_id=st.sampled_from(SUB_IDS))
    def req_then_close_at_once(self, data: st.DataObject, c: int, sub_id: str) -> None:
        """REQ and CLOSE back to back: whatever arrives for it is a prefix of the stored events
        (EOSE only after all of them), and nothing after the CLOSE's round trip."""
        client = self._client(c)
        filters = data.draw(st.lists(self._filters(), min_size=1, max_size=2))
        t0 = time.time()
        client.send(["REQ", sub_id, *filters])
        client.send(["CLOSE", sub_id])
        expected = self.model.req(client.no, sub_id, filters)
        self.model.close(client.no, sub_id)
        got = client.sync()
        t1 = time.time()
        if not expected.opens:
            assert (
                len(got) == 1 and got[0][:2] == ["CLOSED", sub_id] and got[0][2].startswith(expected.prefix)
            )
            return
        ids = []
        for i, msg in enumerate(got):
            assert msg[1] == sub_id, f"client {client.no}: unexpected {msg}"
            if msg[0] == "EOSE":
                assert i == len(got) - 1, f"REQ {sub_id}: EOSE then {got[i + 1 :]}"
            else:
                assert msg[0] == "EVENT", f"REQ {sub_id}: unexpected {msg}"
                ids.append(msg[2]["id"])
        candidates = [[ev.id for ev in self.model.query(filters, t)] for t in self.model.moments(t0, t1)]
        complete = bool(got) and got[-1][0] == "EOSE"
        assert any(ids == full if complete else ids == full[: len(ids)] for full in candidates), (
            f"REQ {filters} then CLOSE: got {len(ids)} events (EOSE: {complete}), "
            f"not a prefix of the model's {[len(full) for full in candidates]}"
        )
        _seen(f"REQ+CLOSE at once: {'complete' if complete else 'cut' if ids else 'nothing'}")

    @rule(data=st.data(), c=client_index, sub_id=st.sampled_from(SUB_IDS))
    def req_replaced_at_once(self, data: st.DataObject, c: int, sub_id: str) -> None:
        """Two REQs with one id back to back (NIP-01: the second replaces the first): what arrives is
        a prefix of the first's events (its EOSE only after all of them, and maybe not even then),
        then all of the second's and its EOSE.

        The second REQ is one filter with a ``limit`` of at most 250, one batch: the relay queues
        such an answer whole while handling the REQ, so the sync's COUNT answer comes after it.
        (A bigger answer streams from a task and may be overtaken by the COUNT answer; the first
        REQ may be big, as its stream stops once replaced.)"""
        client = self._client(c)
        first = data.draw(st.lists(self._filters(), min_size=1, max_size=2))
        second = data.draw(self._filters())
        second["limit"] = min(second.get("limit", 250), 250)
        t0 = time.time()
        client.send(["REQ", sub_id, *first])
        client.send(["REQ", sub_id, second])
        answers = (self.model.req(client.no, sub_id, first), self.model.req(client.no, sub_id, [second]))
        got = client.sync()
        t1 = time.time()
        if not answers[1].opens:  # both refused: the connection is full and the id is not open
            assert [m[:2] for m in got] == [["CLOSED", sub_id]] * 2, f"REQ {sub_id} twice: {got}"
            return
        assert all(m[0] in ("EVENT", "EOSE") and m[1] == sub_id for m in got), f"REQ {sub_id} twice: {got}"
        tokens = [m[2]["id"] if m[0] == "EVENT" else "EOSE" for m in got]
        fits = False
        for t in self.model.moments(t0, t1):
            a = [ev.id for ev in self.model.query(first, t)]
            b = [ev.id for ev in self.model.query([second], t)]
            heads = [a[:k] for k in range(len(a) + 1)] + [[*a, "EOSE"]]
            fits = fits or any(tokens == head + b + ["EOSE"] for head in heads)
        assert fits, f"REQ {first} replaced by REQ {second}: got {tokens}"
        _seen(f"REQ replaced at once: {'first completed' if tokens.count('EOSE') == 2 else 'first cut'}")

    @rule(c=client_index, author=author_index, what=st.sampled_from(["tags", "content"]), over=st.booleans())
    def publish_at_size_limit(self, c: int, author: int, what: str, over: bool) -> None:
        """NIP-11 ``max_event_tags`` / ``max_content_length``: at the limit stored, one more ``invalid:``."""
        limits = self.model.limits
        tags = self._tags(True, None)
        content = ""
        if what == "tags":
            tags += [["y", str(i)] for i in range(limits.max_event_tags - len(tags) + over)]
        else:
            content = "z" * (limits.max_content_length + over)
        event = self._sign(author, 1, 0, tags, content)
        assert len(orjson.dumps(["EVENT", event.to_dict()])) < limits.max_message_length
        self._publish(self._client(c), event)

    # -- REQ, CLOSE, COUNT ---------------------------------------------------------------------

    @rule(data=st.data(), c=client_index, sub_id=st.sampled_from(SUB_IDS))
    def req(self, data: st.DataObject, c: int, sub_id: str) -> None:
        filters = data.draw(st.lists(self._filters(), min_size=1, max_size=3))
        self._req(self._client(c), sub_id, filters)

    @rule(c=client_index, over=st.booleans())
    def req_at_subid_limit(self, c: int, over: bool) -> None:
        """NIP-11 ``max_subid_length``: an id that long opens, one character more is ``CLOSED invalid:``."""
        sub_id = "L" * (self.model.limits.max_subid_length + over)
        self._req(self._client(c), sub_id, [{"#t": [self.tag], "limit": 2}])

    @precondition(lambda self: not self._filled)
    @rule(c=client_index)
    def fill_subscriptions(self, c: int) -> None:
        """NIP-11 ``max_subscriptions``: open up to the limit, one more is ``CLOSED rate-limited:``,
        replacing an open one is still allowed; then CLOSE them all."""
        self._filled = True  # once per example: it is 2 x max_subscriptions messages
        client = self._client(c)
        room = self.model.limits.max_subscriptions - len(self.model.subs[client.no])
        flt = {"authors": [self.nobody], "limit": 0}
        ids = [f"fill-{client.no}-{i}" for i in range(room)]
        for sub_id in ids:
            client.send(["REQ", sub_id, flt])
            assert self.model.req(client.no, sub_id, [flt]).opens
        got = [client.recv() for _ in ids]
        assert got == [["EOSE", sub_id] for sub_id in ids]
        self._req(client, "one-too-many", [flt])  # the model predicts CLOSED rate-limited:
        self._req(client, ids[0], [flt])  # a replacement
        self.stats_agree()
        # Close them again, so later REQs on this connection are not all refused.
        for sub_id in ids:
            client.send(["CLOSE", sub_id])
            self.model.close(client.no, sub_id)
        assert client.sync() == []

    @rule(data=st.data(), c=client_index)
    def close(self, data: st.DataObject, c: int) -> None:
        """CLOSE (an open id or not); the sync round trip proves it was handled: nothing may follow."""
        client = self._client(c)
        open_ids = sorted(s for s in self.model.subs[client.no] if not s.startswith("fill-"))
        sub_id = data.draw(st.sampled_from(sorted({*SUB_IDS, *open_ids})))
        client.send(["CLOSE", sub_id])
        self.model.close(client.no, sub_id)
        got = client.sync()
        assert got == [], f"client {client.no}: CLOSE {sub_id} was followed by {got}"

    @precondition(lambda self: any(s in SUB_IDS for subs in self.model.subs.values() for s in subs))
    @rule(c=client_index, p=client_index, author=author_index, offset=offsets)
    def close_while_publishing(self, c: int, p: int, author: int, offset: int) -> None:
        """CLOSE and, without waiting, a matching-ish publish elsewhere: the event reaches the closed
        subscription at most once, before the CLOSE's round trip, and never afterwards."""
        closer = next(
            cl
            for cl in itertools.islice(itertools.cycle(self.clients.values()), c, c + MAX_CLIENTS)
            if any(s in SUB_IDS for s in self.model.subs[cl.no])
        )
        sub_id = next(s for s in SUB_IDS if s in self.model.subs[closer.no])
        publisher = self._client(p)
        event = self._sign(author, 1, offset, self._tags(True, None))
        closer.send(["CLOSE", sub_id])
        self.model.close(closer.no, sub_id)
        racing = {closer.no: sub_id} if publisher is not closer else None
        self._publish(publisher, event, racing_close=racing)

    @rule(data=st.data(), c=client_index)
    def count(self, data: st.DataObject, c: int) -> None:
        """NIP-45 COUNT: the model's count (``limit`` does not apply)."""
        self._count(self._client(c), data.draw(st.lists(self._filters(), min_size=1, max_size=3)))

    def _count(self, client: Client, filters: list[dict[str, Any]]) -> None:
        self._serial += 1
        query_id = f"n{self._serial}"
        t0 = time.time()
        client.send(["COUNT", query_id, *filters])
        answer, before = client.read_until(lambda m: m[0] in ("COUNT", "CLOSED") and m[1] == query_id)
        t1 = time.time()
        assert before == [], f"client {client.no}: unexpected {before} before the COUNT answer"
        counts = [self.model.count(filters, t) for t in self.model.moments(t0, t1)]
        self._note_expired(filters, t0)
        assert answer[0] == "COUNT" and answer[2]["count"] in counts, (
            f"COUNT {filters}: {answer}, want {counts}"
        )

    # -- after every step -----------------------------------------------------------------------

    @invariant()
    def whole_example_agrees(self) -> None:
        """The newest events of this example (a REQ for all its authors, ``limit`` 20) and the count
        of all of them agree with the model. The ``store`` subscription on the first connection
        stays open, so it checks live delivery too."""
        first = next(iter(self.clients.values()))
        everything = {"authors": list(self.authors)}
        self._req(first, "store", [{**everything, "limit": 20}])
        self._count(first, [everything])

    @invariant()
    def stats_agree(self) -> None:
        """``/stats`` lists, for each of our connections, exactly the subscriptions the model holds."""
        with urllib.request.urlopen(self.relay.http_url + "stats", timeout=10) as response:
            stats = orjson.loads(response.read())
        by_port = {int(conn["remote"].rsplit(":", 1)[1]): conn for conn in stats["connections"]}
        for no, client in self.clients.items():
            conn = by_port.get(client.port)
            assert conn is not None, f"client {no} (port {client.port}) is missing from /stats"
            relay_view = conn["subscriptions"]
            model_view = self.model.subs[no]
            assert sorted(relay_view) == sorted(model_view), f"client {no}: /stats subscriptions differ"
            for sub_id, filters in model_view.items():
                if not sub_id.startswith("fill-"):
                    assert relay_view[sub_id] == _normal(filters), f"client {no}: {sub_id} filters differ"


# A passing CI run takes about a minute; a failing one also shrinks (Hypothesis stops after 5 min).
@pytest.mark.timeout(900 if _PROFILE == "ci" else 3600)
def test_relay_matches_the_nip01_model_over_real_sockets(relay_process: RelayProcess) -> None:
    # To replay a failure, put the @reproduce_failure(...) line it printed on new_machine.
    def new_machine() -> RelaySocketMachine:
        return RelaySocketMachine(relay_process)

    COVERAGE.clear()
    run_state_machine_as_test(new_machine, settings=SETTINGS)  # type: ignore[no-untyped-call]
    missing = [label for label in MUST_SEE if not COVERAGE[label]]
    assert not missing, f"the examples never reached {missing}; they saw {dict(COVERAGE)}"
