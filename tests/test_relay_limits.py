"""What the relay promises about limits, checked over real sockets (issue 12, "Security, verified").

* Every limit the NIP-11 document advertises is the one enforced: for each field of
  ``limitation`` the value is read from the served document and tried at its boundary (exactly the
  limit passes, one more is refused with its NIP-01 prefix or close code), for a relay with small
  limits and for one with the defaults. A field without a check here fails the test, so a new
  advertised limit cannot go untested.
* Nothing a client sends is evaluated: the relay's packages call no ``eval``/``exec``/``pickle``/
  shell, start processes only with a fixed command (the signature checker), and text that means
  something to Python's formatting or to a template engine comes back byte for byte.
* A client that never reads costs the relay at most 20 MB, measured as the RSS of a ``relaysim
  serve`` process (its exact peak, ``VmHWM``), and is told why it is dropped.
"""

from __future__ import annotations

import ast
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
from relay_client import SK1, WsClient, bulk_events, connect, http_request, signed_note
from relay_process import serve_process, write_dataset

import relaysim
from relaysim.nostr.event import sign_event
from relaysim.nostr.messages import encode_client_event, encode_close, encode_count_request, encode_req
from relaysim.relay import Limits, Relay, RelayConfig, open_relay

SMALL = Limits(
    max_message_length=4096,
    max_subscriptions=4,
    max_limit=10,
    default_limit=3,
    max_subid_length=8,
    max_filters=3,
    max_event_tags=5,
    max_content_length=50,
)
DEFAULT = Limits()


async def nip11(relay: Relay) -> dict[str, Any]:
    status, headers, body = await http_request(relay.http_url, headers={"Accept": "application/nostr+json"})
    assert status == 200 and headers["content-type"].startswith("application/nostr+json")
    doc: dict[str, Any] = orjson.loads(body)
    return doc


async def sync_point(client: WsClient, sub_id: str = "z") -> list[Any]:
    """REQ that matches nothing, read to its EOSE: everything sent before has been answered."""
    await client.send(encode_req(sub_id, {"ids": []}))
    events, others = await client.recv_until_eose(sub_id)
    assert events == []
    await client.send(encode_close(sub_id))
    return others


async def publish(client: WsClient, **fields: Any) -> list[Any]:
    event = sign_event(SK1, **{"created_at": 2_000_000, "kind": 1, "tags": (), "content": "", **fields})
    await client.send(encode_client_event(event))
    answer: list[Any] = await client.recv_json()
    assert answer[:2] == ["OK", event.id], answer
    return answer


# -- one check per advertised field: exactly the limit passes, one more is refused ---------------


async def check_max_message_length(relay: Relay, client: WsClient, n: int) -> None:
    def message(size: int) -> bytes:
        head, tail = b'["CLOSE","x"', b"]"
        return head + b" " * (size - len(head) - len(tail)) + tail  # valid JSON, no answer

    await client.send(message(n))
    assert await sync_point(client) == []
    await client.send(message(n + 1))
    code, reason = await client.wait_closed()
    assert code == 1009 and reason


async def check_max_subscriptions(relay: Relay, client: WsClient, n: int) -> None:
    for i in range(n):
        await client.send(encode_req(f"s{i}", {"limit": 0}))
        await client.recv_until_eose(f"s{i}")
    await client.send(encode_req("one-more", {"limit": 0}))
    answer = await client.recv_json()
    assert answer[:2] == ["CLOSED", "one-more"] and answer[2].startswith("rate-limited:"), answer
    await client.send(encode_req("s0", {"limit": 1}))  # replacing an open id is always allowed
    events, _ = await client.recv_until_eose("s0")
    assert len(events) == 1


