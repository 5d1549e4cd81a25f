"""The peer bench's own pieces work (bench/peers.py): frame scanner, do-nothing endpoint, answer checker.

The bench itself (installing peers, minutes of load) is not part of the suite; these check that the
parts it trusts to measure and to judge do what they say, with no peer installed: the Python loops
and the compiled generator (fastload.c), each against both do-nothing endpoints, and the fallback
to Python when no C compiler is there.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from peerbench import check, fastload, rows  # noqa: E402
from peerbench.nullrelay import server_frame  # noqa: E402
from peerbench.wsraw import FrameScanner, client_frame  # noqa: E402

from relaysim.nostr.event import Event, sign_event  # noqa: E402
from relaysim.relay import RelayConfig, open_relay  # noqa: E402

pytestmark = pytest.mark.timeout(60)

SK = bytes.fromhex("11" * 32)


def _events(n: int, tags: list[list[str]] | None = None) -> list[Event]:
    return [
        sign_event(SK, created_at=1_700_000_000 + i, kind=1, content=f"n{i}", tags=tags or [], aux=b"\0" * 32)
        for i in range(n)
    ]


def test_scanner_counts_messages_split_anywhere_and_of_every_length_form() -> None:
    payloads = [b'["EVENT","s",' + b'{"x":"' + b"a" * size + b'"}]' for size in (10, 200, 70_000)] + [
        b'["EOSE","s"]',
        b'["OK","id",true,""]',
    ]
    stream = b"".join(server_frame(p) for p in payloads) + b"\x89\x00"  # and a ping, skipped
    for step in (1, 7, 4096, len(stream)):
        scanner = FrameScanner()
        totals = [0, 0, 0]
        for start in range(0, len(stream), step):
            for i, n in enumerate(scanner.feed(stream[start : start + step])):
                totals[i] += n
        assert totals == [3, 1, 1]
        assert scanner.payloads == payloads


def test_client_frames_carry_the_payload_after_a_zero_mask() -> None:
    for size in (5, 300, 70_000):
        payload = b"x" * size
        frame = client_frame(payload)
        assert frame[0] == 0x81 and frame[1] & 0x80  # FIN + text, masked
        assert frame.endswith(b"\0\0\0\0" + payload)


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fastload.c compiled as the bench compiles it (skipped only where there is no C compiler)."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc): the bench falls back to Python, tested below")
    built = fastload.build(tmp_path_factory.mktemp("scratch"))
    assert built.binary is not None, built.description
    return built.binary


def _start_endpoint(kind: str, canned: Path, fast: Path | None) -> tuple[subprocess.Popen[str], int]:
    if kind == "c":
        assert fast is not None
        cmd = fastload.serve_command(fast, 0, canned)
    else:
        cmd = [sys.executable, str(BENCH / "peerbench" / "nullrelay.py"), "0", str(canned)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ready ")
    return proc, int(line.split()[1])


@pytest.fixture(params=["python", "c"])
def null_endpoint(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    """The do-nothing endpoint, nullrelay.py or fastload's, on a free loopback port."""
    canned = tmp_path / "event.json"
    canned.write_bytes(_events(1)[0].json)
    binary = request.getfixturevalue("fast") if request.param == "c" else None
    proc, port = _start_endpoint(request.param, canned, binary)
    yield port
    proc.kill()
    proc.wait(timeout=10)


def test_the_generator_gets_every_answer_from_the_do_nothing_endpoint(null_endpoint: int) -> None:
    events = _events(200)
    published = rows.publish(null_endpoint, events, conns=2, procs=1, deadline=20)
    assert published["complete"] and published["acked"] == 200
    result = check.check_publish(published["payloads"], len(events))
    assert result["ok_true"] == 200
    assert {orjson.loads(p)[1] for p in published["payloads"]} == {ev.id for ev in events}
    answer = rows.query_once(null_endpoint, {"kinds": [1], "limit": 120})
    assert len(check.event_ids(answer)) == 120 and answer[-1].startswith(b'["EOSE"')
    latency = rows.req_latency(null_endpoint, [{"limit": 3}, {"ids": ["a", "b"]}], rounds=10, deadline=10)
    assert latency["queries"] == 10 and [len(a) for a in latency["answers"]] == [4, 3]
    assert rows.alive(null_endpoint)


