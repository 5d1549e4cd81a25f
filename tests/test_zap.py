"""relaysim.nostr.zap: NIP-57 request and receipt tags, and the receipt check a client makes.

Every receipt here is built from a really signed request and really signed by a zapper key; the
rejection cases re-sign what they change, so each one fails for the reason it names and no other.
"""

from __future__ import annotations

import hashlib

import orjson
import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.errors import InvalidEvent
from relaysim.nostr import Event, Keypair, sign_event
from relaysim.nostr.bolt11 import decode_invoice, encode_invoice
from relaysim.nostr.zap import (
    RECEIPT_TAG_ORDER,
    lnurl_encode,
    read_zap_receipt,
    zap_receipt_tags,
    zap_request_tags,
)

SENDER = Keypair(hashlib.sha256(b"zap-test/sender").digest())
ZAPPER = Keypair(hashlib.sha256(b"zap-test/zapper").digest())
NODE = hashlib.sha256(b"zap-test/node").digest()
RECIPIENT = Keypair(hashlib.sha256(b"zap-test/recipient").digest()).pubkey
NOTE = hashlib.sha256(b"zap-test/note").hexdigest()
RELAY = "ws://127.0.0.1:7447/"
PREIMAGE = hashlib.sha256(b"zap-test/preimage").digest()
AUX = bytes(32)


def _request(amount_msat: int = 21_000) -> Event:
    tags = zap_request_tags(
        relays=[RELAY], amount_msat=amount_msat, recipient=RECIPIENT, event_id=NOTE, kind=1
    )
    return sign_event(SENDER, created_at=1_700_000_000, kind=9734, tags=tags, content="great post", aux=AUX)


def _receipt(tags: list[list[str]], created_at: int = 1_700_000_005) -> Event:
    return sign_event(ZAPPER, created_at=created_at, kind=9735, tags=tags, aux=AUX)


def _replace(tags: list[list[str]], name: str, value: str) -> list[list[str]]:
    return [[name, value] if tag[0] == name else tag for tag in tags]


# -- the request ----------------------------------------------------------------------------


def test_request_tags_follow_the_order_of_nip57s_example() -> None:
    tags = zap_request_tags(
        relays=["wss://a/", "wss://b/"],
        amount_msat=21_000,
        recipient=RECIPIENT,
        event_id=NOTE,
        kind=1,
        lnurl="lnurl1xyz",
    )
    assert tags == [
        ["relays", "wss://a/", "wss://b/"],
        ["amount", "21000"],
        ["lnurl", "lnurl1xyz"],
        ["p", RECIPIENT],
        ["e", NOTE],
        ["k", "1"],
    ]


def test_a_profile_zap_request_has_no_e_k_or_lnurl() -> None:
    tags = zap_request_tags(relays=[RELAY], amount_msat=1000, recipient=RECIPIENT)
    assert tags == [["relays", RELAY], ["amount", "1000"], ["p", RECIPIENT]]


def test_lnurl_encode_matches_the_lud01_example() -> None:
    url = "https://service.com/api?q=3fc3645b439ce8e7f2553a69e5267081d96dcd340693afabe04be7b0ccd178df"
    assert lnurl_encode(url).upper() == (
        "LNURL1DP68GURN8GHJ7UM9WFMXJCM99E3K7MF0V9CXJ0M385EKVCENXC6R2C35XVUKXEFCV5MKVV34X5EKZD3EV56NYD3HXQ"
        "URZEPEXEJXXEPNXSCRVWFNV9NXZCN9XQ6XYEFHVGCXXCMYXYMNSERXFQ5FNS"
    )


# -- the receipt ----------------------------------------------------------------------------


@settings(max_examples=25)
@given(amount=st.integers(1, 10**12), preimage=st.binary(min_size=32, max_size=32))
def test_receipt_bolt11_amount_and_description_hash_match_the_request(amount: int, preimage: bytes) -> None:
    request = _request(amount)
    tags = zap_receipt_tags(request, node_secret=NODE, preimage=preimage)
    receipt = _receipt(tags)
    invoice = decode_invoice(receipt.first_tag_value("bolt11") or "")
    assert invoice.amount_msat == amount == int(request.first_tag_value("amount") or "")
    assert receipt.first_tag_value("description") == request.json.decode()
    assert invoice.description_hash == hashlib.sha256(request.json).digest()
    assert invoice.payment_hash == hashlib.sha256(preimage).digest()
    assert invoice.timestamp == request.created_at
    assert invoice.payee == PrivateKey(NODE).public_key.format()
    zap = read_zap_receipt(receipt)
    assert (zap.request, zap.amount_msat) == (request, amount)