async def check_max_filters(relay: Relay, client: WsClient, n: int) -> None:
    await client.send(encode_req("f", *[{"limit": 0}] * n))
    await client.recv_until_eose("f")
    await client.send(encode_req("f", *[{"limit": 0}] * (n + 1)))
    answer = await client.recv_json()
    assert answer[:2] == ["CLOSED", "f"] and answer[2].startswith("invalid:"), answer
    assert "f" not in relay.stats()["connections"][0]["subscriptions"]  # the refused id is closed
    await client.send(encode_count_request("c", *[{"kinds": [1]}] * n))
    assert (await client.recv_json())[:2] == ["COUNT", "c"]
    await client.send(encode_count_request("c", *[{"kinds": [1]}] * (n + 1)))
    answer = await client.recv_json()
    assert answer[:2] == ["CLOSED", "c"] and answer[2].startswith("invalid:"), answer


async def check_max_limit(relay: Relay, client: WsClient, n: int) -> None:
    assert len(relay.store) > n
    await client.send(encode_req("l", {"limit": n + 1}))
    events, _ = await client.recv_until_eose("l")
    assert len(events) == n  # NIP-11: clamped silently


async def check_default_limit(relay: Relay, client: WsClient, n: int) -> None:
    assert len(relay.store) > n
    await client.send(encode_req("d", {"kinds": [1]}))
    events, _ = await client.recv_until_eose("d")
    assert len(events) == n


async def check_max_subid_length(relay: Relay, client: WsClient, n: int) -> None:
    await client.send(encode_req("i" * n, {"limit": 0}))
    await client.recv_until_eose("i" * n)
    await client.send(encode_req("i" * (n + 1), {"limit": 0}))
    answer = await client.recv_json()
    assert answer[:2] == ["CLOSED", "i" * (n + 1)] and answer[2].startswith("invalid:"), answer


async def check_max_event_tags(relay: Relay, client: WsClient, n: int) -> None:
    tags = tuple(("t", str(i)) for i in range(n + 1))
    assert (await publish(client, tags=tags[:n], created_at=2_000_001))[2] is True
    ok = await publish(client, tags=tags, created_at=2_000_002)
    assert ok[2] is False and ok[3].startswith("invalid:"), ok


async def check_max_content_length(relay: Relay, client: WsClient, n: int) -> None:
    # Characters, not bytes (NIP-11): "é" is two bytes in UTF-8.
    assert (await publish(client, content="é" * n, created_at=2_000_003))[2] is True
    ok = await publish(client, content="é" * (n + 1), created_at=2_000_004)
    assert ok[2] is False and ok[3].startswith("invalid:"), ok


async def check_open_writes(relay: Relay, client: WsClient, flag: bool) -> None:
    """auth_required, payment_required, restricted_writes: all False, so anyone may publish."""
    assert flag is False
    stranger = bytes(range(40, 72))
    event = sign_event(stranger, created_at=2_000_005, kind=1, tags=(), content="anyone")
    await client.send(encode_client_event(event))
    assert await client.recv_json() == ["OK", event.id, True, ""]


Check = Callable[[Relay, WsClient, Any], Awaitable[None]]
CHECKS: dict[str, Check] = {
    "max_message_length": check_max_message_length,
    "max_subscriptions": check_max_subscriptions,
    "max_filters": check_max_filters,
    "max_limit": check_max_limit,
    "default_limit": check_default_limit,
    "max_subid_length": check_max_subid_length,
    "max_event_tags": check_max_event_tags,
    "max_content_length": check_max_content_length,
    "auth_required": check_open_writes,
    "payment_required": check_open_writes,
    "restricted_writes": check_open_writes,
}


def relay_config(limits: Limits) -> RelayConfig:
    # More stored kind-1 events than max_limit, so the clamp and default_limit show.
    return RelayConfig(events=bulk_events(limits.max_limit + 1, content_size=20), limits=limits)


async def test_every_advertised_limit_has_a_check_here():
    async with open_relay(relay_config(SMALL)) as relay:
        limitation = (await nip11(relay))["limitation"]
    assert set(limitation) == set(CHECKS), "a NIP-11 limitation field without an enforcement check"


