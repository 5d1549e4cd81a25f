"""seed1: determinism, the recorded sha256, every signature, and the shape issue 2 asks for.

One real build of seed1 is shared by the module (about 3-4 s); every check reads real signed
events. The shape checks restate the issue's list so a generator change that drops a case fails.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest

from relaysim.dataset import (
    DEFAULT_RELAY_URL,
    build,
    cast_for,
    dataset_info,
    encode_jsonl,
    generate,
    load_spec,
)
from relaysim.dataset.keys import KeyRing, derive_secret
from relaysim.dataset.rng import Rng, WeightedPicker
from relaysim.errors import InvalidEvent
from relaysim.nostr.event import Event, event_from_json, pubkey_of, sign_event, verify_event
from relaysim.nostr.nip19 import EventPointer, ProfilePointer, find_nostr_uris
from relaysim.nostr.zap import read_zap_receipt

DATASETS = Path(__file__).resolve().parents[1] / "datasets"
URL = DEFAULT_RELAY_URL


@pytest.fixture(scope="module")
def spec():
    return load_spec("seed1")


@pytest.fixture(scope="module")
def generated(spec):
    return generate(spec, URL)


@pytest.fixture(scope="module")
def events(generated) -> tuple[Event, ...]:
    return generated.events


@pytest.fixture(scope="module")
def by_id(events) -> dict[str, Event]:
    return {event.id: event for event in events}


@pytest.fixture(scope="module")
def viewer(generated) -> str:
    return generated.cast.viewer_pubkey


def recorded_sha256() -> str:
    return (DATASETS / "seed1.sha256").read_text().split()[0]


# --- determinism -------------------------------------------------------------------------------


def test_build_twice_gives_identical_bytes(spec, events):
    assert encode_jsonl(build(spec, URL)) == encode_jsonl(events)


def test_build_matches_recorded_sha256(events):
    assert hashlib.sha256(encode_jsonl(events)).hexdigest() == recorded_sha256()


def test_output_is_sorted_by_created_at_then_id_without_duplicates(events):
    keys = [(e.created_at, e.id) for e in events]
    assert keys == sorted(keys)
    assert len({e.id for e in events}) == len(events)


def test_every_event_round_trips_and_verifies(events):
    for event in events:
        assert event_from_json(event.json, verify=True) == event


def test_keyring_signature_equals_sign_event_with_the_same_aux():
    ring = KeyRing(b"some seed")
    key = ring.key("author", 7)
    aux = hashlib.sha256(b"some seed" + b"\x00aux\x00" + (0).to_bytes(4, "big")).digest()
    tags = (("p", "a" * 64),)
    ours = ring.sign(key, created_at=1700000000, kind=1, tags=tags, content="hé 🤙")
    reference = sign_event(key.secret, created_at=1700000000, kind=1, tags=tags, content="hé 🤙", aux=aux)
    assert ours == reference
    assert key.secret == derive_secret(b"some seed", "author", 7)
    assert key.pubkey == pubkey_of(key.secret)


def test_keys_differ_by_role_index_and_seed():
    secrets = {
        derive_secret(seed, role, index)
        for seed in (b"a", b"b")
        for role in ("author", "crowd")
        for index in range(3)
    }
    assert len(secrets) == 12


def test_rng_is_reproducible_and_sample_is_distinct():
    first, second = Rng(b"s", "x"), Rng(b"s", "x")
    assert [first.below(1000) for _ in range(50)] == [second.below(1000) for _ in range(50)]
    assert Rng(b"s", "x").unit() != Rng(b"s", "y").unit()
    picked = Rng(b"s", "z").sample(range(100), 60)
    assert len(set(picked)) == 60
    picker = WeightedPicker.zipf(list(range(50)))
    counts = Counter(picker.pick(first) for _ in range(2000))
    assert counts[0] > counts[49] * 5


def test_time_window_is_fixed_by_the_spec(spec, events):
    assert spec.window_end == 1767225600
    assert all(spec.window_start <= e.created_at <= spec.window_end for e in events)


# --- shape -------------------------------------------------------------------------------------


def test_every_kind_issue_2_lists_is_present(events):
    kinds = Counter(e.kind for e in events)
    for kind in (0, 1, 3, 5, 6, 7, 9735, 10002):
        assert kinds[kind] > 0, kind
    assert kinds[1] >= 5000
    assert 15_000 <= len(events) <= 25_000


def test_viewer_account(events, viewer):
    mine = [e for e in events if e.pubkey == viewer]
    assert any(e.kind == 0 for e in mine)
    (follows,) = [e for e in mine if e.kind == 3]
    ptags = [t for t in follows.tags if t[0] == "p"]
    assert 90 <= len(ptags) <= 110
    assert all(t[2] == URL for t in ptags)
    profiles = {e.pubkey for e in events if e.kind == 0}
    assert all(t[1] in profiles for t in ptags)
    (relays,) = [e for e in mine if e.kind == 10002]
    assert [t for t in relays.tags if t[0] == "r"] == [("r", URL)]


def test_authors_profiles_versions_and_an_equal_created_at_pair(events):
    versions: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.kind == 0:
            versions[e.pubkey].append(e)
    assert len(versions) >= 200
    assert sum(1 for v in versions.values() if len(v) >= 2) >= 20
    tied = [v for v in versions.values() if len({e.created_at for e in v}) < len(v)]
    assert len(tied) >= 1
    for profile in (v[0] for v in versions.values()):
        body = orjson.loads(profile.content)
        assert {"name", "picture"} <= body.keys()


def reply_parent(event: Event) -> tuple[str | None, str | None]:
    """(root id, parent id) from NIP-10 marked e tags."""
    root = parent = None
    for tag in event.tags:
        if tag[0] == "e" and len(tag) >= 4:
            if tag[3] == "root":
                root = tag[1]
            elif tag[3] == "reply":
                parent = tag[1]
    return root, parent or root


def test_reply_trees_are_at_least_four_deep_with_nip10_markers_and_p_tags(events, by_id):
    depth: dict[str, int] = {}
    checked = 0
    for event in events:  # sorted by time: parents come first
        if event.kind != 1:
            continue
        root, parent = reply_parent(event)
        if parent is None or parent not in by_id:
            depth[event.id] = 0
            continue
        depth[event.id] = depth.get(parent, 0) + 1
        parent_event = by_id[parent]
        # The marked root is the parent's own root (or the parent, when it is the root).
        parent_root, _ = reply_parent(parent_event)
        assert root == (parent_root or parent_event.id)
        if parent_event.pubkey != event.pubkey:
            assert parent_event.pubkey in event.tag_values("p")
        # Every e/p tag of a reply carries the relay hint.
        assert all(t[2] == URL for t in event.tags if t[0] in ("e", "p"))
        checked += 1
    assert checked > 2000
    assert max(depth.values()) >= 4
    assert sum(1 for d in depth.values() if d >= 4) >= 50


def test_mentions_decode_to_authors_and_carry_p_tags(events):
    profiles = {e.pubkey for e in events if e.kind == 0}
    mentioned_authors = 0
    for event in events:
        if event.kind != 1 or "nostr:nprofile" not in event.content:
            continue
        for _, _, decoded in find_nostr_uris(event.content):
            if decoded.type != "nprofile":
                continue
            assert isinstance(decoded.data, ProfilePointer)
            assert decoded.data.relays == (URL,)
            assert decoded.data.pubkey in event.tag_values("p")
            mentioned_authors += decoded.data.pubkey in profiles
    assert mentioned_authors >= 200


def test_quotes_carry_q_tags_and_some_point_outside_the_dataset(events, by_id):
    inside = outside = 0
    for event in events:
        if event.kind != 1 or "nostr:nevent" not in event.content:
            continue
        quotes = [t for t in event.tags if t[0] == "q"]
        for _, _, decoded in find_nostr_uris(event.content):
            if decoded.type != "nevent":
                continue
            assert isinstance(decoded.data, EventPointer)
            assert ("q", decoded.data.id, URL, decoded.data.author) in quotes
            assert decoded.data.relays == (URL,)
            if decoded.data.id in by_id:
                inside += 1
                assert by_id[decoded.data.id].pubkey == decoded.data.author
            else:
                outside += 1
    assert inside > 200  # more than the client's 200-entry embed cache
    assert outside >= 5


def test_dangling_references_exist(events, by_id):
    replies_to_missing = sum(
        1 for e in events if e.kind == 1 and reply_parent(e)[1] and reply_parent(e)[1] not in by_id
    )
    assert replies_to_missing >= 20
    profiles = {e.pubkey for e in events if e.kind == 0} | {e.pubkey for e in events}
    unknown_people = {pk for e in events if e.kind == 1 for pk in e.tag_values("p") if pk not in profiles}
    assert len(unknown_people) >= 5


def test_content_has_unicode_emoji_escapes_and_long_notes(events):
    notes = [e.content for e in events if e.kind == 1]
    assert sum(1 for c in notes if any(ord(ch) > 0xFFFF for ch in c)) > 100  # astral plane (emoji)
    assert any("\u200d" in c for c in notes)  # ZWJ sequences
    assert any(re.search(r"[\u0590-\u06ff]", c) for c in notes)  # right-to-left scripts
    assert any('"' in c and "\\" in c and "\n" in c and "\t" in c for c in notes)
    assert sum(1 for c in notes if len(c) > 2000) >= 10


def test_same_second_clusters(events):
    per_second = Counter(e.created_at for e in events if e.kind == 1)
    assert sum(1 for n in per_second.values() if n >= 10) >= 10


def test_reposts_embed_the_note_or_are_empty(events, by_id):
    reposts = [e for e in events if e.kind == 6]
    empty = [e for e in reposts if e.content == ""]
    embedded = [e for e in reposts if e.content]
    assert empty and embedded
    for repost in embedded:
        inner = event_from_json(repost.content)  # verifies id and signature
        assert repost.tags[0] == ("e", inner.id, URL)
        assert inner == by_id[inner.id]
    for repost in reposts:
        assert repost.first_tag_value("p") == by_id[repost.first_tag_value("e")].pubkey


def test_reactions_are_heavy_tailed_with_all_content_forms(events, generated):
    reactions = [e for e in events if e.kind == 7]
    targets = Counter(e.tag_values("e")[-1] for e in reactions)
    over_1000 = [target for target, n in targets.items() if n > 1000]
    assert len(over_1000) >= 3
    assert set(generated.cast.popular_note_ids[:3]) == set(over_1000)
    contents = Counter(e.content for e in reactions)
    assert contents["+"] and contents["-"] and contents["🔥"]
    custom = [e for e in reactions if e.content.startswith(":")]
    assert custom
    for event in custom:
        (emoji,) = [t for t in event.tags if t[0] == "emoji"]
        assert event.content == f":{emoji[1]}:"
        assert emoji[2].startswith("http://127.0.0.1:7447/")
    # The distinct reactors of the most popular note really are distinct people.
    top, count = targets.most_common(1)[0]
    assert len({e.pubkey for e in reactions if e.tag_values("e")[-1] == top}) >= count - 300


def test_zap_receipts_embed_a_signed_request_whose_amount_matches_bolt11(events, by_id):
    receipts = [e for e in events if e.kind == 9735]
    assert len(receipts) >= 100
    zappers = {e.pubkey for e in receipts}
    assert len(zappers) == 1
    for receipt in receipts:
        zap = read_zap_receipt(receipt)  # NIP-57 Appendix F: request signature, amount, hashes
        request = zap.request
        assert request.first_tag_value("relays") == URL
        assert request.first_tag_value("lnurl").startswith("lnurl1")
        target = by_id[receipt.first_tag_value("e")]
        assert target.pubkey == receipt.first_tag_value("p")
        assert receipt.first_tag_value("k") == request.first_tag_value("k") == str(target.kind)
        assert zap.invoice.timestamp == request.created_at <= receipt.created_at
        assert receipt.content == ""
        assert [t[0] for t in receipt.tags] == ["p", "P", "e", "k", "bolt11", "description", "preimage"]


def test_deletions_only_delete_the_authors_own_events(events, by_id):
    deletions = [e for e in events if e.kind == 5]
    assert len(deletions) >= 20
    dangling = 0
    for deletion in deletions:
        for target in deletion.tag_values("e"):
            if target in by_id:
                assert by_id[target].pubkey == deletion.pubkey
                assert by_id[target].created_at <= deletion.created_at
            else:
                dangling += 1
    assert dangling >= 1


def test_nip40_expired_and_future_expiring_notes(spec, events):
    expirations = [e.expiration for e in events if e.expiration is not None]
    expired = [x for x in expirations if x <= spec.window_end]
    future = [x for x in expirations if x >= 4102444800]
    assert len(expired) >= 10 and len(future) >= 10
    assert len(expired) + len(future) == len(expirations)


def test_notifications_for_the_viewer(events, by_id, viewer):
    mine = {e.id for e in events if e.pubkey == viewer and e.kind == 1}
    assert len(mine) >= 20
    aimed = [e for e in events if viewer in e.tag_values("p") and e.pubkey != viewer]
    by_kind = Counter(e.kind for e in aimed)
    replies = [e for e in aimed if e.kind == 1 and reply_parent(e)[0] in mine]
    nested = [e for e in replies if reply_parent(e)[1] not in mine]
    mentions = [e for e in aimed if e.kind == 1 and "nostr:nprofile" in e.content and not reply_parent(e)[0]]
    reactions = [e for e in aimed if e.kind == 7 and e.tag_values("e")[-1] in mine]
    zaps = [e for e in aimed if e.kind == 9735 and e.first_tag_value("e") in mine]
    reposts = [e for e in aimed if e.kind == 6 and e.first_tag_value("e") in mine]
    quotes = [e for e in aimed if e.kind == 1 and any(t[0] == "q" and t[1] in mine for t in e.tags)]
    assert len(replies) >= 100 and nested
    assert len(mentions) >= 30
    assert len(reactions) >= 300
    assert len(zaps) >= 20
    assert reposts and quotes
    assert by_kind[1] and by_kind[7] and by_kind[9735] and by_kind[6]


def test_info_reports_the_shape(events):
    info = dataset_info(events)
    assert info.events == len(events)
    assert dict(info.by_kind)[1] >= 5000
    assert info.max_reply_depth >= 4
    assert info.max_reactions > 1000
    assert info.authors >= 1500


# --- relay URL and cast --------------------------------------------------------------------------


def test_every_hint_and_url_follows_the_relay_url_option(spec):
    other = "wss://relay.test:9000/"
    events = generate(spec, other, signed=False).events
    text = encode_jsonl(events)
    assert b"127.0.0.1:7447" not in text
    hints = [t[2] for e in events for t in e.tags if t[0] in ("e", "p", "q") and len(t) >= 3]
    assert hints and set(hints) == {other}
    relay_lists = [e for e in events if e.kind == 10002]
    assert {t for e in relay_lists for t in e.tags} == {("r", other)}
    assert b"https://relay.test:9000/media/" in text


def test_cast_matches_the_real_build(spec, generated, by_id):
    cast = cast_for(spec)
    assert cast == generated.cast  # remembered from the build, or derived unsigned: the same
    assert cast.relay_url == URL
    assert pubkey_of(cast.viewer_secret) == cast.viewer_pubkey
    assert [pubkey_of(s) for s in cast.author_secrets] == list(cast.author_pubkeys)
    (follows,) = [e for e in generated.events if e.kind == 3]
    assert set(cast.author_pubkeys) == set(follows.tag_values("p"))
    zap_receipt = next(e for e in generated.events if e.kind == 9735)
    assert pubkey_of(cast.zapper_secret) == zap_receipt.pubkey == cast.zapper_pubkey
    assert len(cast.viewer_note_ids) == spec.viewer.notes
    for note in (*cast.viewer_notes, *cast.popular_notes):
        assert by_id[note.id].kind == 1 and by_id[note.id].pubkey == note.pubkey
    assert all(by_id[i].pubkey == cast.viewer_pubkey for i in cast.viewer_note_ids)
    assert len(cast.other_author_secrets) == spec.accounts.authors - spec.accounts.followed


def test_unsigned_generation_has_the_same_note_ids_and_cast(spec, generated):
    """What cast_for relies on: kind-1 ids never depend on signatures."""
    unsigned = generate(spec, URL, signed=False)
    assert all(event.sig == "0" * 128 for event in unsigned.events)
    with pytest.raises(InvalidEvent, match="signature does not verify"):
        verify_event(unsigned.events[0])
    notes = [e.id for e in generated.events if e.kind == 1]
    assert [e.id for e in unsigned.events if e.kind == 1] == notes
    assert unsigned.cast == generated.cast


# --- what a relay serves from seed1 (the real store) ---------------------------------------------


def test_seed1_in_the_store_resolves_ties_deletions_and_expiry(spec, events, generated):
    """The cases seed1 plants for a relay do what NIP-01/09/40 say once loaded into the store."""
    from relaysim.nostr.filter import parse_filter
    from relaysim.store import EventStore

    store = EventStore()
    store.load(events)
    versions: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.kind == 0:
            versions[event.pubkey].append(event)
    tied = next(v for v in versions.values() if len({e.created_at for e in v}) < len(v))
    served = store.query(parse_filter({"kinds": [0], "authors": [tied[0].pubkey]}))
    assert [e.id for e in served] == [min(e.id for e in tied)]  # equal created_at: lowest id wins
    deleted = {t for e in events if e.kind == 5 for t in e.tag_values("e")}
    assert not any(store.get(event_id) for event_id in deleted)
    now = spec.window_end + 1
    notes = store.query(parse_filter({"kinds": [1]}), now=now)
    assert all(e.expiration is None or e.expiration > now for e in notes)
    assert any(e.expiration == 4102444800 for e in notes)
    top = generated.cast.popular_note_ids[0]
    assert store.count(parse_filter({"kinds": [7], "#e": [top]}), now=now) > 1000
    viewer = generated.cast.viewer_pubkey
    assert store.count(parse_filter({"#p": [viewer], "kinds": [1, 6, 7, 9735]}), now=now) > 500
