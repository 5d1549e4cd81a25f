"""Tests of relaysim.nostr.event: NIP-01 id serialisation, BIP-340 signatures, field validation."""

from __future__ import annotations

import hashlib
import json

import orjson
import pytest
from coincurve import PrivateKey, PublicKeyXOnly
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.errors import InvalidEvent
from relaysim.nostr import (
    Event,
    Keypair,
    KindClass,
    compute_id,
    event_from_json,
    kind_class,
    parse_event,
    pubkey_of,
    serialize_for_id,
    sign_event,
    verify_event,
)
from relaysim.nostr._secp import NativeKey

SECRET = bytes.fromhex("67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa")
AUX = bytes(32)

# Text without lone surrogates (category Cs): everything JSON-in-UTF-8 can carry, including
# control characters, quotes, backslashes, U+2028/2029, non-characters and astral emoji.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
tags_strategy = st.lists(st.lists(text, max_size=4), max_size=5)


def stdlib_serialisation(pubkey, created_at, kind, tags, content) -> bytes:
    """The oracle NIP-01 describes, written with the standard library only."""
    return json.dumps(
        [0, pubkey, created_at, kind, tags, content], separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


@settings(max_examples=300)
@given(
    pubkey=hex64,
    created_at=st.integers(0, 2**53 - 1),
    kind=st.integers(0, 65535),
    tags=tags_strategy,
    content=text,
)
def test_id_serialisation_matches_stdlib_oracle(pubkey, created_at, kind, tags, content):
    expected = stdlib_serialisation(pubkey, created_at, kind, tags, content)
    assert serialize_for_id(pubkey, created_at, kind, tags, content) == expected
    assert compute_id(pubkey, created_at, kind, tags, content) == hashlib.sha256(expected).hexdigest()


def test_id_serialisation_of_nip01_escapes():
    content = 'a\nb"c\\d\re\tf\bg\fh \u2028 \x01 é 🎉'
    got = serialize_for_id("ab" * 32, 1, 1, [["t", "x\ny"]], content)
    assert got == stdlib_serialisation("ab" * 32, 1, 1, [["t", "x\ny"]], content)
    assert b'a\\nb\\"c\\\\d\\re\\tf\\bg\\fh' in got


@pytest.mark.parametrize(
    ("tags", "content"),
    [([], "lone \ud800 high"), ([], "\udfff"), ([["t", "\udc00"]], "fine")],
)
def test_lone_surrogates_give_exact_invalid_event(tags, content):
    with pytest.raises(InvalidEvent) as info:
        serialize_for_id("ab" * 32, 1, 1, tags, content)
    assert info.value.reason == "invalid: event contains a string that is not valid UTF-8"
    with pytest.raises(InvalidEvent) as info:
        sign_event(SECRET, created_at=1, kind=1, tags=tags, content=content, aux=AUX)
    assert info.value.reason == "invalid: event contains a string that is not valid UTF-8"


# BIP-340 test vectors, bitcoin/bips bip-0340/test-vectors.csv:
# index, secret key, public key, aux_rand, message, signature, verification result.
BIP340_CSV = """\
0,0000000000000000000000000000000000000000000000000000000000000003,F9308A019258C31049344F85F89D5229B531C845836F99B08601F113BCE036F9,0000000000000000000000000000000000000000000000000000000000000000,0000000000000000000000000000000000000000000000000000000000000000,E907831F80848D1069A5371B402410364BDF1C5F8307B0084C55F1CE2DCA821525F66A4A85EA8B71E482A74F382D2CE5EBEEE8FDB2172F477DF4900D310536C0,TRUE
1,B7E151628AED2A6ABF7158809CF4F3C762E7160F38B4DA56A784D9045190CFEF,DFF1D77F2A671C5F36183726DB2341BE58FEAE1DA2DECED843240F7B502BA659,0000000000000000000000000000000000000000000000000000000000000001,243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89,6896BD60EEAE296DB48A229FF71DFE071BDE413E6D43F917DC8DCF8C78DE33418906D11AC976ABCCB20B091292BFF4EA897EFCB639EA871CFA95F6DE339E4B0A,TRUE
2,C90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B14E5C9,DD308AFEC5777E13121FA72B9CC1B7CC0139715309B086C960E18FD969774EB8,C87AA53824B4D7AE2EB035A2B5BBBCCC080E76CDC6D1692C4B0B62D798E6D906,7E2D58D8B3BCDF1ABADEC7829054F90DDA9805AAB56C77333024B9D0A508B75C,5831AAEED7B44BB74E5EAB94BA9D4294C49BCF2A60728D8B4C200F50DD313C1BAB745879A5AD954A72C45A91C3A51D3C7ADEA98D82F8481E0E1E03674A6F3FB7,TRUE
3,0B432B2677937381AEF05BB02A66ECD012773062CF3FA2549E44F58ED2401710,25D1DFF95105F5253C4022F628A996AD3A0D95FBF21D468A1B33F8C160D8F517,FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF,FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF,7EB0509757E246F19449885651611CB965ECC1A187DD51B64FDA1EDC9637D5EC97582B9CB13DB3933705B32BA982AF5AF25FD78881EBB32771FC5922EFC66EA3,TRUE
4,,D69C3509BB99E412E68B0FE8544E72837DFA30746D8BE2AA65975F29D22DC7B9,,4DF3C3F68FCC83B27E9D42C90431A72499F17875C81A599B566C9889B9696703,00000000000000000000003B78CE563F89A0ED9414F5AA28AD0D96D6795F9C6376AFB1548AF603B3EB45C9F8207DEE1060CB71C04E80F593060B07D28308D7F4,TRUE
5,,EEFDEA4CDB677750A420FEE807EACF21EB9898AE79B9768766E4FAA04A2D4A34,,243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89,6CFF5C3BA86C69EA4B7376F31A9BCB4F74C1976089B2D9963DA2E5543E17776969E89B4C5564D00349106B8497785DD7D1D713A8AE82B32FA79D5F7FC407D39B,FALSE
6,,DFF1D77F2A671C5F36183726DB2341BE58FEAE1DA2DECED843240F7B502BA659,,243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89,FFF97BD5755EEEA420453A14355235D382F6472F8568A18B2F057A14602975563CC27944640AC607CD107AE10923D9EF7A73C643E166BE5EBEAFA34B1AC553E2,FALSE
7,,DFF1D77F2A671C5F36183726DB2341BE58FEAE1DA2DECED843240F7B502BA659,,243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89,1FA62E331EDBC21C394792D2AB1100A7B432B013DF3F6FF4F99FCB33E0E1515F28890B3EDB6E7189B630448B515CE4F8622A954CFE545735AAEA5134FCCDB2BD,FALSE
8,,DFF1D77F2A671C5F36183726DB2341BE58FEAE1DA2DECED843240F7B502BA659,,243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89,6CFF5C3BA86C69EA4B7376F31A9BCB4F74C1976089B2D9963DA2E5543E177769961764B3AA9B2FFCB6EF947B6887A226E8D7C93E00C5ED0C1834FF0D0C2E6DA6,FALSE
9,,DFF1D77F2A671C5F36183726DB2341BE58FEAE1DA2DECED843240F7B502BA659,,243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89,0000000000000000000000000000000000000000000000000000000000000000123DDA8328AF9C23A94C1FEECFD123BA4FB73476F0D594DCB65C6425BD186051,FALSE
10,,DFF1D77F2A671C5F36183726DB2341BE58FEAE1DA2DECED843240F7B502BA659,,243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89,00000000000000000000000000000000000000000000000000000000000000017615FBAF5AE28864013C099742DEADB4DBA87F11AC6754F93780D5A1837CF197,FALSE
11,,DFF1D77F2A671C5F36183726DB2341BE58FEAE1DA2DECED843240F7B502BA659,,243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89,4A298DACAE57395A15D0795DDBFD1DCB564DA82B0F269BC70A74F8220429BA1D69E89B4C5564D00349106B8497785DD7D1D713A8AE82B32FA79D5F7FC407D39B,FALSE
12,,DFF1D77F2A671C5F36183726DB2341BE58FEAE1DA2DECED843240F7B502BA659,,243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89,FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F69E89B4C5564D00349106B8497785DD7D1D713A8AE82B32FA79D5F7FC407D39B,FALSE
13,,DFF1D77F2A671C5F36183726DB2341BE58FEAE1DA2DECED843240F7B502BA659,,243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89,6CFF5C3BA86C69EA4B7376F31A9BCB4F74C1976089B2D9963DA2E5543E177769FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,FALSE
14,,FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC30,,243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89,6CFF5C3BA86C69EA4B7376F31A9BCB4F74C1976089B2D9963DA2E5543E17776969E89B4C5564D00349106B8497785DD7D1D713A8AE82B32FA79D5F7FC407D39B,FALSE
"""
BIP340 = [line.split(",") for line in BIP340_CSV.splitlines()]
SIGNING = [row for row in BIP340 if row[1]]
VERIFY_FAIL = [row for row in BIP340 if row[6] == "FALSE"]


def _verify(pubkey_hex: str, sig_hex: str, msg_hex: str) -> bool:
    """The BIP-340 check exactly as verify_event performs it (a bad key counts as a failure)."""
    try:
        return PublicKeyXOnly(bytes.fromhex(pubkey_hex)).verify(
            bytes.fromhex(sig_hex), bytes.fromhex(msg_hex)
        )
    except ValueError:
        return False


def test_bip340_table_is_complete():
    assert [int(row[0]) for row in BIP340] == list(range(15))
    assert [int(row[0]) for row in SIGNING] == [0, 1, 2, 3]
    assert len(VERIFY_FAIL) == 10


@pytest.mark.parametrize("row", SIGNING, ids=lambda row: f"vector{row[0]}")
def test_bip340_signing_vectors(row):
    _, secret, pubkey, aux, message, signature, _ = row
    assert pubkey_of(bytes.fromhex(secret)) == pubkey.lower()
    # The call sign_event makes (the id is the 32-byte message, aux is pinned), through the
    # precomputed keypair, through coincurve's PrivateKey (the fallback), and coincurve itself.
    key = Keypair(bytes.fromhex(secret))
    assert key.pubkey == pubkey.lower()
    msg, aux_bytes = bytes.fromhex(message), bytes.fromhex(aux)
    assert key.sign_schnorr(msg, aux_bytes).hex() == signature.lower()
    fallback = NativeKey(bytes.fromhex(secret), native=False)
    assert fallback.xonly.hex() == pubkey.lower()
    assert fallback.sign_schnorr(msg, aux_bytes).hex() == signature.lower()
    assert PrivateKey(bytes.fromhex(secret)).sign_schnorr(msg, aux_bytes).hex() == signature.lower()
    assert _verify(pubkey, signature, message)


@pytest.mark.parametrize("row", BIP340, ids=lambda row: f"vector{row[0]}")
def test_bip340_verification_vectors(row):
    _, _, pubkey, _, message, signature, result, *_ = row
    assert _verify(pubkey, signature, message) is (result == "TRUE")


@pytest.mark.parametrize("row", VERIFY_FAIL, ids=lambda row: f"vector{row[0]}")
def test_verify_event_rejects_events_carrying_bip340_bad_keys_and_signatures(row):
    """The failing vectors' keys and signatures, put on an event with a correct id."""
    pubkey, signature = row[2].lower(), row[5].lower()
    event_id = compute_id(pubkey, 1, 1, (), "x")
    event = Event(event_id, pubkey, 1, 1, (), "x", signature)
    with pytest.raises(InvalidEvent) as info:
        verify_event(event)
    assert (info.value.reason, info.value.field) == ("invalid: signature does not verify", "sig")


def test_sign_and_verify_event():
    event = sign_event(SECRET, created_at=1700000000, kind=1, tags=[["t", "nostr"]], content="hi", aux=AUX)
    assert event.pubkey == "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"
    assert event.tags == (("t", "nostr"),)
    oracle = stdlib_serialisation(event.pubkey, 1700000000, 1, [["t", "nostr"]], "hi")
    assert event.id == hashlib.sha256(oracle).hexdigest()
    verify_event(event)
    # Pinned aux: the same inputs sign to the same bytes; fresh aux signs differently but validly.
    again = sign_event(SECRET, created_at=1700000000, kind=1, tags=[["t", "nostr"]], content="hi", aux=AUX)
    assert again == event
    fresh = sign_event(SECRET, created_at=1700000000, kind=1, tags=[["t", "nostr"]], content="hi")
    assert fresh.id == event.id and fresh.sig != event.sig
    verify_event(fresh)


def test_sign_event_refuses_short_aux():
    with pytest.raises(ValueError, match="aux must be exactly 32 bytes"):
        sign_event(SECRET, created_at=1, kind=1, aux=b"short")


ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
secret_keys = st.integers(1, ORDER - 1).map(lambda n: n.to_bytes(32, "big"))


@settings(max_examples=30)
@given(secret=secret_keys, aux=st.binary(min_size=32, max_size=32))
def test_a_keypair_signs_exactly_as_its_secret_does(secret, aux):
    key = Keypair(secret)
    assert key.pubkey == pubkey_of(secret) == PrivateKey(secret).public_key_xonly.format().hex()
    fields = {"created_at": 1700000000, "kind": 1, "tags": [["t", "x"]], "content": "hé 🤙", "aux": aux}
    event = sign_event(key, **fields)
    assert event == sign_event(secret, **fields)
    assert bytes.fromhex(event.sig) == PrivateKey(secret).sign_schnorr(bytes.fromhex(event.id), aux)
    verify_event(event)


@pytest.mark.parametrize(
    "secret", [bytes(32), ORDER.to_bytes(32, "big"), b"\xff" * 32, SECRET[:31], SECRET + b"\x00"]
)
@pytest.mark.parametrize("native", [True, False])
def test_keypair_refuses_what_is_not_a_secret_key(secret, native):
    with pytest.raises(ValueError):
        NativeKey(secret, native=native)
    with pytest.raises(ValueError):
        sign_event(secret, created_at=1, kind=1, aux=AUX)


def test_keypair_is_a_value_that_keeps_its_secret_out_of_its_repr():
    key = Keypair(SECRET)
    assert key == Keypair(SECRET) and hash(key) == hash(Keypair(SECRET))
    assert key != Keypair(bytes(31) + b"\x07")
    assert SECRET.hex() not in repr(key) and key.pubkey in repr(key)


@settings(max_examples=60)
@given(tags=tags_strategy, content=text, kind=st.integers(0, 65535), created_at=st.integers(0, 2**40))
def test_signed_events_round_trip_through_wire_json(tags, content, kind, created_at):
    event = sign_event(SECRET, created_at=created_at, kind=kind, tags=tags, content=content, aux=AUX)
    assert orjson.loads(event.json) == event.to_dict()
    assert json.loads(event.json) == event.to_dict()
    assert event_from_json(event.json) == event


def test_tampering_is_detected():
    event = sign_event(SECRET, created_at=1, kind=1, content="original", aux=AUX)
    changed = Event(event.id, event.pubkey, event.created_at, event.kind, event.tags, "changed", event.sig)
    with pytest.raises(InvalidEvent) as info:
        verify_event(changed)
    assert (info.value.reason, info.value.field) == ("invalid: event id does not match its content", "id")
    flipped = ("0" if event.sig[0] != "0" else "1") + event.sig[1:]
    bad_sig = Event(event.id, event.pubkey, event.created_at, event.kind, event.tags, event.content, flipped)
    with pytest.raises(InvalidEvent) as info:
        verify_event(bad_sig)
    assert info.value.reason == "invalid: signature does not verify"
    other_key = pubkey_of(bytes(31) + b"\x07")
    other_id = compute_id(other_key, 1, 1, (), "original")
    with pytest.raises(InvalidEvent) as info:
        verify_event(Event(other_id, other_key, 1, 1, (), "original", event.sig))
    assert info.value.reason == "invalid: signature does not verify"


GOOD = sign_event(
    SECRET, created_at=1700000000, kind=1, tags=[["e", "aa" * 32]], content="x", aux=AUX
).to_dict()


def _with(**changes):
    obj = dict(GOOD)
    for key, value in changes.items():
        if value is _DROP:
            del obj[key]
        else:
            obj[key] = value
    return obj


_DROP = object()

PARSE_CASES = [
    ([], "invalid: event must be a JSON object", None),
    ("event", "invalid: event must be a JSON object", None),
    (_with(id=_DROP), "invalid: event is missing field 'id'", "id"),
    (_with(sig=_DROP, content=_DROP), "invalid: event is missing field 'content'", "content"),
    (_with(id="AB" * 32), "invalid: id must be 64 lowercase hex characters", "id"),
    (_with(id="ab" * 31), "invalid: id must be 64 lowercase hex characters", "id"),
    (_with(id=5), "invalid: id must be 64 lowercase hex characters", "id"),
    (_with(pubkey="zz" * 32), "invalid: pubkey must be 64 lowercase hex characters", "pubkey"),
    (_with(sig="ab" * 32), "invalid: sig must be 128 lowercase hex characters", "sig"),
    (_with(sig=None), "invalid: sig must be 128 lowercase hex characters", "sig"),
    (_with(created_at="1"), "invalid: created_at must be an integer", "created_at"),
    (_with(created_at=1.0), "invalid: created_at must be an integer", "created_at"),
    (_with(created_at=True), "invalid: created_at must be an integer", "created_at"),
    (_with(created_at=-1), "invalid: created_at must be between 0 and 9007199254740991", "created_at"),
    (_with(created_at=2**53), "invalid: created_at must be between 0 and 9007199254740991", "created_at"),
    (_with(kind=65536), "invalid: kind must be between 0 and 65535", "kind"),
    (_with(kind=-1), "invalid: kind must be between 0 and 65535", "kind"),
    (_with(kind=None), "invalid: kind must be an integer", "kind"),
    (_with(tags={}), "invalid: tags must be an array of arrays of strings", "tags"),
    (_with(tags=[["p", 1]]), "invalid: tag 0 must be an array of strings", "tags"),
    (_with(tags=[["t", "a"], "e"]), "invalid: tag 1 must be an array of strings", "tags"),
    (_with(tags=[["t", None]]), "invalid: tag 0 must be an array of strings", "tags"),
    (_with(content=None), "invalid: content must be a string", "content"),
    (_with(content=["x"]), "invalid: content must be a string", "content"),
]


@pytest.mark.parametrize(("obj", "reason", "field"), PARSE_CASES)
def test_parse_event_names_the_bad_field(obj, reason, field):
    with pytest.raises(InvalidEvent) as info:
        parse_event(obj)
    assert info.value.reason == reason
    assert info.value.field == field


def test_parse_event_accepts_empty_tags_and_extra_fields():
    event = parse_event(_with(tags=[[], ["t"]], extra="ignored"))
    assert event.tags == ((), ("t",))


def test_event_from_json_messages():
    with pytest.raises(InvalidEvent) as info:
        event_from_json(b"{not json")
    assert info.value.reason.startswith("invalid: not JSON (")
    with pytest.raises(InvalidEvent) as info:
        event_from_json(orjson.dumps(_with(content="different")))
    assert info.value.reason == "invalid: event id does not match its content"
    assert event_from_json(orjson.dumps(_with(content="different")), verify=False).content == "different"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (0, KindClass.REPLACEABLE),
        (1, KindClass.REGULAR),
        (2, KindClass.REGULAR),
        (3, KindClass.REPLACEABLE),
        (4, KindClass.REGULAR),
        (44, KindClass.REGULAR),
        (45, KindClass.REGULAR),
        (999, KindClass.REGULAR),
        (1000, KindClass.REGULAR),
        (9999, KindClass.REGULAR),
        (10000, KindClass.REPLACEABLE),
        (19999, KindClass.REPLACEABLE),
        (20000, KindClass.EPHEMERAL),
        (29999, KindClass.EPHEMERAL),
        (30000, KindClass.ADDRESSABLE),
        (39999, KindClass.ADDRESSABLE),
        (40000, KindClass.REGULAR),
        (65535, KindClass.REGULAR),
    ],
)
def test_kind_class_boundaries(kind, expected):
    assert kind_class(kind) is expected