def test_the_checker_tells_exact_answers_from_short_extra_and_misordered_ones() -> None:
    events = _events(4)
    payloads = [orjson.dumps(["EVENT", "s", ev.to_dict()]) for ev in events]
    newest = [ev.id for ev in reversed(events)]
    answers = [
        list(reversed(payloads)),  # exact
        list(reversed(payloads))[:2],  # short
        list(payloads),  # right ids, wrong order
    ]
    wanted = [newest, newest, newest]
    result = check.check_queries(answers, wanted, [{"limit": 4}] * 3)
    assert result["exact"] == 1
    short, misordered = result["problems"]
    assert (short["missing"], short["extras"], short["order_differs"]) == (2, 0, False)
    assert (misordered["missing"], misordered["extras"], misordered["order_differs"]) == (0, 0, True)
    extra = check.check_queries([list(reversed(payloads))], [newest[:3]], [{"limit": 3}])
    assert extra["problems"][0]["extras"] == 1
    fan = check.check_fanout([2, 2, 1], payloads[:2], [ev.id for ev in events[:2]])
    assert not fan["all_complete"] and fan["short"] == 1 and fan["sample_ids_ok"]


def _read(conn: rows.Blocking, n: int) -> list[bytes]:
    """Read until ``n`` more payloads have arrived on ``conn``; returns them."""
    start = len(conn.scan.payloads)
    while len(conn.scan.payloads) < start + n:
        data = conn.sock.recv(65_536)
        assert data, "the endpoint closed the connection"
        conn.scan.feed(data)
    return conn.scan.payloads[start:]


def _conversation(port: int) -> list[list[bytes]]:
    """REQs, EVENTs and a CLOSE over two connections; what each step got back, in order."""
    a, b = rows.Blocking(port, timeout=10), rows.Blocking(port, timeout=10)
    ev1, ev2 = _events(2)
    steps: list[list[bytes]] = []
    try:
        many = {"ids": [f"{i:x}" for i in range(60_000)]}  # ~14 MB: more than the socket buffers take
        reqs = [
            ("a", {"limit": 3}, 4),
            ("b", {"ids": ["x", "y"], "limit": 9}, 3),
            ("c", {}, 501),
            ("d", many, 60_001),
        ]
        for sub, flt, n in reqs:
            a.sock.sendall(client_frame(orjson.dumps(["REQ", sub, flt])))
            steps.append(_read(a, n))
        b.sock.sendall(client_frame(orjson.dumps(["EVENT", ev1.to_dict()])))
        steps += [_read(b, 1), _read(a, 1)]  # OK to the sender; the event under a's first open sub
        a.sock.sendall(client_frame(orjson.dumps(["CLOSE", "a"])))
        b.sock.sendall(client_frame(orjson.dumps(["EVENT", ev2.to_dict()])))
        steps += [_read(b, 1), _read(a, 1)]  # "a" is closed: now under "b"
    finally:
        a.close()
        b.close()
    return steps


def test_the_c_endpoint_answers_byte_for_byte_as_nullrelay_py(fast: Path, tmp_path: Path) -> None:
    canned = tmp_path / "event.json"
    canned.write_bytes(_events(1)[0].json + b"\n")
    answers = {}
    for kind in ("python", "c"):
        proc, port = _start_endpoint(kind, canned, fast)
        try:
            answers[kind] = _conversation(port)
        finally:
            proc.kill()
            proc.wait(timeout=10)
    assert answers["c"] == answers["python"]
    first, ids, everything, many, ok1, got1, _ok2, got2 = answers["c"]
    assert len(check.event_ids(first)) == 3 and first[-1] == b'["EOSE","a"]'
    assert len(check.event_ids(ids)) == 2 and len(check.event_ids(everything)) == 500
    assert len(check.event_ids(many)) == 60_000 and many[-1] == b'["EOSE","d"]'
    assert orjson.loads(ok1[0])[:3] == ["OK", _events(2)[0].id, True]
    assert orjson.loads(got1[0])[:2] == ["EVENT", "a"] and orjson.loads(got2[0])[:2] == ["EVENT", "b"]


