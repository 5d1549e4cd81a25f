"""Tests of relaysim.nostr.filter: validation messages, matching against a brute-force reference.

Matching only reads event fields, never ids or signatures, so the property tests build ``Event``
values directly from small pools (so that filters hit often) instead of signing each one; one
test at the end repeats the check with real signed events.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.errors import InvalidFilter
from relaysim.nostr import Event, Filter, matches_any, parse_filter, sign_event

IDS = [f"{i:02x}" * 32 for i in range(6)]
PUBKEYS = [f"{i:02x}" * 32 for i in range(0xA0, 0xA4)]
WORDS = ["nostr", "zap", "", "Ünï", "🎉"]
KINDS = [0, 1, 3, 6, 7, 30023]


# --- the independent reference ------------------------------------------------------------------


def reference_match(filter_obj: dict, event: dict) -> bool:
    """NIP-01 filter semantics, written straight from the text on plain JSON values."""
    for key, wanted in filter_obj.items():
        if key == "ids":
            ok = event["id"] in wanted
        elif key == "authors":
            ok = event["pubkey"] in wanted
        elif key == "kinds":
            ok = event["kind"] in wanted
        elif key == "since":
            ok = event["created_at"] >= wanted
        elif key == "until":
            ok = event["created_at"] <= wanted
        elif key == "limit":
            ok = True
        else:
            letter = key[1:]
            first_values = [tag[1] for tag in event["tags"] if len(tag) > 1 and tag[0] == letter]
            ok = any(value in wanted for value in first_values)
        if not ok:
            return False
    return True


# --- strategies ---------------------------------------------------------------------------------

tag_strategy = st.one_of(
    st.tuples(st.sampled_from(["e", "q"]), st.sampled_from(IDS), st.sampled_from([*IDS, "wss://r"])),
    st.tuples(st.just("p"), st.sampled_from(PUBKEYS)),
    st.tuples(st.sampled_from(["t", "T", "d"]), st.sampled_from(WORDS)),
    st.tuples(st.sampled_from(["t", "e", "p"])),  # a tag with a name but no value
    st.tuples(st.just("t"), st.sampled_from(WORDS), st.sampled_from(WORDS)),
)

event_strategy = st.builds(
    lambda id_, pubkey, created_at, kind, tags: Event(
        id_, pubkey, created_at, kind, tuple(tags), "", "00" * 64
    ),
    st.sampled_from(IDS),
    st.sampled_from(PUBKEYS),
    st.integers(95, 105),
    st.sampled_from(KINDS),
    st.lists(tag_strategy, max_size=5),
)

CONDITIONS = {
    "ids": st.lists(st.sampled_from(IDS), max_size=3),
    "authors": st.lists(st.sampled_from(PUBKEYS), max_size=3),
    "kinds": st.lists(st.sampled_from(KINDS), max_size=3),
    "#e": st.lists(st.sampled_from(IDS), max_size=3),
    "#p": st.lists(st.sampled_from(PUBKEYS), min_size=1, max_size=2),
    "#t": st.lists(st.sampled_from(WORDS), max_size=3),
    "#T": st.lists(st.sampled_from(WORDS), min_size=1, max_size=2),
    "#q": st.lists(st.sampled_from(IDS), min_size=1, max_size=2),
    "since": st.integers(94, 106),
    "until": st.integers(94, 106),
    "limit": st.integers(0, 10),
}
filter_strategy = st.fixed_dictionaries({}, optional=CONDITIONS)


# Filters of one or two conditions: they match often, so every rule is exercised on hits and misses.
small_filter_strategy = st.lists(
    st.sampled_from(list(CONDITIONS.items())).flatmap(
        lambda item: item[1].map(lambda value: {item[0]: value})
    ),
    min_size=1,
    max_size=2,
).map(lambda parts: {k: v for part in parts for k, v in part.items()})


@settings(max_examples=300)
@given(
    filter_obj=st.one_of(filter_strategy, small_filter_strategy),
    events=st.lists(event_strategy, min_size=1, max_size=8),
)
def test_matches_agrees_with_reference(filter_obj, events):
    parsed = parse_filter(orjson.loads(orjson.dumps(filter_obj)))
    for event in events:
        assert parsed.matches(event) == reference_match(filter_obj, event.to_dict())
        if parsed.never_matches:
            assert not parsed.matches(event)


@settings(max_examples=200)
@given(filter_objs=st.lists(filter_strategy, min_size=1, max_size=3), event=event_strategy)
def test_matches_any_is_or_of_filters(filter_objs, event):
    parsed = [parse_filter(obj) for obj in filter_objs]
    assert matches_any(parsed, event) == any(reference_match(obj, event.to_dict()) for obj in filter_objs)


@settings(max_examples=200)
@given(filter_obj=filter_strategy)
def test_to_dict_round_trips(filter_obj):
    parsed = parse_filter(filter_obj)
    assert parse_filter(parsed.to_dict()) == parsed
    assert hash(parse_filter(parsed.to_dict())) == hash(parsed)
    assert {key: sorted(set(v)) if isinstance(v, list) else v for key, v in filter_obj.items()} == (
        parsed.to_dict()
    )


# --- explicit cases -----------------------------------------------------------------------------


def _ev(created_at=100, kind=1, tags=(), pubkey=PUBKEYS[0], id_=IDS[0]):
    return Event(id_, pubkey, created_at, kind, tuple(tuple(t) for t in tags), "", "00" * 64)


def test_only_the_first_tag_value_is_indexed():
    event = _ev(tags=[["e", IDS[1], IDS[2]], ["t", "a", "b"]])
    assert parse_filter({"#e": [IDS[1]]}).matches(event)
    assert not parse_filter({"#e": [IDS[2]]}).matches(event)
    assert not parse_filter({"#t": ["b"]}).matches(event)
    # A later tag with the same name is indexed by its own first value.
    assert parse_filter({"#t": ["c"]}).matches(_ev(tags=[["t", "a"], ["t", "c"]]))


def test_since_and_until_are_inclusive():
    f = parse_filter({"since": 100, "until": 100})
    assert f.matches(_ev(100))
    assert not f.matches(_ev(99))
    assert not f.matches(_ev(101))


def test_conditions_and_together_and_tag_letters_are_case_sensitive():
    event = _ev(kind=1, tags=[["t", "x"], ["T", "y"]])
    assert parse_filter({"kinds": [1], "#t": ["x"], "#T": ["y"]}).matches(event)
    assert not parse_filter({"kinds": [1], "#t": ["y"]}).matches(event)
    assert not parse_filter({"kinds": [7], "#t": ["x"]}).matches(event)


def test_empty_lists_match_nothing_and_an_empty_filter_matches_everything():
    for obj in ({"ids": []}, {"authors": []}, {"kinds": []}, {"#t": []}, {"since": 5, "until": 4}):
        f = parse_filter(obj)
        assert f.never_matches
        assert not f.matches(_ev(tags=[["t", "x"]]))
    assert not parse_filter({}).never_matches
    assert not parse_filter({"limit": 0}).never_matches
    assert parse_filter({}).matches(_ev())


def test_constructor_freezes_iterables_and_equals_parsed():
    built = Filter(kinds=[1, 7], tags={"p": [PUBKEYS[0]]}, limit=3)
    parsed = parse_filter({"kinds": [7, 1, 1], "#p": [PUBKEYS[0]], "limit": 3})
    assert built == parsed
    assert isinstance(built.kinds, frozenset)
    assert isinstance(built.tags["p"], frozenset)
    assert len({built, parsed}) == 1
    with pytest.raises(TypeError):
        built.tags["x"] = frozenset()  # type: ignore[index]


def test_constructor_refuses_hash_prefixed_tag_names():
    with pytest.raises(ValueError, match="single letter without '#', got '#p'"):
        Filter(tags={"#p": [PUBKEYS[0]]})


def test_valid_edge_values_are_accepted():
    f = parse_filter(
        {"#E": ["not hex at all"], "#a": ["30023:" + PUBKEYS[0] + ":x"], "limit": 0, "kinds": [0, 65535]}
    )
    assert f.tags["E"] == frozenset({"not hex at all"})
    assert f.limit == 0
    assert f.kinds == frozenset({0, 65535})
    assert parse_filter({"since": -5}).since == -5


LONG_KEY = "k" * 100

BAD_FILTERS = [
    (b"[]", "invalid: filter must be a JSON object"),
    (b'"kinds"', "invalid: filter must be a JSON object"),
    (b"null", "invalid: filter must be a JSON object"),
    (b'{"ids":"' + b"ab" * 32 + b'"}', "invalid: filter 'ids' must be an array"),
    (b'{"ids":["' + b"AB" * 32 + b'"]}', "invalid: filter 'ids' item 0 must be 64 lowercase hex characters"),
    (
        b'{"ids":["' + b"ab" * 32 + b'","abcd"]}',
        "invalid: filter 'ids' item 1 must be 64 lowercase hex characters",
    ),
    (b'{"authors":[null]}', "invalid: filter 'authors' item 0 must be 64 lowercase hex characters"),
    (b'{"authors":{}}', "invalid: filter 'authors' must be an array"),
    (b'{"kinds":[1,"2"]}', "invalid: filter 'kinds' item 1 must be an integer between 0 and 65535"),
    (b'{"kinds":[65536]}', "invalid: filter 'kinds' item 0 must be an integer between 0 and 65535"),
    (b'{"kinds":[-1]}', "invalid: filter 'kinds' item 0 must be an integer between 0 and 65535"),
    (b'{"kinds":[true]}', "invalid: filter 'kinds' item 0 must be an integer between 0 and 65535"),
    (b'{"kinds":[1.0]}', "invalid: filter 'kinds' item 0 must be an integer between 0 and 65535"),
    (b'{"kinds":1}', "invalid: filter 'kinds' must be an array"),
    (b'{"#e":["x"]}', "invalid: filter '#e' item 0 must be 64 lowercase hex characters"),
    (b'{"#p":["' + b"ab" * 31 + b'"]}', "invalid: filter '#p' item 0 must be 64 lowercase hex characters"),
    (b'{"#t":[1]}', "invalid: filter '#t' item 0 must be a string"),
    (b'{"#t":"x"}', "invalid: filter '#t' must be an array"),
    (b'{"since":"1"}', "invalid: filter 'since' must be an integer"),
    (b'{"since":1.5}', "invalid: filter 'since' must be an integer"),
    (b'{"until":true}', "invalid: filter 'until' must be an integer"),
    (b'{"until":18446744073709551616}', "invalid: filter 'until' must be an integer"),
    (b'{"limit":"10"}', "invalid: filter 'limit' must be an integer"),
    (b'{"limit":-1}', "invalid: filter 'limit' must not be negative"),
    (b'{"search":"zap"}', "unsupported: filter contains unknown element 'search'"),
    (b'{"#":[]}', "unsupported: filter contains unknown element '#'"),
    (b'{"#tt":[]}', "unsupported: filter contains unknown element '#tt'"),
    (b'{"#1":[]}', "unsupported: filter contains unknown element '#1'"),
    (b'{"#\xc3\xa9":[]}', "unsupported: filter contains unknown element '#é'"),
    (b'{"e":[]}', "unsupported: filter contains unknown element 'e'"),
    (b'{"' + LONG_KEY.encode() + b'":1}', f"unsupported: filter contains unknown element '{'k' * 40}...'"),
    # The first bad key in document order is the one reported.
    (b'{"search":1,"kinds":"x"}', "unsupported: filter contains unknown element 'search'"),
    (b'{"kinds":"x","search":1}', "invalid: filter 'kinds' must be an array"),
]


@pytest.mark.parametrize(("raw", "reason"), BAD_FILTERS)
def test_bad_filters_give_exact_reasons(raw, reason):
    with pytest.raises(InvalidFilter) as info:
        parse_filter(orjson.loads(raw))
    assert info.value.reason == reason
    assert str(info.value) == reason


def test_matching_signed_events():
    secret = bytes(31) + b"\x01"
    note = sign_event(
        secret, created_at=1000, kind=1, tags=[["p", PUBKEYS[1]], ["t", "zap"]], content="hi", aux=bytes(32)
    )
    reaction = sign_event(secret, created_at=1001, kind=7, tags=[["e", note.id]], content="+", aux=bytes(32))
    by_author = parse_filter({"authors": [note.pubkey], "kinds": [1]})
    replies = parse_filter({"#e": [note.id], "kinds": [7]})
    assert [by_author.matches(e) for e in (note, reaction)] == [True, False]
    assert [replies.matches(e) for e in (note, reaction)] == [False, True]
    assert parse_filter({"ids": [reaction.id], "since": 1001}).matches(reaction)
    assert matches_any([by_author, replies], reaction)
    assert not matches_any([], note)