@pytest.mark.parametrize("limits", [SMALL, DEFAULT], ids=["small", "default"])
@pytest.mark.parametrize("name", sorted(CHECKS))
async def test_the_advertised_limit_is_the_one_enforced(limits: Limits, name: str):
    async with open_relay(relay_config(limits)) as relay:
        with trio.fail_after(30):
            value = (await nip11(relay))["limitation"][name]
            client = await connect(relay.url)
            await CHECKS[name](relay, client, value)
            if not client.eof:
                await client.close()
        assert relay.stats()["totals"]["connection_errors"] == 0


# -- nothing a client sends is evaluated ----------------------------------------------------------

# Calls that would run or load what a peer sent. The relay reads JSON with orjson and nothing else.
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__", "breakpoint", "input"}
FORBIDDEN_ATTRIBUTES = {
    "os": {"system", "popen", "execv", "execve", "execvp", "spawnv", "spawnl", "startfile"},
    "ast": {"literal_eval"},
    "importlib": {"import_module"},  # allowed with a literal module name only (nostr/_secp.py)
}
FORBIDDEN_MODULES = {"pickle", "marshal", "shelve", "yaml", "dill", "jsonpickle", "code"}
PEER_FACING = ("relay", "nostr", "store")
# A process may be started only with a fixed command: ``subprocess.X([...])`` whose list holds
# string constants and ``sys.executable``, no ``shell``; ``from subprocess import`` hides the calls.


def _fixed_command(call: ast.Call) -> bool:
    if not call.args or not isinstance(call.args[0], ast.List | ast.Tuple):
        return False
    for item in call.args[0].elts:
        is_executable = ast.unparse(item) == "sys.executable"
        if not (is_executable or (isinstance(item, ast.Constant) and isinstance(item.value, str))):
            return False
    return all(k.arg != "shell" for k in call.keywords)


def evaluating_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for each import or call in ``tree`` that could evaluate a peer's text."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            found += [(node.lineno, f"imports {n}") for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "subprocess":
                found.append((node.lineno, "imports from subprocess"))
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
                found.append((node.lineno, f"calls {func.id}()"))
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                module, name = func.value.id, func.attr
                literal = all(isinstance(arg, ast.Constant) for arg in node.args)
                if name in FORBIDDEN_ATTRIBUTES.get(module, ()) and not (name == "import_module" and literal):
                    found.append((node.lineno, f"calls {module}.{name}()"))
                if module == "subprocess" and not _fixed_command(node):
                    found.append((node.lineno, f"calls subprocess.{name}() without a fixed command"))
    return found


def test_the_peer_facing_packages_evaluate_nothing():
    root = Path(relaysim.__file__).parent
    found = []
    for package in PEER_FACING:
        for path in sorted((root / package).rglob("*.py")):
            for line, what in evaluating_calls(ast.parse(path.read_text(), str(path))):
                found.append(f"{path.relative_to(root)}:{line} {what}")
    assert found == []
    # The check itself sees what it looks for.
    sample = "import pickle\nimport importlib\neval(x)\nos.system(c)\nimportlib.import_module(name)\n"
    assert [line for line, _ in evaluating_calls(ast.parse(sample))] == [1, 3, 4, 5]
    sample = (
        "import subprocess\n"
        "subprocess.Popen([sys.executable, '-m', 'relaysim.relay.verifier'], stdin=PIPE)\n"
        "subprocess.run(['sh', '-c', text])\n"
        "subprocess.run('ls', shell=True)\n"
        "subprocess.Popen([sys.executable, '-c', 'x'], shell=False)\n"
        "from subprocess import Popen\n"
        "subprocess.getoutput(command)\n"
    )
    assert sorted(line for line, _ in evaluating_calls(ast.parse(sample))) == [3, 4, 5, 6, 7]


TRICKS = [
    "{0.__class__.__mro__}",
    "%(x)s %s %n",
    "{{7*7}} ${7*7} #{7*7} <%= 7*7 %>",
    "${jndi:ldap://127.0.0.1/a}",
    "__import__('os').system('false')",
    "'; DROP TABLE events; --",
    "\u202e\u0000\ufeff",
]