def test_receipt_reference_tags_follow_the_order_asked_for() -> None:
    request = _request()
    names = [tag[0] for tag in zap_receipt_tags(request, node_secret=NODE, preimage=PREIMAGE)]
    assert RECEIPT_TAG_ORDER == ("p", "P", "e", "a", "k")
    assert names == ["p", "P", "e", "k", "bolt11", "description", "preimage"]  # no 'a' in the request
    tags = zap_receipt_tags(request, node_secret=NODE, preimage=PREIMAGE, order=("p", "e", "P"))
    assert tags[:3] == [["p", RECIPIENT], ["e", NOTE], ["P", SENDER.pubkey]]


def test_receipt_of_a_profile_zap_has_no_e() -> None:
    tags = zap_request_tags(relays=[RELAY], amount_msat=5000, recipient=RECIPIENT)
    request = sign_event(SENDER, created_at=1, kind=9734, tags=tags, aux=AUX)
    receipt = _receipt(zap_receipt_tags(request, node_secret=NODE, preimage=PREIMAGE))
    assert receipt.first_tag_value("e") is None
    assert read_zap_receipt(receipt).amount_msat == 5000


def test_receipt_tags_refuse_what_is_not_a_zap_request() -> None:
    note = sign_event(SENDER, created_at=1, kind=1, tags=[["amount", "1000"]], aux=AUX)
    with pytest.raises(ValueError, match="kind-9734 request, not kind 1"):
        zap_receipt_tags(note, node_secret=NODE, preimage=PREIMAGE)
    no_amount = sign_event(SENDER, created_at=1, kind=9734, tags=[["p", RECIPIENT]], aux=AUX)
    with pytest.raises(ValueError, match="no amount"):
        zap_receipt_tags(no_amount, node_secret=NODE, preimage=PREIMAGE)


# -- the client's check (NIP-57 Appendix F) --------------------------------------------------


def _good_tags() -> list[list[str]]:
    return zap_receipt_tags(_request(), node_secret=NODE, preimage=PREIMAGE)


def _other_request_tags() -> list[list[str]]:
    """A receipt whose description is a different (validly signed) request than its invoice's."""
    other = _request(21_000)
    other_json = sign_event(
        SENDER, created_at=other.created_at + 1, kind=9734, tags=other.tags, content="", aux=AUX
    ).json.decode()
    return _replace(_good_tags(), "description", other_json)


def _forged_description_tags() -> list[list[str]]:
    request = _request()
    forged = request.to_dict() | {"content": "changed after signing"}
    return _replace(_good_tags(), "description", orjson.dumps(forged).decode())


def _amount_mismatch_tags() -> list[list[str]]:
    """The invoice is for 1000 msat while the (consistently hashed) request asks for 21000."""
    request = _request(21_000)
    invoice = encode_invoice(
        NODE,
        amount_msat=1000,
        timestamp=request.created_at,
        payment_hash=hashlib.sha256(PREIMAGE).digest(),
        description_hash=hashlib.sha256(request.json).digest(),
    )
    return _replace(zap_receipt_tags(request, node_secret=NODE, preimage=PREIMAGE), "bolt11", invoice)


CASES = {
    "description hash": (_other_request_tags, "description hash is not the sha256"),
    "forged request": (_forged_description_tags, "description is not a signed zap request"),
    "amount": (_amount_mismatch_tags, "bolt11 amount differs"),
    "preimage": (lambda: _replace(_good_tags(), "preimage", "00" * 32), "preimage does not hash"),
    "bad preimage hex": (lambda: _replace(_good_tags(), "preimage", "zz"), "preimage does not hash"),
    "p": (lambda: _replace(_good_tags(), "p", SENDER.pubkey), "'p' tag differs"),
    "e": (lambda: _replace(_good_tags(), "e", "00" * 32), "'e' tag differs"),
    "P": (lambda: _replace(_good_tags(), "P", RECIPIENT), "'P' tag is not the request's author"),
    "bolt11 garbage": (lambda: _replace(_good_tags(), "bolt11", "lnbc1qqqq"), "bolt11 does not decode"),
    "no bolt11": (lambda: [t for t in _good_tags() if t[0] != "bolt11"], "needs a description and a bolt11"),
}


def test_the_good_receipt_passes() -> None:
    assert read_zap_receipt(_receipt(_good_tags())).request == _request()


@pytest.mark.parametrize("case", CASES)
def test_a_receipt_that_breaks_nip57_is_refused_with_its_reason(case: str) -> None:
    make_tags, reason = CASES[case]
    with pytest.raises(InvalidEvent) as info:
        read_zap_receipt(_receipt(make_tags()))
    assert info.value.reason.startswith("invalid: zap receipt ")
    assert reason in info.value.reason
    assert info.value.field == "tags"


def test_only_kind_9735_is_a_receipt() -> None:
    event = sign_event(ZAPPER, created_at=1, kind=9734, tags=_good_tags(), aux=AUX)
    with pytest.raises(InvalidEvent, match="must be kind 9735"):
        read_zap_receipt(event)
