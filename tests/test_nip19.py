"""Tests of relaysim.nostr.nip19: spec vectors, round trips, exact errors, NIP-21/27 URIs."""

from __future__ import annotations

import bech32
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.nostr import (
    AddressPointer,
    Decoded,
    EventPointer,
    Nip19Error,
    ProfilePointer,
    find_nostr_uris,
    naddr_decode,
    naddr_encode,
    nevent_decode,
    nevent_encode,
    nip19_decode,
    nostr_uri,
    note_decode,
    note_encode,
    nprofile_decode,
    nprofile_encode,
    npub_decode,
    npub_encode,
    nsec_decode,
    nsec_encode,
)

FIATJAF = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d"
NPROFILE = (
    "nprofile1qqsrhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24mayt8gpp4mhxue69uhhytnc9e3k7mgpz4mhxue69"
    "uhkg6nzv9ejuumpv34kytnrdaksjlyr9p"
)
# NIP-21 examples.
NADDR = (
    "naddr1qqyrzwrxvc6ngvfkqyghwumn8ghj7enfv96x5ctx9e3k7mgzyqalp33lewf5vdq847t6te0wvnags0gs0mu72kz8938tn24"
    "wlfze6qcyqqq823cph95ag"
)
NEVENT = (
    "nevent1qqstna2yrezu5wghjvswqqculvvwxsrcvu7uc0f78gan4xqhvz49d9spr3mhxue69uhkummnw3ez6un9d3shjtn4de6x2a"
    "rgwghx6egpr4mhxue69uhkummnw3ez6ur4vgh8wetvd3hhyer9wghxuet5nxnepm"
)
NIP21_NPUB = "npub1sn0wdenkukak0d9dfczzeacvhkrgz92ak56egt7vdgzn8pv2wfqqhrjdv9"
NIP21_NOTE = "note1fntxtkcy9pjwucqwa9mddn7v03wwwsu9j330jj350nvhpky2tuaspk6nqc"


def raw_bech32(hrp: str, payload: bytes) -> str:
    """Encode with the bech32 package directly, to build entities our encoder would refuse."""
    return bech32.bech32_encode(hrp, bech32.convertbits(payload, 8, 5))


def tlv(*entries: tuple[int, bytes]) -> bytes:
    return b"".join(bytes((t, len(v))) + v for t, v in entries)


# --- spec vectors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encode", "decode", "bech", "hex_"),
    [
        # NIP-19 "Examples".
        (
            npub_encode,
            npub_decode,
            "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg",
            "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e",
        ),
        (
            nsec_encode,
            nsec_decode,
            "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5",
            "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa",
        ),
        # fiatjaf's npub: the pubkey inside the spec's nprofile example.
        (
            npub_encode,
            npub_decode,
            "npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6",
            FIATJAF,
        ),
    ],
)
def test_bare_spec_vectors(encode, decode, bech, hex_):
    assert decode(bech) == hex_
    assert encode(hex_) == bech
    assert encode(bytes.fromhex(hex_)) == bech
    assert nip19_decode(bech) == Decoded(bech[: bech.index("1")], hex_)


def test_nprofile_spec_vector():
    pointer = ProfilePointer(FIATJAF, ("wss://r.x.com", "wss://djbas.sadkb.com"))
    assert nprofile_decode(NPROFILE) == pointer
    assert nprofile_encode(FIATJAF, ["wss://r.x.com", "wss://djbas.sadkb.com"]) == NPROFILE
    assert nip19_decode(NPROFILE) == Decoded("nprofile", pointer)


def test_nip21_examples():
    assert naddr_decode(NADDR) == AddressPointer("18ff5416", FIATJAF, 30023, ("wss://fiatjaf.com",))
    assert naddr_encode("18ff5416", FIATJAF, 30023, ["wss://fiatjaf.com"]) == NADDR
    assert naddr_decode(NADDR).address == f"30023:{FIATJAF}:18ff5416"
    pointer = EventPointer(
        "b9f5441e45ca39179320e0031cfb18e34078673dcc3d3e3a3b3a981760aa5696",
        ("wss://nostr-relay.untethr.me", "wss://nostr-pub.wellorder.net"),
    )
    assert nevent_decode(NEVENT) == pointer
    assert nevent_encode(pointer.id, pointer.relays) == NEVENT
    assert npub_encode(npub_decode(NIP21_NPUB)) == NIP21_NPUB
    assert note_encode(note_decode(NIP21_NOTE)) == NIP21_NOTE