async def test_what_a_client_sends_comes_back_byte_for_byte_never_evaluated():
    async with open_relay(RelayConfig()) as relay:
        with trio.fail_after(20):
            client = await connect(relay.url)
            for i, trick in enumerate(TRICKS):
                event = sign_event(SK1, created_at=3_000_000 + i, kind=1, tags=(("t", trick),), content=trick)
                await client.send(encode_client_event(event))
                assert await client.recv_json() == ["OK", event.id, True, ""]
                await client.send(encode_req("q", {"ids": [event.id]}))
                got = await client.recv()
                assert got == b'["EVENT","q",' + event.json + b"]"  # the stored bytes, unchanged
                await client.recv_until_eose("q")
                # A subscription id is echoed as given, even in a refusal that quotes a limit.
                long_id = (trick * 100)[:100]
                await client.send(encode_req(long_id, {"limit": 0}))
                answer = await client.recv_json()
                assert answer[:2] == ["CLOSED", long_id] and answer[2].startswith("invalid:")
                # An unknown verb is named in a NOTICE, quoted, not interpreted.
                await client.send(orjson.dumps([trick, 1]))
                notice = await client.recv_json()
                assert notice[0] == "NOTICE" and notice[1].startswith("error:")
            await client.close()
        assert relay.stats()["totals"]["connection_errors"] == 0


# -- a client that never reads --------------------------------------------------------------------

BUDGET_MB = 20
MiB = 1024 * 1024


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


@pytest.fixture
def relay_process(tmp_path: Path):
    """``relaysim serve`` on 6,000 signed notes of ~800 bytes (seed1's size per event)."""
    notes = [signed_note(1_000_000 + i, f"note {i} " + "x" * 500) for i in range(6000)]
    with serve_process(write_dataset(tmp_path / "notes.jsonl", notes)) as relay:
        yield relay.pid, relay.url


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc (Linux)")
def test_a_client_that_never_reads_costs_at_most_20_mb_and_is_told_why(relay_process):
    pid, url = relay_process
    http_url = url.replace("ws://", "http://", 1)

    async def stats() -> dict[str, Any]:
        status, _, body = await http_request(http_url, path="/stats")
        assert status == 200
        doc: dict[str, Any] = orjson.loads(body)
        return doc

    async def main() -> tuple[int, int, list[Any], tuple[int | None, str | None]]:
        await trio.sleep(0.3)
        before = peak = vm_kib(pid, "VmRSS")
        try:  # the kernel's exact peak from here on (Linux >= 4.0); else the samples below
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            exact = True
        except OSError:
            exact = False
        with trio.fail_after(60):
            slow = await connect(url)
            for i in range(200):
                await slow.send(encode_req(f"s{i}", {"limit": 5000}))
            while (await stats())["totals"]["slow_client_disconnects"] == 0:
                peak = max(peak, vm_kib(pid, "VmRSS"))
                await trio.sleep(0.05)
            # Reading at last: what was in flight, then why.
            seen: list[Any] = []
            while True:
                try:
                    msg = await slow.recv()
                except ConnectionError:
                    break
                if not msg.startswith(b'["EVENT"'):
                    seen.append(orjson.loads(msg))
            closed = await slow.wait_closed()
            await slow.stream.aclose()
            if exact:
                peak = max(peak, vm_kib(pid, "VmHWM"))
            # The relay is intact: another client gets its events.
            other = await connect(url)
            await other.send(encode_req("after", {"limit": 5}))
            events, _ = await other.recv_until_eose("after")
            assert len(events) == 5
            await other.close()
            assert (await stats())["totals"]["connection_errors"] == 0
        return before, peak, seen, closed

    before, peak, seen, (code, reason) = trio.run(main)
    grew = (peak - before) / 1024
    print(f"relay RSS {before / 1024:.0f} MB before, peak +{grew:.1f} MB; told {seen[-1:]} {code} {reason!r}")
    assert grew <= BUDGET_MB, f"a client that never reads made the relay grow {grew:.1f} MB"
    assert code == 1008 and reason is not None and reason.startswith("client is not reading")
    notices = [m for m in seen if m[0] == "NOTICE"]
    assert notices and notices[-1][1] == f"error: closing the connection: {reason}"
