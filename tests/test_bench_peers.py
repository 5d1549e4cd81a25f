"""The peer bench's own pieces work (bench/peers.py): frame scanner, do-nothing endpoint, answer checker.

The bench itself (installing peers, minutes of load) is not part of the suite; these check that the
parts it trusts to measure and to judge do what they say, with no peer installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from peerbench import check, rows  # noqa: E402
from peerbench.nullrelay import server_frame  # noqa: E402
from peerbench.wsraw import FrameScanner, client_frame  # noqa: E402

from relaysim.nostr.event import Event, sign_event  # noqa: E402

pytestmark = pytest.mark.timeout(60)

SK = bytes.fromhex("11" * 32)


def _events(n: int) -> list[Event]:
    return [
        sign_event(SK, created_at=1_700_000_000 + i, kind=1, content=f"n{i}", aux=b"\0" * 32)
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


@pytest.fixture
def null_endpoint(tmp_path: Path):
    canned = tmp_path / "event.json"
    canned.write_bytes(_events(1)[0].json)
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "peerbench" / "nullrelay.py"), "0", str(canned)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ready ")
    yield int(line.split()[1])
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