def test_upper_case_entities_decode():
    assert npub_decode("NPUB10ELFCS4FR0L0R8AF98JLMGDH9C8TCXJVZ9QKW038JS35MP4DMA8QZVJPTG") == (
        "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"
    )


def test_unknown_tlv_types_are_ignored_and_first_special_wins():
    payload = tlv(
        (9, b"future"),
        (0, bytes.fromhex(FIATJAF)),
        (1, b"wss://a"),
        (0, bytes(32)),
        (200, b""),
        (1, b"wss://b"),
    )
    assert nprofile_decode(raw_bech32("nprofile", payload)) == ProfilePointer(FIATJAF, ("wss://a", "wss://b"))


def test_long_entities_beyond_bip173_90_characters():
    relays = [f"wss://relay{i}.example.com/some/path" for i in range(40)]
    encoded = nprofile_encode(FIATJAF, relays)
    assert 90 < len(encoded) <= 5000
    assert nprofile_decode(encoded) == ProfilePointer(FIATJAF, tuple(relays))
    with pytest.raises(ValueError, match="NIP-19 allows at most 5000"):
        nprofile_encode(FIATJAF, ["wss://" + "r" * 240] * 13)


# --- round trips --------------------------------------------------------------------------------

hex32 = st.binary(min_size=32, max_size=32).map(bytes.hex)
relay_urls = st.lists(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30).filter(lambda s: len(s.encode()) <= 255),
    max_size=4,
).map(tuple)
identifiers = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
kinds32 = st.integers(0, 2**32 - 1)


@settings(max_examples=100)
@given(value=hex32)
def test_bare_round_trips(value):
    for encode, decode, hrp in (
        (npub_encode, npub_decode, "npub"),
        (nsec_encode, nsec_decode, "nsec"),
        (note_encode, note_decode, "note"),
    ):
        encoded = encode(value)
        assert encoded.startswith(hrp + "1")
        assert decode(encoded) == value
        assert nip19_decode(encoded) == Decoded(hrp, value)
        assert bech32.bech32_decode(encoded)[0] == hrp  # the reference decoder agrees


@settings(max_examples=150)
@given(pubkey=hex32, relays=relay_urls)
def test_nprofile_round_trip(pubkey, relays):
    encoded = nprofile_encode(pubkey, relays)
    assert nprofile_decode(encoded) == ProfilePointer(pubkey, relays)
    assert nip19_decode(encoded) == Decoded("nprofile", ProfilePointer(pubkey, relays))


@settings(max_examples=150)
@given(event_id=hex32, relays=relay_urls, author=st.none() | hex32, kind=st.none() | kinds32)
def test_nevent_round_trip(event_id, relays, author, kind):
    encoded = nevent_encode(event_id, relays, author, kind)
    assert nevent_decode(encoded) == EventPointer(event_id, relays, author, kind)
    assert nip19_decode(encoded).type == "nevent"


@settings(max_examples=150)
@given(identifier=identifiers, pubkey=hex32, kind=kinds32, relays=relay_urls)
def test_naddr_round_trip(identifier, pubkey, kind, relays):
    if len(identifier.encode()) > 255:
        return
    encoded = naddr_encode(identifier, pubkey, kind, relays)
    assert naddr_decode(encoded) == AddressPointer(identifier, pubkey, kind, relays)
    assert nip19_decode(encoded) == Decoded("naddr", AddressPointer(identifier, pubkey, kind, relays))


def test_kind_is_big_endian_uint32():
    encoded = nevent_encode("00" * 32, kind=0x01020304)
    _, words = bech32.bech32_decode(encoded)
    payload = bytes(bech32.convertbits(words, 5, 8, False))
    assert payload == tlv((0, bytes(32)), (3, b"\x01\x02\x03\x04"))


# --- errors -------------------------------------------------------------------------------------

NPUB = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg"
PK_BYTES = bytes.fromhex(FIATJAF)

