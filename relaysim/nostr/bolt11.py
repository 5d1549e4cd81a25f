"""Minimal BOLT-11 invoices for zap receipts (NIP-57 Appendix E).

A zap receipt MUST carry a ``bolt11`` invoice whose amount equals the zap request's ``amount``
(NIP-57 Appendix F). Clients read that amount from the invoice, some with full decoders that
check the bech32 checksum and recover the payee from the signature. So relaysim's zap receipts
(:mod:`relaysim.nostr.zap`) carry real, well-formed invoices: amount in the human-readable part,
timestamp, payment hash (``p``), description hash (``h``, the sha256 of the zap request JSON) and
a recoverable ECDSA signature by a node key. Nothing is ever paid; the invoices only have to parse.

Pure functions; deterministic (RFC 6979 nonces), so the same inputs give the same invoice.
"""

from __future__ import annotations

from dataclasses import dataclass

from bech32 import CHARSET, bech32_create_checksum, bech32_verify_checksum, convertbits
from coincurve import PrivateKey, PublicKey

__all__ = ["DecodedInvoice", "decode_invoice", "encode_invoice", "hrp_amount"]

_MSAT_PER_UNIT = (("m", 100_000_000), ("u", 100_000), ("n", 100))  # BTC multipliers, in msat
_TAG_PAYMENT_HASH = 1
_TAG_DESCRIPTION_HASH = 23
_TAG_EXPIRY = 6


@dataclass(frozen=True)
class DecodedInvoice:
    """What :func:`decode_invoice` found in an invoice."""

    amount_msat: int
    timestamp: int
    payment_hash: bytes
    description_hash: bytes
    payee: bytes  # 33-byte compressed public key recovered from the signature


def hrp_amount(amount_msat: int) -> str:
    """The amount part of the human-readable prefix: the largest multiplier that is exact."""
    if amount_msat <= 0:
        raise ValueError("an invoice amount must be positive")
    if amount_msat % 100_000_000_000 == 0:
        return str(amount_msat // 100_000_000_000)
    for unit, msat in _MSAT_PER_UNIT:
        if amount_msat % msat == 0:
            return f"{amount_msat // msat}{unit}"
    # pico-bitcoin: 0.1 msat each; BOLT-11 requires the last digit to be 0.
    return f"{amount_msat * 10}p"


def _int_to_groups(value: int, count: int) -> list[int]:
    return [(value >> (5 * (count - 1 - i))) & 31 for i in range(count)]


def _tagged(tag: int, data: bytes) -> list[int]:
    groups = convertbits(data, 8, 5, True) or []
    return [tag, *_int_to_groups(len(groups), 2), *groups]


def encode_invoice(
    node_secret: bytes,
    *,
    amount_msat: int,
    timestamp: int,
    payment_hash: bytes,
    description_hash: bytes,
    expiry: int = 3600,
) -> str:
    """A signed mainnet (``lnbc``) invoice for ``amount_msat``."""
    hrp = "lnbc" + hrp_amount(amount_msat)
    data = _int_to_groups(timestamp, 7)
    data += _tagged(_TAG_PAYMENT_HASH, payment_hash)
    data += _tagged(_TAG_DESCRIPTION_HASH, description_hash)
    expiry_groups = _int_to_groups(expiry, 4)
    data += [_TAG_EXPIRY, *_int_to_groups(len(expiry_groups), 2), *expiry_groups]
    signed_bytes = hrp.encode() + bytes(convertbits(data, 5, 8, True) or [])
    signature = PrivateKey(node_secret).sign_recoverable(signed_bytes)  # r || s || recovery id
    data += convertbits(signature, 8, 5, True) or []
    checksum = bech32_create_checksum(hrp, data)
    return hrp + "1" + "".join(CHARSET[g] for g in data + checksum)


def _parse_amount(hrp: str) -> int:
    if not hrp.startswith("lnbc"):
        raise ValueError(f"not a mainnet invoice prefix: {hrp!r}")
    amount = hrp[4:]
    if not amount:
        raise ValueError("invoice has no amount")
    multipliers = {"m": 100_000_000, "u": 100_000, "n": 100}
    if amount[-1] == "p":
        return int(amount[:-1]) // 10
    if amount[-1] in multipliers:
        return int(amount[:-1]) * multipliers[amount[-1]]
    return int(amount) * 100_000_000_000


def decode_invoice(invoice: str) -> DecodedInvoice:
    """Check the checksum and signature of an invoice and return its fields (for tests and tools)."""
    invoice = invoice.lower()
    hrp, sep, rest = invoice.rpartition("1")
    if not sep:
        raise ValueError("not bech32: no separator")
    data = [CHARSET.index(c) for c in rest]
    if not bech32_verify_checksum(hrp, data):
        raise ValueError("bad bech32 checksum")
    data = data[:-6]
    body, sig_groups = data[:-104], data[-104:]
    signature = bytes(convertbits(sig_groups, 5, 8, False) or [])
    signed_bytes = hrp.encode() + bytes(convertbits(body, 5, 8, True) or [])
    payee = PublicKey.from_signature_and_message(signature, signed_bytes).format()
    timestamp = int("".join(f"{g:05b}" for g in body[:7]), 2)
    fields: dict[int, bytes] = {}
    pos = 7
    while pos < len(body):
        if pos + 3 > len(body):
            raise ValueError("truncated tagged field")
        tag, length = body[pos], body[pos + 1] * 32 + body[pos + 2]
        groups = body[pos + 3 : pos + 3 + length]
        fields[tag] = bytes(convertbits(groups, 5, 8, False) or []) if length == 52 else b""
        pos += 3 + length
    return DecodedInvoice(
        amount_msat=_parse_amount(hrp),
        timestamp=timestamp,
        payment_hash=fields.get(_TAG_PAYMENT_HASH, b""),
        description_hash=fields.get(_TAG_DESCRIPTION_HASH, b""),
        payee=payee,
    )
