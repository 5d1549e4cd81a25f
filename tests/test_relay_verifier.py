"""Signature checks in the helper process (relaysim/relay/verifier.py): the same answer as in a
thread, a fallback when the process is gone, and a real relay judging bursts through it."""

from __future__ import annotations

import time

import trio
from relay_client import SK2, assert_forged_burst_judged, connect, send_burst, signed_note

from relaysim.nostr.event import Event, sign_event
from relaysim.nostr.messages import encode_client_event
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
                assert [a[2] for a in await send_burst(client, burst)] == [True] * 10
                if verifier.batches_in_process > checked:
                    break
                await trio.sleep(0.05)
            checked = verifier.batches_in_process
            await assert_forged_burst_judged(client, since=9000, n=20)
            assert verifier.batches_in_process > checked  # that burst went through the process
