"""relaysim.nostr.bolt11: the invoices zap receipts carry encode and decode with every field intact."""

from __future__ import annotations

import hashlib

import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.nostr.bolt11 import decode_invoice, encode_invoice, hrp_amount

NODE = b"\x01" * 32


def _invoice(**overrides: object) -> str:
    fields: dict = {"amount_msat": 1000, "timestamp": 1, "payment_hash": b"\0" * 32}
    fields["description_hash"] = b"\1" * 32
    fields.update(overrides)
    return encode_invoice(NODE, **fields)


@pytest.mark.parametrize(
    ("msat", "hrp"),
    [(1_000, "10n"), (21_000, "210n"), (100_000, "1u"), (5_000_000, "50u"), (100_000_000, "1m"),
     (100_000_000_000, "1"), (150, "1500p"), (1, "10p")],
)  # fmt: skip
def test_invoice_amount_prefix(msat: int, hrp: str) -> None:
    assert hrp_amount(msat) == hrp
    invoice = _invoice(amount_msat=msat)
    assert invoice.startswith(f"lnbc{hrp}1")
    assert decode_invoice(invoice).amount_msat == msat


def test_amount_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        hrp_amount(0)


@settings(max_examples=40)
@given(
    msat=st.integers(1, 21_000_000 * 100_000_000_000),
    timestamp=st.integers(0, 2**35 - 1),
    payment=st.binary(min_size=32, max_size=32),
    description=st.binary(min_size=32, max_size=32),
)
def test_every_field_round_trips(msat: int, timestamp: int, payment: bytes, description: bytes) -> None:
    decoded = decode_invoice(
        _invoice(amount_msat=msat, timestamp=timestamp, payment_hash=payment, description_hash=description)
    )
    assert (decoded.amount_msat, decoded.timestamp) == (msat, timestamp)
    assert (decoded.payment_hash, decoded.description_hash) == (payment, description)
    assert decoded.payee == PrivateKey(NODE).public_key.format()


def test_the_same_inputs_give_the_same_invoice() -> None:
    assert _invoice(description_hash=hashlib.sha256(b"x").digest()) == _invoice(
        description_hash=hashlib.sha256(b"x").digest()
    )


def test_invoice_checksum_is_checked() -> None:
    invoice = _invoice()
    broken = invoice[:-1] + ("q" if invoice[-1] != "q" else "p")
    with pytest.raises(ValueError, match="bad bech32 checksum"):
        decode_invoice(broken)


@pytest.mark.parametrize("text", ["lnbc10n", "lnbc10n1", "lnbc10n1qqqqqqqqqqqqqq", "nope1qqqqqqqqqq"])
def test_garbage_raises_only_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        decode_invoice(text)