@pytest.mark.parametrize("receivers", ["python", "c"])
def test_fanout_counts_every_delivery_and_keeps_answers_to_check(
    receivers: str, null_endpoint: int, request: pytest.FixtureRequest
) -> None:
    events = _events(3, tags=[["t", "fan-test"]])
    result = rows.fanout(
        null_endpoint,
        events[:2],
        events[2:],
        conns=70,  # over 64: fastload's endpoint shares the sends out among its threads
        procs=2,
        tag="fan-test",
        rss=lambda: 0,
        deadline=20,
        fast=request.getfixturevalue("fast") if receivers == "c" else None,
    )
    assert (result["connections"], result["eoses"]) == (70, 70)
    assert result["deliveries"] == [3] * 70
    verdict = check.check_fanout(result["deliveries"], result["sample"], [ev.id for ev in events])
    assert verdict["all_complete"] and verdict["sample_ids_ok"]
    assert sorted(check.event_ids(result["sample"])) == sorted([ev.id for ev in events] * 70)
    assert len(result["last_delivery_all_ms"]) == 2 and result["sustained_deliveries_per_s"] > 0
    # Send times (here) and arrival times (in the receivers, C or Python) are on one clock: a
    # different clock would put the deliveries before the send or hours after it.
    assert time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)"
    assert all(0 < ms < 20_000 for ms in result["last_delivery_all_ms"])


def test_the_c_large_req_reader_gets_the_whole_answer(null_endpoint: int, fast: Path) -> None:
    result = rows.big_req(null_endpoint, {"kinds": [1], "limit": 300}, rounds=2, deadline=20, fast=fast)
    assert result["rounds"] == 2 and result["per_s"] > 0
    assert len(check.event_ids(result["answer"])) == 300 and result["answer"][-1] == b'["EOSE","big0"]'


async def test_the_c_generator_reads_a_real_relay(fast: Path) -> None:
    """relaysim itself (a strict websocket server) accepts fastload's handshake and frames."""
    stored = _events(60)
    fan = [
        sign_event(SK, created_at=1_800_000_000 + i, kind=1, content="f", tags=[["t", "fan"]], aux=b"\0" * 32)
        for i in range(3)
    ]
    async with open_relay(RelayConfig(events=stored)) as relay:

        def run() -> tuple[dict[str, Any], dict[str, Any]]:
            big = rows.big_req(relay.port, {"kinds": [1], "limit": 50}, rounds=2, deadline=20, fast=fast)
            spread = rows.fanout(
                relay.port, fan[:2], fan[2:], conns=20, tag="fan", rss=lambda: 0, deadline=20, fast=fast
            )
            return big, spread

        with trio.fail_after(60):
            big, spread = await trio.to_thread.run_sync(run)
    assert check.event_ids(big["answer"]) == [ev.id for ev in reversed(stored)][:50]
    assert spread["deliveries"] == [3] * 20 and spread["eoses"] == 20
    verdict = check.check_fanout(spread["deliveries"], spread["sample"], [ev.id for ev in fan])
    assert verdict["all_complete"] and verdict["sample_ids_ok"]


def test_the_c_receivers_fail_with_the_reason_when_nothing_listens(fast: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connecting is refused
        with pytest.raises(fastload.FastloadError, match="connect to port"):
            rows.fanout(port, _events(1), [], conns=3, procs=1, tag="x", rss=lambda: 0, deadline=5, fast=fast)


def test_without_a_c_compiler_the_generator_is_the_python_one(tmp_path: Path) -> None:
    missing = fastload.build(tmp_path, compiler="no-such-cc")
    assert missing.binary is None and not missing.compiled
    assert missing.description.startswith("Python") and "no-such-cc" in missing.description
    failing = fastload.build(tmp_path, compiler="false")  # a "compiler" that fails
    assert failing.binary is None and failing.description.startswith("Python")
    assert list(tmp_path.iterdir()) == []


def test_the_binary_is_rebuilt_when_the_source_changes(
    fast: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    again = fastload.build(fast.parent)
    assert again.binary == fast  # same source: the built binary is reused
    changed = tmp_path / "fastload.c"
    changed.write_bytes(fastload.SOURCE.read_bytes() + b"\n/* changed */\n")
    monkeypatch.setattr(fastload, "SOURCE", changed)
    rebuilt = fastload.build(fast.parent)
    assert rebuilt.binary is not None and rebuilt.binary != fast and rebuilt.binary.is_file()