def _event(kind=1, tags=()):
    return sign_event(SECRET, created_at=100, kind=kind, tags=tags, aux=AUX)


def test_tag_helpers_and_address():
    event = _event(30023, [["d", "post"], ["d", "second"], ["t", "a"], ["t"], ["t", "b", "extra"]])
    assert event.first_tag_value("d") == "post"
    assert event.d_tag == "post"
    assert event.tag_values("t") == ["a", "b"]
    assert event.first_tag_value("x") is None
    assert event.address == f"30023:{event.pubkey}:post"
    assert _event(30000).address == f"30000:{event.pubkey}:"
    assert _event(0).address == f"0:{event.pubkey}:"
    assert _event(1).address is None
    assert _event(20001).kind_class is KindClass.EPHEMERAL


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1700000000", 1700000000),
        ("0", 0),
        ("soon", None),
        ("", None),
        (" 12", None),
        ("1_000", None),
        ("-5", None),
        ("1e9", None),
        ("١٢", None),
    ],
)
def test_expiration_parsing(value, expected):
    assert _event(tags=[["expiration", value]]).expiration == expected


def test_is_expired_is_inclusive():
    event = _event(tags=[["expiration", "200"]])
    assert not event.is_expired(199.9)
    assert event.is_expired(200)
    assert not _event().is_expired(10**12)