DECODE_ERRORS = [
    (nip19_decode, 5, "invalid: bech32 entity must be a string"),
    (nip19_decode, "", "invalid: bech32 entity has no prefix before the separator '1'"),
    (nip19_decode, "qpzry9x8gf2tvdw0", "invalid: bech32 entity has no prefix before the separator '1'"),
    (nip19_decode, "1qpzry9x8gf2tvdw0", "invalid: bech32 entity has no prefix before the separator '1'"),
    (nip19_decode, "npub1qpzry", "invalid: bech32 entity is too short to hold a checksum"),
    (nip19_decode, "npub1" + "q" * 5000, "invalid: bech32 entity longer than 5000 characters"),
    (
        nip19_decode,
        "npub1 " + NPUB[5:],
        "invalid: bech32 entity contains a character outside printable ASCII",
    ),
    (
        nip19_decode,
        "npub1é" + NPUB[6:],
        "invalid: bech32 entity contains a character outside printable ASCII",
    ),
    (nip19_decode, "Npub" + NPUB[4:], "invalid: bech32 entity mixes upper and lower case"),
    (nip19_decode, NPUB[:-1] + "b", "invalid: bech32 entity contains 'b', not a bech32 character"),
    (nip19_decode, NPUB[:-1] + "q", "invalid: bech32 checksum does not match"),
    (nip19_decode, NPUB[:10] + NPUB[11] + NPUB[10] + NPUB[12:], "invalid: bech32 checksum does not match"),
    (nip19_decode, raw_bech32("nrelay", b"wss://r"), "invalid: unknown NIP-19 prefix 'nrelay'"),
    (nip19_decode, raw_bech32("npub", PK_BYTES[:31]), "invalid: npub must hold 32 bytes, got 31"),
    (nip19_decode, raw_bech32("note", PK_BYTES + b"\x00"), "invalid: note must hold 32 bytes, got 33"),
    (
        nip19_decode,
        # 32 bytes need 52 five-bit words with 4 padding bits; set one of those bits.
        bech32.bech32_encode("npub", [*bech32.convertbits(PK_BYTES, 8, 5)[:-1], 1]),
        "invalid: bech32 data has non-zero or excess padding bits",
    ),
    (npub_decode, nsec_encode(FIATJAF), "invalid: expected npub, got prefix 'nsec'"),
    (note_decode, NPUB, "invalid: expected note, got prefix 'npub'"),
    (nprofile_decode, NPUB, "invalid: expected nprofile, got prefix 'npub'"),
    (nprofile_decode, raw_bech32("nprofile", tlv((1, b"wss://a"))), "invalid: nprofile has no pubkey"),
    (
        nprofile_decode,
        raw_bech32("nprofile", tlv((0, PK_BYTES[:31]))),
        "invalid: nprofile pubkey must be 32 bytes, got 31",
    ),
    (
        nprofile_decode,
        raw_bech32("nprofile", tlv((0, PK_BYTES)) + b"\x01\x09wss"),
        "invalid: nprofile TLV entry of type 1 at byte 34 is cut short",
    ),
    (
        nprofile_decode,
        raw_bech32("nprofile", tlv((0, PK_BYTES)) + b"\x01"),
        "invalid: nprofile TLV entry at byte 34 is cut short",
    ),
    (
        nprofile_decode,
        raw_bech32("nprofile", tlv((0, PK_BYTES), (1, b"wss://\xff"))),
        "invalid: nprofile relay URL is not valid UTF-8",
    ),
    (nevent_decode, raw_bech32("nevent", tlv((2, PK_BYTES))), "invalid: nevent has no event id"),
    (
        nevent_decode,
        raw_bech32("nevent", tlv((0, PK_BYTES), (3, b"\x00\x01"))),
        "invalid: nevent kind must be 4 bytes, got 2",
    ),
    (
        nevent_decode,
        raw_bech32("nevent", tlv((0, PK_BYTES), (2, b"\x01"))),
        "invalid: nevent author must be 32 bytes, got 1",
    ),
    (
        naddr_decode,
        raw_bech32("naddr", tlv((2, PK_BYTES), (3, b"\x00\x00\x75\x87"))),
        "invalid: naddr has no identifier",
    ),
    (
        naddr_decode,
        raw_bech32("naddr", tlv((0, b"d"), (3, b"\x00\x00\x75\x87"))),
        "invalid: naddr has no author",
    ),
    (naddr_decode, raw_bech32("naddr", tlv((0, b"d"), (2, PK_BYTES))), "invalid: naddr has no kind"),
    (
        naddr_decode,
        raw_bech32("naddr", tlv((0, b"\xc3"), (2, PK_BYTES), (3, bytes(4)))),
        "invalid: naddr identifier is not valid UTF-8",
    ),
]


