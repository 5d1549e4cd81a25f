"""Signature checks of a batch of EVENT messages, and the helper process that runs them.

:func:`check_signatures` is the costly half of verifying a published event (libsecp256k1, ~30 us
each), pure and thread-safe. :func:`main` is the loop of the relay's signature process
(``python -m relaysim.nostr.signatures``, started by :mod:`relaysim.relay.verifier`): it lives in
this small module so that the process imports only the nostr core and orjson (~0.1 s, ~12 MB),
not the relay.

The pipe protocol, in and out, is length-prefixed (4 bytes, big-endian): the process says
:data:`READY` once, then for each batch reads a count and that many raw messages, and answers with
the JSON list of ``[id, pubkey, sig]`` triples whose signature verifies.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from typing import IO

import orjson

from relaysim.nostr.event import signature_verifies

__all__ = [
    "READY",
    "Signed",
    "check_signatures",
    "encode_batch",
    "framed",
    "main",
    "read_exact",
    "read_length",
]

#: (id, pubkey, sig) of events whose signature was checked ahead, off the event loop.
Signed = frozenset[tuple[str, str, str]]
READY = b"R"


def check_signatures(messages: Sequence[bytes]) -> Signed:
    """(id, pubkey, sig) of each EVENT message among ``messages`` whose BIP-340 signature verifies.

    The I/O layer runs it off the event loop for a batch of EVENTs, then hands the set to
    :meth:`~relaysim.relay.core.RelayCore.receive`, which still checks each id against its content
    and the limits, in order, on the event loop. Anything malformed is simply left out:
    ``receive`` judges it as usual.
    """
    good = []
    for data in messages:
        try:
            event = orjson.loads(data)[1]
            triple = (event["id"], event["pubkey"], event["sig"])
        except (orjson.JSONDecodeError, IndexError, KeyError, TypeError):
            continue
        event_id, pubkey, sig = triple
        if all(isinstance(v, str) for v in triple) and signature_verifies(pubkey, event_id, sig):
            good.append(triple)
    return frozenset(good)


def framed(data: bytes) -> bytes:
    """``data`` behind its 4-byte big-endian length: one item of the pipe protocol."""
    return len(data).to_bytes(4, "big") + data


def encode_batch(messages: Sequence[bytes]) -> bytes:
    """A batch as the relay writes it to the process: the count, then each message framed."""
    return b"".join([len(messages).to_bytes(4, "big"), *map(framed, messages)])


def read_exact(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return data


def read_length(stream: IO[bytes]) -> int:
    return int.from_bytes(read_exact(stream, 4), "big")


def main() -> None:
    """The helper process: say it is ready, then check each batch on stdin until the pipe closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    with contextlib.suppress(EOFError, OSError, KeyboardInterrupt):
        stdout.write(READY)
        stdout.flush()
        while True:
            messages = [read_exact(stdin, read_length(stdin)) for _ in range(read_length(stdin))]
            answer = orjson.dumps(list(check_signatures(messages)))
            stdout.write(framed(answer))
            stdout.flush()


if __name__ == "__main__":
    main()
