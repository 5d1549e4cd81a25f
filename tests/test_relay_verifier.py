"""Signature checks in the helper process (relaysim/relay/verifier.py): the same answer as in a
thread, a fallback when the process is gone, and a real relay judging bursts through it."""

from __future__ import annotations

import time

import trio
from relay_client import SK2, connect, signed_note

from relaysim.nostr.event import Event, sign_event
from relaysim.nostr.messages import encode_client_event, encode_req
from relaysim.nostr.signatures import check_signatures
from relaysim.relay import RelayConfig, open_relay
from relaysim.relay.verifier import Verifier, shared_verifier


def batch() -> tuple[list[bytes], frozenset[tuple[str, str, str]]]:
    key = bytes([9]) * 32
    good = [sign_event(key, created_at=1_700_000_000 + i, kind=1, content=str(i)) for i in range(12)]
    bad = Event(good[0].id, good[0].pubkey, good[0].created_at, 1, (), "x", good[1].sig)
    messages = [encode_client_event(e) for e in [*good, bad]] + [b'["EVENT",{}]', b"[1", b'["EVENT"]']
    return messages, frozenset((e.id, e.pubkey, e.sig) for e in good)


def until_in_process(verifier: Verifier, messages: list[bytes], expected: frozenset) -> None:
    deadline = time.monotonic() + 20
    while verifier.batches_in_process == 0:
        assert time.monotonic() < deadline, "the helper process never became ready"
        assert verifier.check(messages) == expected  # in this thread until the process is ready
        time.sleep(0.05)


def test_the_helper_process_answers_as_the_calling_thread_would() -> None:
    messages, expected = batch()
    assert check_signatures(messages) == expected
    verifier = Verifier()
    try:
        until_in_process(verifier, messages, expected)
        before = verifier.batches_in_process
        assert verifier.check(messages) == expected
        assert verifier.check(messages[-4:]) == set()  # the forged one and the garbage
        assert verifier.batches_in_process == before + 2
    finally:
        verifier.close()


def test_a_dead_helper_process_leaves_the_checks_to_the_calling_thread() -> None:
    messages, expected = batch()
    verifier = Verifier()
    try:
        until_in_process(verifier, messages, expected)
        assert verifier._process is not None
        verifier._process.kill()
        verifier._process.wait()
        checked = verifier.batches_in_process
        assert verifier.check(messages) == expected  # the write or the read fails: checked here
        assert verifier.check(messages) == expected
        assert verifier.batches_in_process == checked and verifier._process is None
    finally:
        verifier.close()


async def test_a_relay_judges_bursts_checked_in_the_helper_process() -> None:
    """Bursts until the shared helper process has checked some, then one with a forged event and a
    wrong signature: each EVENT still gets its own OK, in order, and only the real ones are stored."""
    verifier = shared_verifier()
    async with open_relay(RelayConfig()) as relay:
        with trio.fail_after(30):
            client = await connect(relay.url)
            created = 8000
            while True:
                checked = verifier.batches_in_process
                burst = [signed_note(created + i, f"warm {created + i}", sk=SK2) for i in range(10)]
                created += 10
                for event in burst:
                    client.proto.send_text(encode_client_event(event))
                await client._flush()
                answers = [await client.recv_json() for _ in burst]
                assert [a[2] for a in answers] == [True] * 10
                if verifier.batches_in_process > checked:
                    break
                await trio.sleep(0.05)
            good = [signed_note(9000 + i, f"burst {i}", sk=SK2) for i in range(20)]
            forged = Event(good[3].id, good[3].pubkey, good[3].created_at, 1, (), "not signed", good[3].sig)
            fifth = good[5]
            wrong_sig = Event(fifth.id, fifth.pubkey, fifth.created_at, 1, (), fifth.content, good[6].sig)
            burst = [*good[:10], forged, wrong_sig, *good[10:]]
            checked = verifier.batches_in_process
            for event in burst:
                client.proto.send_text(encode_client_event(event))
            await client._flush()
            answers = [await client.recv_json() for _ in burst]
            assert verifier.batches_in_process > checked  # this burst went through the process
            assert [a[1] for a in answers] == [e.id for e in burst]
            assert answers[10] == ["OK", good[3].id, False, "invalid: event id does not match its content"]
            assert answers[11] == ["OK", good[5].id, False, "invalid: signature does not verify"]
            assert [a[2] for a in answers[:10] + answers[12:]] == [True] * 20
            await client.send(encode_req("burst", {"authors": [good[0].pubkey], "since": 9000}))
            events, _ = await client.recv_until_eose("burst")
            assert sorted(e.id for e in events) == sorted(e.id for e in good)
