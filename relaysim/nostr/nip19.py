"""NIP-19 bech32 entities (npub, nsec, note, nprofile, nevent, naddr) and NIP-21/27 ``nostr:`` URIs.

Theory of operation: every entity is bech32 (checksum constant 1, not bech32m) over either the
raw 32 bytes (npub, nsec, note) or a TLV list (nprofile, nevent, naddr). TLV types (NIP-19
"Shareable identifiers with extra metadata"): 0 special (pubkey / event id / d-tag identifier),
1 relay URL (repeatable), 2 author pubkey, 3 kind as a big-endian uint32. Unknown types are
skipped so newer encoders stay readable.

The checksum and 5-to-8-bit conversion come from the ``bech32`` package (Pieter Wuille's
reference code). Its ``bech32_decode`` gives no reason on failure and caps the human-readable
part, so :func:`_bech32_decode` does the checks itself, in order, to say *which* one failed, and
allows the 5,000 characters NIP-19 permits instead of BIP-173's 90.

Decoding untrusted text raises :class:`Nip19Error` (a ProtocolError, reason ``invalid: ...``).
Encoding wrong values (a pubkey that is not 64 hex, a relay URL longer than 255 bytes) is a
caller mistake and raises ``ValueError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bech32 import CHARSET, bech32_create_checksum, bech32_verify_checksum, convertbits

from relaysim.errors import ProtocolError
from relaysim.nostr.event import is_lower_hex

__all__ = [
    "AddressPointer",
    "Decoded",
    "EventPointer",
    "Nip19Error",
    "ProfilePointer",
    "decode",
    "find_nostr_uris",
    "naddr_decode",
    "naddr_encode",
    "nevent_decode",
    "nevent_encode",
    "nostr_uri",
    "note_decode",
    "note_encode",
    "nprofile_decode",
    "nprofile_encode",
    "npub_decode",
    "npub_encode",
    "nsec_decode",
    "nsec_encode",
]

MAX_LENGTH = 5000  # NIP-19: "bech32-encoded entities ... limited to 5000 characters"
_CHARSET_INDEX = {char: value for value, char in enumerate(CHARSET)}
_T_SPECIAL, _T_RELAY, _T_AUTHOR, _T_KIND = 0, 1, 2, 3
_BARE = ("npub", "nsec", "note")
_TLV = ("nprofile", "nevent", "naddr")


class Nip19Error(ProtocolError):
    """A string is not a valid NIP-19 entity; ``reason`` says why (``invalid: ...``)."""


@dataclass(frozen=True)
class ProfilePointer:
    """Decoded ``nprofile``: a pubkey and relays where it may be found."""

    pubkey: str
    relays: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventPointer:
    """Decoded ``nevent``: an event id, relay hints, and optionally its author and kind."""

    id: str
    relays: tuple[str, ...] = ()
    author: str | None = None
    kind: int | None = None


@dataclass(frozen=True)
class AddressPointer:
    """Decoded ``naddr``: an addressable (or replaceable) event coordinate ``kind:pubkey:identifier``."""

    identifier: str
    pubkey: str
    kind: int
    relays: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        """The NIP-01 ``a`` tag value."""
        return f"{self.kind}:{self.pubkey}:{self.identifier}"


@dataclass(frozen=True)
class Decoded:
    """Any NIP-19 entity: ``type`` is its prefix, ``data`` hex (npub/nsec/note) or a pointer."""

    type: str
    data: str | ProfilePointer | EventPointer | AddressPointer


# --- bech32 --------------------------------------------------------------------------------------


def _bech32_encode(hrp: str, payload: bytes) -> str:
    words = convertbits(payload, 8, 5, True)
    assert words is not None  # bytes are always 0..255
    text = hrp + "1" + "".join(CHARSET[w] for w in words + bech32_create_checksum(hrp, words))
    if len(text) > MAX_LENGTH:
        raise ValueError(f"{hrp} would be {len(text)} characters; NIP-19 allows at most {MAX_LENGTH}")
    return text


def _bech32_decode(text: str) -> tuple[str, bytes]:
    """Split and check a bech32 string; return (human-readable part, payload bytes)."""
    if not isinstance(text, str):
        raise Nip19Error("invalid: bech32 entity must be a string")
    if len(text) > MAX_LENGTH:
        raise Nip19Error(f"invalid: bech32 entity longer than {MAX_LENGTH} characters")
    if any(not 33 <= ord(char) <= 126 for char in text):
        raise Nip19Error("invalid: bech32 entity contains a character outside printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise Nip19Error("invalid: bech32 entity mixes upper and lower case")
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1:
        raise Nip19Error("invalid: bech32 entity has no prefix before the separator '1'")
    if len(text) - sep - 1 < 6:
        raise Nip19Error("invalid: bech32 entity is too short to hold a checksum")
    hrp = text[:sep]
    try:
        words = [_CHARSET_INDEX[char] for char in text[sep + 1 :]]
    except KeyError as exc:
        raise Nip19Error(f"invalid: bech32 entity contains '{exc.args[0]}', not a bech32 character") from None
    if not bech32_verify_checksum(hrp, words):
        raise Nip19Error("invalid: bech32 checksum does not match")
    payload = convertbits(words[:-6], 5, 8, False)
    if payload is None:
        raise Nip19Error("invalid: bech32 data has non-zero or excess padding bits")
    return hrp, bytes(payload)


# --- bare 32-byte entities -----------------------------------------------------------------------


def _hex32(value: str | bytes, what: str) -> bytes:
    if isinstance(value, bytes | bytearray):
        if len(value) != 32:
            raise ValueError(f"{what} must be 32 bytes, got {len(value)}")
        return bytes(value)
    if not is_lower_hex(value, 64):
        raise ValueError(f"{what} must be 64 lowercase hex characters")
    return bytes.fromhex(value)


def _decode_bare(text: str, expected: str) -> str:
    hrp, payload = _bech32_decode(text)
    if hrp != expected:
        raise Nip19Error(f"invalid: expected {expected}, got prefix '{hrp[:20]}'")
    return _bare_payload(hrp, payload)


def _bare_payload(hrp: str, payload: bytes) -> str:
    if len(payload) != 32:
        raise Nip19Error(f"invalid: {hrp} must hold 32 bytes, got {len(payload)}")
    return payload.hex()


def npub_encode(pubkey: str | bytes) -> str:
    return _bech32_encode("npub", _hex32(pubkey, "pubkey"))


def npub_decode(text: str) -> str:
    """The pubkey (64 lowercase hex) inside an ``npub``."""
    return _decode_bare(text, "npub")


def nsec_encode(secret_key: str | bytes) -> str:
    return _bech32_encode("nsec", _hex32(secret_key, "secret key"))


def nsec_decode(text: str) -> str:
    """The secret key (64 lowercase hex) inside an ``nsec``; ``bytes.fromhex`` it to sign."""
    return _decode_bare(text, "nsec")


def note_encode(event_id: str | bytes) -> str:
    return _bech32_encode("note", _hex32(event_id, "event id"))


def note_decode(text: str) -> str:
    """The event id (64 lowercase hex) inside a ``note``."""
    return _decode_bare(text, "note")


# --- TLV entities --------------------------------------------------------------------------------


def _tlv(entries: Iterable[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for kind, value in entries:
        if len(value) > 255:
            names = {_T_SPECIAL: "identifier", _T_RELAY: "relay URL"}
            raise ValueError(f"{names.get(kind, 'TLV value')} is {len(value)} bytes; a TLV holds at most 255")
        out += bytes((kind, len(value))) + value
    return bytes(out)


def _relays(relays: Sequence[str]) -> list[tuple[int, bytes]]:
    if isinstance(relays, str):
        raise ValueError("relays must be a sequence of URLs, not one string")
    return [(_T_RELAY, url.encode("utf-8")) for url in relays]


def _kind_bytes(kind: int) -> bytes:
    if not isinstance(kind, int) or isinstance(kind, bool) or not 0 <= kind < 2**32:
        raise ValueError("kind must be an integer between 0 and 4294967295")
    return kind.to_bytes(4, "big")


def nprofile_encode(pubkey: str | bytes, relays: Sequence[str] = ()) -> str:
    return _bech32_encode("nprofile", _tlv([(_T_SPECIAL, _hex32(pubkey, "pubkey")), *_relays(relays)]))


def nevent_encode(
    event_id: str | bytes,
    relays: Sequence[str] = (),
    author: str | bytes | None = None,
    kind: int | None = None,
) -> str:
    entries = [(_T_SPECIAL, _hex32(event_id, "event id")), *_relays(relays)]
    if author is not None:
        entries.append((_T_AUTHOR, _hex32(author, "author")))
    if kind is not None:
        entries.append((_T_KIND, _kind_bytes(kind)))
    return _bech32_encode("nevent", _tlv(entries))


def naddr_encode(identifier: str, pubkey: str | bytes, kind: int, relays: Sequence[str] = ()) -> str:
    if not isinstance(identifier, str):
        raise ValueError("identifier (the d tag) must be a string")
    entries = [
        (_T_SPECIAL, identifier.encode("utf-8")),
        *_relays(relays),
        (_T_AUTHOR, _hex32(pubkey, "pubkey")),
        (_T_KIND, _kind_bytes(kind)),
    ]
    return _bech32_encode("naddr", _tlv(entries))


def _parse_tlv(hrp: str, payload: bytes) -> dict[int, list[bytes]]:
    fields: dict[int, list[bytes]] = {}
    pos = 0
    while pos < len(payload):
        if pos + 2 > len(payload):
            raise Nip19Error(f"invalid: {hrp} TLV entry at byte {pos} is cut short")
        kind, length = payload[pos], payload[pos + 1]
        end = pos + 2 + length
        if end > len(payload):
            raise Nip19Error(f"invalid: {hrp} TLV entry of type {kind} at byte {pos} is cut short")
        fields.setdefault(kind, []).append(payload[pos + 2 : end])
        pos = end
    return fields


def _utf8(hrp: str, value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise Nip19Error(f"invalid: {hrp} {what} is not valid UTF-8") from None


def _one32(hrp: str, fields: dict[int, list[bytes]], kind: int, what: str, required: bool) -> str | None:
    values = fields.get(kind)
    if not values:
        if required:
            raise Nip19Error(f"invalid: {hrp} has no {what}")
        return None
    if len(values[0]) != 32:
        raise Nip19Error(f"invalid: {hrp} {what} must be 32 bytes, got {len(values[0])}")
    return values[0].hex()


def _kind(hrp: str, fields: dict[int, list[bytes]], required: bool) -> int | None:
    values = fields.get(_T_KIND)
    if not values:
        if required:
            raise Nip19Error(f"invalid: {hrp} has no kind")
        return None
    if len(values[0]) != 4:
        raise Nip19Error(f"invalid: {hrp} kind must be 4 bytes, got {len(values[0])}")
    return int.from_bytes(values[0], "big")


def _decode_tlv(hrp: str, payload: bytes) -> ProfilePointer | EventPointer | AddressPointer:
    fields = _parse_tlv(hrp, payload)
    relays = tuple(_utf8(hrp, value, "relay URL") for value in fields.get(_T_RELAY, ()))
    if hrp == "nprofile":
        pubkey = _one32(hrp, fields, _T_SPECIAL, "pubkey", True)
        assert pubkey is not None
        return ProfilePointer(pubkey, relays)
    if hrp == "nevent":
        event_id = _one32(hrp, fields, _T_SPECIAL, "event id", True)
        assert event_id is not None
        author = _one32(hrp, fields, _T_AUTHOR, "author", False)
        return EventPointer(event_id, relays, author, _kind(hrp, fields, False))
    special = fields.get(_T_SPECIAL)
    if not special:
        raise Nip19Error("invalid: naddr has no identifier")
    identifier = _utf8(hrp, special[0], "identifier")
    pubkey = _one32(hrp, fields, _T_AUTHOR, "author", True)
    kind = _kind(hrp, fields, True)
    assert pubkey is not None and kind is not None
    return AddressPointer(identifier, pubkey, kind, relays)


def _decode_typed(text: str, expected: str) -> ProfilePointer | EventPointer | AddressPointer:
    hrp, payload = _bech32_decode(text)
    if hrp != expected:
        raise Nip19Error(f"invalid: expected {expected}, got prefix '{hrp[:20]}'")
    return _decode_tlv(hrp, payload)


def nprofile_decode(text: str) -> ProfilePointer:
    result = _decode_typed(text, "nprofile")
    assert isinstance(result, ProfilePointer)
    return result


def nevent_decode(text: str) -> EventPointer:
    result = _decode_typed(text, "nevent")
    assert isinstance(result, EventPointer)
    return result


def naddr_decode(text: str) -> AddressPointer:
    result = _decode_typed(text, "naddr")
    assert isinstance(result, AddressPointer)
    return result


def decode(text: str) -> Decoded:
    """Decode any NIP-19 entity; :class:`Nip19Error` names what is wrong."""
    hrp, payload = _bech32_decode(text)
    if hrp in _BARE:
        return Decoded(hrp, _bare_payload(hrp, payload))
    if hrp in _TLV:
        return Decoded(hrp, _decode_tlv(hrp, payload))
    raise Nip19Error(f"invalid: unknown NIP-19 prefix '{hrp[:20]}'")


# --- NIP-21 / NIP-27 -----------------------------------------------------------------------------

# NIP-21: every entity but nsec may follow "nostr:". The trailing \b refuses a match that runs
# into an ASCII letter or digit bech32 does not use (b, i, o, 1, upper case), as nostr-tools'
# regex does; re.ASCII keeps "é" or an emoji right after the entity from hiding it (as in JS).
_URI = re.compile(r"nostr:((?:npub|nprofile|note|nevent|naddr)1[" + CHARSET + r"]+)\b", re.ASCII)


def nostr_uri(entity: str) -> str:
    """``nostr:<entity>`` after checking the entity decodes; nsec is refused (NIP-21)."""
    decoded = decode(entity)
    if decoded.type == "nsec":
        raise ValueError("NIP-21 forbids nsec in nostr: URIs")
    return "nostr:" + entity.lower()


def find_nostr_uris(text: str) -> list[tuple[int, int, Decoded]]:
    """NIP-27 references in ``text``: ``(start, end, decoded)`` spans of each valid ``nostr:`` URI.

    ``text[start:end]`` is the whole URI including ``nostr:``. Strings that look like URIs but do
    not decode (bad checksum, wrong length) are skipped: content is peer input, not an error.
    """
    found = []
    for match in _URI.finditer(text):
        try:
            decoded = decode(match.group(1))
        except Nip19Error:
            continue
        found.append((match.start(), match.end(), decoded))
    return found
