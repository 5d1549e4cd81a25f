"""Deterministic keys and signing for datasets.

Every key in a dataset is a pure function of the spec's seed, a role name and an index:
``sk = sha256(seed || 0x00 || role || 0x00 || index as 4 bytes big-endian)`` reduced into
``[1, n-1]`` (n = the secp256k1 group order). Every signature pins its BIP-340 auxiliary randomness
to ``sha256(seed || 0x00 || "aux" || 0x00 || event number)``. Together that makes a dataset
byte-identical on any machine, and lets the traffic generator sign new events as the same people.

:class:`KeyRing` keeps one :class:`~relaysim.nostr.event.Keypair` per key (made once: that is the
fast path) and signs through :func:`~relaysim.nostr.event.sign_event`, the one signing function.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from relaysim.nostr.event import Event, Keypair, PubKey, compute_id, pubkey_of, sign_event

__all__ = ["SECP256K1_ORDER", "KeyRing", "derive_secret", "viewer_pubkey"]

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _digest(seed: bytes, label: str, index: int) -> bytes:
    return hashlib.sha256(seed + b"\x00" + label.encode() + b"\x00" + index.to_bytes(4, "big")).digest()


def derive_secret(seed: bytes, role: str, index: int) -> bytes:
    """The 32-byte secret key number ``index`` of ``role`` (always a valid secp256k1 scalar)."""
    value = int.from_bytes(_digest(seed, role, index), "big") % (SECP256K1_ORDER - 1) + 1
    return value.to_bytes(32, "big")


@dataclass
class KeyRing:
    """Derives keys for one seed and signs events with pinned aux randomness.

    ``signed=False`` computes real ids but writes an all-zero signature: the cast (which only
    needs ids and keys) is derived that way without paying for thousands of signatures.
    """

    seed: bytes
    signed: bool = True
    _keys: dict[tuple[str, int], Keypair] = field(default_factory=dict, repr=False)
    _counter: int = 0

    ZERO_SIG: ClassVar[str] = "0" * 128

    def key(self, role: str, index: int) -> Keypair:
        found = self._keys.get((role, index))
        if found is None:
            found = self._keys[(role, index)] = Keypair(derive_secret(self.seed, role, index))
        return found

    def sign(
        self, key: Keypair, *, created_at: int, kind: int, tags: Sequence[Sequence[str]], content: str
    ) -> Event:
        """Sign the next event; its aux randomness is fixed by its position in the build."""
        number = self._counter
        self._counter += 1
        if self.signed:
            aux = _digest(self.seed, "aux", number)
            return sign_event(key, created_at=created_at, kind=kind, tags=tags, content=content, aux=aux)
        frozen = tuple(tuple(tag) for tag in tags)
        event_id = compute_id(key.pubkey, created_at, kind, frozen, content)
        return Event(event_id, key.pubkey, created_at, kind, frozen, content, self.ZERO_SIG)


def viewer_pubkey(seed: bytes) -> PubKey:
    """The viewer account's public key for a dataset seed, without building the dataset.

    The relay serves it as ``/viewer.json`` so a client under test knows whose feed to show.
    """
    return pubkey_of(derive_secret(seed, "viewer", 0))
