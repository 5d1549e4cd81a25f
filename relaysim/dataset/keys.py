"""Deterministic keys and signing for datasets.

Every key in a dataset is a pure function of the spec's seed, a role name and an index:
``sk = sha256(seed || 0x00 || role || 0x00 || index as 4 bytes big-endian)`` reduced into
``[1, n-1]`` (n = the secp256k1 group order). Every signature pins its BIP-340 auxiliary randomness
to ``sha256(seed || 0x00 || "aux" || 0x00 || event number)``. Together that makes a dataset
byte-identical on any machine, and lets the traffic generator sign new events as the same people.

:class:`KeyRing` keeps one ``coincurve.PrivateKey`` per key, and one libsecp256k1 keypair.
``PrivateKey.sign_schnorr`` rebuilds the keypair and then verifies its own signature on every
call, which is two thirds of its cost; signing straight through coincurve's cffi binding with the
cached keypair gives the same bytes (BIP-340 is deterministic for a given aux) about three times
faster. The tests check those bytes against ``sign_event`` and verify every event of seed1.
If coincurve ever moves its binding, signing falls back to ``sign_schnorr``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

from coincurve import PrivateKey

try:  # coincurve's own cffi binding of libsecp256k1 (not a public API: see the fallback below)
    from coincurve._libsecp256k1 import ffi as _ffi
    from coincurve._libsecp256k1 import lib as _lib
except ImportError:  # pragma: no cover - other coincurve layouts
    _ffi = _lib = None

from relaysim.nostr.event import Event, EventId, PubKey, Tags, compute_id, pubkey_of

__all__ = ["SECP256K1_ORDER", "Key", "KeyRing", "derive_secret"]

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _digest(seed: bytes, label: str, index: int) -> bytes:
    return hashlib.sha256(seed + b"\x00" + label.encode() + b"\x00" + index.to_bytes(4, "big")).digest()


def derive_secret(seed: bytes, role: str, index: int) -> bytes:
    """The 32-byte secret key number ``index`` of ``role`` (always a valid secp256k1 scalar)."""
    value = int.from_bytes(_digest(seed, role, index), "big") % (SECP256K1_ORDER - 1) + 1
    return value.to_bytes(32, "big")


@dataclass(frozen=True)
class Key:
    """One signing identity: its secret, its x-only public key and the cached coincurve objects."""

    secret: bytes
    pubkey: PubKey
    private: PrivateKey = field(repr=False, compare=False)
    keypair: Any = field(default=None, repr=False, compare=False)  # secp256k1_keypair*, or None

    def sign_schnorr(self, message: bytes, aux: bytes) -> bytes:
        """BIP-340 signature of a 32-byte message with pinned aux randomness."""
        if self.keypair is None:
            return self.private.sign_schnorr(message, aux)
        signature = _ffi.new("unsigned char[64]")
        if not _lib.secp256k1_schnorrsig_sign32(
            self.private.context.ctx, signature, message, self.keypair, aux
        ):
            raise ValueError("libsecp256k1 refused to sign")  # only with an invalid keypair
        return bytes(_ffi.buffer(signature))


def _keypair(private: PrivateKey) -> Any:
    if _lib is None:
        return None
    keypair = _ffi.new("secp256k1_keypair *")
    if not _lib.secp256k1_keypair_create(private.context.ctx, keypair, private.secret):
        return None
    return keypair


@dataclass
class KeyRing:
    """Derives keys for one seed and signs events with pinned aux randomness.

    ``signed=False`` computes real ids but writes an all-zero signature: the cast (which only
    needs ids and keys) is derived that way without paying for thousands of signatures.
    """

    seed: bytes
    signed: bool = True
    _keys: dict[tuple[str, int], Key] = field(default_factory=dict, repr=False)
    _counter: int = 0

    ZERO_SIG: ClassVar[str] = "0" * 128

    def key(self, role: str, index: int) -> Key:
        found = self._keys.get((role, index))
        if found is None:
            secret = derive_secret(self.seed, role, index)
            private = PrivateKey(secret)
            keypair = _keypair(private) if self.signed else None
            found = Key(secret, PubKey(private.public_key_xonly.format().hex()), private, keypair)
            self._keys[(role, index)] = found
        return found

    def sign(self, key: Key, *, created_at: int, kind: int, tags: Tags, content: str) -> Event:
        """Sign the next event; its aux randomness is fixed by its position in the build."""
        aux = _digest(self.seed, "aux", self._counter)
        self._counter += 1
        event_id = compute_id(key.pubkey, created_at, kind, tags, content)
        sig = key.sign_schnorr(bytes.fromhex(event_id), aux).hex() if self.signed else self.ZERO_SIG
        return Event(EventId(event_id), key.pubkey, created_at, kind, tags, content, sig)


def viewer_pubkey(seed: bytes) -> PubKey:
    """The viewer account's public key for a dataset seed, without building the dataset.

    The relay serves it as ``/viewer.json`` so a client under test knows whose feed to show.
    """
    return pubkey_of(derive_secret(seed, "viewer", 0))