@pytest.mark.parametrize(("decode", "text", "reason"), DECODE_ERRORS)
def test_decode_errors_are_specific(decode, text, reason):
    with pytest.raises(Nip19Error) as info:
        decode(text)
    assert info.value.reason == reason


def test_empty_identifier_is_valid():
    """NIP-01 replaceable events have an empty d tag; naddr carries it as an empty T0."""
    encoded = naddr_encode("", FIATJAF, 10002)
    assert naddr_decode(encoded) == AddressPointer("", FIATJAF, 10002)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: npub_encode("xyz"), "pubkey must be 64 lowercase hex characters"),
        (lambda: npub_encode(FIATJAF.upper()), "pubkey must be 64 lowercase hex characters"),
        (lambda: nsec_encode(b"short"), "secret key must be 32 bytes, got 5"),
        (lambda: note_encode(None), "event id must be 64 lowercase hex characters"),
        (lambda: nprofile_encode(FIATJAF, "wss://one"), "relays must be a sequence of URLs, not one string"),
        (
            lambda: nprofile_encode(FIATJAF, ["wss://" + "x" * 250]),
            "relay URL is 256 bytes; a TLV holds at most 255",
        ),
        (lambda: nevent_encode(FIATJAF, kind=2**32), "kind must be an integer between 0 and 4294967295"),
        (lambda: nevent_encode(FIATJAF, kind=-1), "kind must be an integer between 0 and 4294967295"),
        (lambda: nevent_encode(FIATJAF, author="ab"), "author must be 64 lowercase hex characters"),
        (lambda: naddr_encode("é" * 128, FIATJAF, 30023), "identifier is 256 bytes; a TLV holds at most 255"),
        (lambda: naddr_encode(None, FIATJAF, 30023), "identifier (the d tag) must be a string"),
    ],
)
def test_encode_refuses_bad_values(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


# --- NIP-21 / NIP-27 ----------------------------------------------------------------------------


def test_nostr_uri():
    assert nostr_uri(NPUB) == "nostr:" + NPUB
    assert nostr_uri(NPROFILE.upper()) == "nostr:" + NPROFILE
    with pytest.raises(ValueError, match="NIP-21 forbids nsec"):
        nostr_uri(nsec_encode(FIATJAF))
    with pytest.raises(Nip19Error):
        nostr_uri("npub1garbage")


def test_find_nostr_uris_in_content():
    bad_checksum = NPUB[:-1] + ("q" if NPUB[-1] != "q" else "p")
    nsec = nsec_encode(FIATJAF)
    text = (
        f"gm nostr:{NPUB}, see nostr:{NEVENT}\n"
        f"(nostr:{NADDR}) nostr:{bad_checksum} nostr:{nsec} nostr:{NPUB}b nostr:{NPROFILE}é"
    )
    found = find_nostr_uris(text)
    assert [text[start:end] for start, end, _ in found] == [
        "nostr:" + NPUB,
        "nostr:" + NEVENT,
        "nostr:" + NADDR,
        "nostr:" + NPROFILE,
    ]
    assert [decoded.type for _, _, decoded in found] == ["npub", "nevent", "naddr", "nprofile"]
    assert found[3][2].data == nprofile_decode(NPROFILE)
    assert find_nostr_uris("no references here, nostr: or npub1 alone") == []


@settings(max_examples=100)
@given(
    parts=st.lists(
        st.one_of(
            st.text(st.sampled_from(" .,!?\n()éx🎉"), max_size=6),
            hex32.map(lambda h: ("npub", npub_encode(h))),
            hex32.map(lambda h: ("note", note_encode(h))),
            st.tuples(hex32, relay_urls).map(lambda a: ("nprofile", nprofile_encode(*a))),
            st.tuples(hex32, kinds32).map(lambda a: ("nevent", nevent_encode(a[0], kind=a[1]))),
        ),
        max_size=8,
    )
)
def test_find_nostr_uris_finds_exactly_the_embedded_entities(parts):
    text, expected = "", []
    for part in parts:
        if isinstance(part, tuple):
            # Separate from the previous URI so two entities never fuse into one word.
            text += " "
            start = len(text)
            text += "nostr:" + part[1]
            expected.append((start, len(text), nip19_decode(part[1])))
            text += " "
        else:
            text += part
    assert find_nostr_uris(text) == expected
