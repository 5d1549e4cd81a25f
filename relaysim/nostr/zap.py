"""NIP-57 zaps: the tags of a zap request (kind 9734) and of its receipt (kind 9735), and the check
a client makes on a receipt.

Theory of operation: a sender's wallet signs a zap request naming the recipient, the amount and
the relays; the recipient's LNURL server pays nothing here but writes the receipt a client would
see after a payment: the request's JSON as ``description``, a ``bolt11`` invoice whose amount is
the request's and whose description hash is the sha256 of that JSON, and the ``preimage`` whose
sha256 is the invoice's payment hash. Deriving the receipt's tags from the signed request is what
keeps those equalities true by construction; :func:`read_zap_receipt` checks them the way NIP-57
Appendix F asks a client to.

Pure functions of their inputs: the caller signs both events (with :func:`~relaysim.nostr.event.sign_event`
or a dataset's key ring) and chooses the aux randomness and the preimage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from bech32 import bech32_encode, convertbits

from relaysim.errors import InvalidEvent
from relaysim.nostr.bolt11 import DecodedInvoice, decode_invoice, encode_invoice
from relaysim.nostr.event import Event, event_from_json

__all__ = [
    "RECEIPT_TAG_ORDER",
    "ZAP_RECEIPT",
    "ZAP_REQUEST",
    "ZapReceipt",
    "lnurl_encode",
    "read_zap_receipt",
    "zap_receipt_tags",
    "zap_request_tags",
]

ZAP_REQUEST = 9734
ZAP_RECEIPT = 9735
# The receipt's reference tags in the order of NIP-57's example: the recipient, the sender, then
# what the request pointed at. "P" is the request's author; the others are copied from the request.
RECEIPT_TAG_ORDER = ("p", "P", "e", "a", "k")


def lnurl_encode(url: str) -> str:
    """The bech32 ``lnurl`` form of an LNURL-pay URL (LUD-01), as a zap request's ``lnurl`` tag."""
    return bech32_encode("lnurl", convertbits(url.encode(), 8, 5) or [])


def zap_request_tags(
    *,
    relays: Sequence[str],
    amount_msat: int,
    recipient: str,
    event_id: str | None = None,
    kind: int | None = None,
    lnurl: str | None = None,
) -> list[list[str]]:
    """Tags of a kind-9734 zap request (NIP-57 Appendix A), in the order of the NIP's example.

    ``event_id`` and ``kind`` name the zapped event (``e`` and ``k``); leave them out for a zap
    of a profile. ``relays`` are where the receipt is to be published.
    """
    tags = [["relays", *relays], ["amount", str(amount_msat)]]
    if lnurl is not None:
        tags.append(["lnurl", lnurl])
    tags.append(["p", recipient])
    if event_id is not None:
        tags.append(["e", event_id])
    if kind is not None:
        tags.append(["k", str(kind)])
    return tags


def _msat(value: str | None) -> int | None:
    """A whole number of millisats written in plain ASCII digits, or None."""
    return int(value) if value is not None and value.isascii() and value.isdigit() else None


def zap_receipt_tags(
    request: Event,
    *,
    node_secret: bytes,
    preimage: bytes,
    order: Sequence[str] = RECEIPT_TAG_ORDER,
) -> list[list[str]]:
    """Tags of the kind-9735 receipt for a signed ``request`` (NIP-57 Appendix E).

    The ``bolt11`` invoice is signed by ``node_secret`` and dated at the request's ``created_at``;
    its amount is the request's ``amount`` and its description hash the sha256 of the request's
    JSON, which the receipt carries as ``description``. ``order`` places the reference tags (see
    :data:`RECEIPT_TAG_ORDER`); a name the request has no tag for is left out.
    """
    if request.kind != ZAP_REQUEST:
        raise ValueError(f"a zap receipt answers a kind-{ZAP_REQUEST} request, not kind {request.kind}")
    amount = _msat(request.first_tag_value("amount"))
    if amount is None:
        raise ValueError("the zap request has no amount in millisats to put in the invoice")
    description = request.json.decode()
    invoice = encode_invoice(
        node_secret,
        amount_msat=amount,
        timestamp=request.created_at,
        payment_hash=hashlib.sha256(preimage).digest(),
        description_hash=hashlib.sha256(request.json).digest(),
    )
    tags = []
    for name in order:
        value = request.pubkey if name == "P" else request.first_tag_value(name)
        if value is not None:
            tags.append([name, value])
    tags += [["bolt11", invoice], ["description", description], ["preimage", preimage.hex()]]
    return tags


@dataclass(frozen=True)
class ZapReceipt:
    """A receipt that passed :func:`read_zap_receipt`: its signed request and its decoded invoice."""

    receipt: Event
    request: Event
    invoice: DecodedInvoice

    @property
    def amount_msat(self) -> int:
        return self.invoice.amount_msat


def _invalid(why: str) -> InvalidEvent:
    return InvalidEvent(f"invalid: zap receipt {why}", "tags")


def _sha256_of_hex(text: str) -> bytes | None:
    try:
        return hashlib.sha256(bytes.fromhex(text)).digest()
    except ValueError:
        return None


def read_zap_receipt(receipt: Event) -> ZapReceipt:
    """Check a kind-9735 receipt as NIP-57 Appendix F asks a client to, and return its parts.

    Checks: the ``description`` is a validly signed kind-9734 request; the ``bolt11`` invoice
    decodes (checksum and signature), its amount equals the request's ``amount`` and its
    description hash is the sha256 of the ``description``; a ``preimage`` hashes to the payment
    hash; the receipt's ``p``, ``e``, ``a`` and ``P`` agree with the request. Whether the receipt's
    author is the recipient's LNURL server is the caller's to check (it knows that key).
    Raises :class:`~relaysim.errors.InvalidEvent` naming the first thing that is wrong.
    """
    if receipt.kind != ZAP_RECEIPT:
        raise _invalid(f"must be kind {ZAP_RECEIPT}, not {receipt.kind}")
    description = receipt.first_tag_value("description")
    bolt11 = receipt.first_tag_value("bolt11")
    if description is None or bolt11 is None:
        raise _invalid("needs a description and a bolt11 tag")
    try:
        request = event_from_json(description)
    except InvalidEvent as exc:
        raise _invalid(f"description is not a signed zap request ({exc.reason})") from exc
    if request.kind != ZAP_REQUEST:
        raise _invalid(f"description must be a kind-{ZAP_REQUEST} request, not kind {request.kind}")
    try:
        invoice = decode_invoice(bolt11)
    except ValueError as exc:
        raise _invalid(f"bolt11 does not decode ({exc})") from exc
    amount = request.first_tag_value("amount")
    if amount is not None and _msat(amount) != invoice.amount_msat:
        raise _invalid("bolt11 amount differs from the request's amount")
    if invoice.description_hash != hashlib.sha256(description.encode()).digest():
        raise _invalid("bolt11 description hash is not the sha256 of the description")
    preimage = receipt.first_tag_value("preimage")
    if preimage is not None and _sha256_of_hex(preimage) != invoice.payment_hash:
        raise _invalid("preimage does not hash to the bolt11 payment hash")
    for name in ("p", "e", "a"):
        if receipt.first_tag_value(name) != request.first_tag_value(name):
            raise _invalid(f"'{name}' tag differs from the request's")
    if receipt.first_tag_value("P") not in (None, request.pubkey):
        raise _invalid("'P' tag is not the request's author")
    return ZapReceipt(receipt, request, invoice)
