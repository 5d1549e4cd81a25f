"""BIP-340 signing with a precomputed libsecp256k1 keypair: the fast path of every signature.

Why this exists: ``coincurve.PrivateKey`` computes two public keys when it is made, and its
``sign_schnorr`` rebuilds the libsecp256k1 keypair and then verifies its own signature on every
call; together that is about three times the cost of the signature itself. A dataset build signs
tens of thousands of events with a few hundred keys, so :class:`NativeKey` makes the keypair once
(one scalar multiplication, which also yields the x-only public key) and signs straight through
coincurve's cffi binding. BIP-340 is deterministic for a given aux, so the bytes are the ones
``PrivateKey.sign_schnorr`` gives (the tests check that).

coincurve's binding is not a public API: if it moves, :class:`NativeKey` falls back to
``PrivateKey`` and stays correct, only slower.
"""

from __future__ import annotations

import importlib
from typing import Any

from coincurve import PrivateKey
from coincurve.context import GLOBAL_CONTEXT

_ffi: Any = None
_lib: Any = None
try:  # coincurve's own cffi binding of libsecp256k1 (see the fallback above); it has no stubs
    _binding = importlib.import_module("coincurve._libsecp256k1")
    _ffi, _lib = _binding.ffi, _binding.lib
except (ImportError, AttributeError):  # pragma: no cover - other coincurve layouts
    pass

__all__ = ["NativeKey"]


class NativeKey:
    """A secp256k1 secret key ready to sign: its x-only public key and its keypair, computed once."""

    __slots__ = ("_keypair", "_private", "xonly")

    xonly: bytes  # the 32-byte x-only public key (BIP-340)

    def __init__(self, secret: bytes, *, native: bool = True) -> None:
        """Raises ValueError unless ``secret`` is 32 bytes and a valid scalar in [1, n-1]."""
        if len(secret) != 32:
            raise ValueError("a secret key must be exactly 32 bytes")
        self._keypair: Any = None
        self._private: PrivateKey | None = None
        if native and _lib is not None:
            ctx = GLOBAL_CONTEXT.ctx
            keypair = _ffi.new("secp256k1_keypair *")
            if not _lib.secp256k1_keypair_create(ctx, keypair, secret):
                raise ValueError("the secret key is not a valid secp256k1 scalar")
            point = _ffi.new("secp256k1_xonly_pubkey *")
            out = _ffi.new("unsigned char[32]")
            _lib.secp256k1_keypair_xonly_pub(ctx, point, _ffi.NULL, keypair)
            _lib.secp256k1_xonly_pubkey_serialize(ctx, out, point)
            self._keypair = keypair
            self.xonly = bytes(out)
        else:
            self._private = PrivateKey(secret)
            self.xonly = self._private.public_key_xonly.format()

    def sign_schnorr(self, message: bytes, aux: bytes) -> bytes:
        """The 64-byte BIP-340 signature of a 32-byte ``message`` with 32 bytes of ``aux``."""
        if len(message) != 32 or len(aux) != 32:
            raise ValueError("BIP-340 signs a 32-byte message with 32 bytes of aux randomness")
        if self._private is not None:
            return self._private.sign_schnorr(message, aux)
        signature = _ffi.new("unsigned char[64]")
        if not _lib.secp256k1_schnorrsig_sign32(GLOBAL_CONTEXT.ctx, signature, message, self._keypair, aux):
            raise ValueError("libsecp256k1 refused to sign")  # only with an invalid keypair
        return bytes(_ffi.buffer(signature))
