"""Dataset specs (exact one-line errors with file and line), name lookup, and the build cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.dataset import DEFAULT_RELAY_URL, build, encode_jsonl, ensure_built, load_spec, parse_spec
from relaysim.dataset.registry import cache_path, prune_cache
from relaysim.dataset.spec import DatasetSpec, spec_digest
from relaysim.errors import UsageError

# A small but complete spec: every phase of the generator runs, in well under a second.
TINY = """\
[dataset]
name = "tiny"
seed = "tiny test"
window_end = 1767225600
window_seconds = 86400

[accounts]
authors = 20
crowd = 10
followed = 5
strangers = 2

[notes]
roots = 40
replies = 20
deep_threads = 2
clusters = 2
cluster_size = 3
dangling = 4
expired = 2
future_expiring = 2

[engagement]
reposts = 5
reactions = 30
viral = [12]
zaps = 3
deletions = 2

[viewer]
notes = 3
replies = 4
mentions = 2
quotes = 1
reactions = 5
reposts = 1
zaps = 1
"""


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        load_spec(path)
    return str(caught.value).replace(str(path), "FILE")


def test_tiny_spec_parses_with_defaults_for_unstated_keys(tmp_path):
    spec = load_spec(write(tmp_path, TINY))
    assert spec.name == "tiny" and spec.accounts.authors == 20 and spec.engagement.viral == (12,)
    assert spec.notes.max_depth == 9  # not stated: seed1's default
    assert spec.window_start == 1767225600 - 86400
    assert spec.source == str(tmp_path / "spec.toml")


def test_seed1_is_found_by_name():
    spec = load_spec("seed1")
    assert spec.name == "seed1"
    assert spec.source.endswith("datasets/seed1.toml")
    assert spec.accounts.authors >= 200


def test_toml_syntax_error_names_file_and_line(tmp_path):
    text = TINY.replace('seed = "tiny test"', "seed 1")
    assert error_of(tmp_path, text) == "FILE:3: Expected '=' after a key in a key/value pair"


def test_unknown_key_is_rejected_with_its_line(tmp_path):
    text = TINY.replace("roots = 40", "rooots = 40")
    assert error_of(tmp_path, text) == "FILE:14: unknown key 'notes.rooots'"


def test_unknown_key_in_dataset_section(tmp_path):
    text = TINY.replace('name = "tiny"', 'name = "tiny"\nnow = true')
    assert error_of(tmp_path, text) == "FILE:3: unknown key 'dataset.now'"


def test_unknown_section_is_rejected(tmp_path):
    assert error_of(tmp_path, TINY + "\n[extras]\nx = 1\n") == "FILE:39: unknown section [extras]"


def test_top_level_key_is_rejected(tmp_path):
    text = "seed = 3\n" + TINY
    assert error_of(tmp_path, text) == "FILE:1: unknown key 'seed' (keys belong in a [section])"


def test_wrong_types(tmp_path):
    assert (
        error_of(tmp_path, TINY.replace("authors = 20", 'authors = "many"'))
        == "FILE:8: accounts.authors must be a non-negative integer"
    )
    assert (
        error_of(tmp_path, TINY.replace("authors = 20", "authors = true"))
        == "FILE:8: accounts.authors must be a non-negative integer"
    )
    assert (
        error_of(tmp_path, TINY.replace("[notes]", "[notes]\nquote_share = 1.5"))
        == "FILE:14: notes.quote_share must be a number from 0 to 1"
    )
    assert (
        error_of(tmp_path, TINY.replace("viral = [12]", 'viral = [12, "x"]'))
        == "FILE:26: engagement.viral must be a list of positive integers"
    )
    assert (
        error_of(tmp_path, TINY.replace('name = "tiny"', "name = 7"))
        == "FILE:2: dataset.name must be a string"
    )


def test_missing_dataset_key_and_section(tmp_path):
    text = TINY.replace('seed = "tiny test"\n', "")
    assert error_of(tmp_path, text) == "FILE:1: missing key 'dataset.seed'"
    rest = TINY[TINY.index("[accounts]") :]
    assert error_of(tmp_path, rest) == (
        "FILE: missing section [dataset] (name, seed, window_end, window_seconds)"
    )


def test_cross_field_limits(tmp_path):
    assert (
        error_of(tmp_path, TINY.replace("followed = 5", "followed = 21"))
        == "FILE:10: accounts.followed cannot exceed accounts.authors"
    )
    assert error_of(tmp_path, TINY.replace("viral = [12]", "viral = [31]")) == (
        "FILE:26: engagement.viral asks for 31 distinct reactions but there are only 30 authors + crowd"
    )
    assert (
        error_of(tmp_path, TINY.replace("window_seconds = 86400", "window_seconds = 60"))
        == "FILE:5: dataset.window_seconds must be at least 3600 and less than window_end"
    )
    assert (
        error_of(tmp_path, TINY.replace('name = "tiny"', 'name = "Tiny Set"'))
        == "FILE:2: dataset.name must be 1-64 characters of a-z, 0-9, '_' or '-'"
    )


def test_missing_file_and_unknown_name(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(UsageError) as caught:
        load_spec(missing)
    assert str(caught.value) == f"cannot read dataset spec {missing}: No such file or directory"
    with pytest.raises(UsageError) as caught:
        load_spec("no-such-dataset")
    assert str(caught.value) == (
        "unknown dataset 'no-such-dataset' (known: seed1; or give a path to a .toml spec)"
    )


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_arbitrary_text_gives_a_spec_or_one_line_usage_error(text):
    try:
        result = parse_spec(text, "x.toml")
    except UsageError as exc:
        message = str(exc)
        assert message.startswith("x.toml")
        assert "\n" not in message
    else:
        assert isinstance(result, DatasetSpec)


@settings(max_examples=100)
@given(
    st.sampled_from(["accounts", "notes", "engagement", "viewer"]),
    st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
)
def test_any_unknown_key_is_rejected(section, key):
    spec = parse_spec(TINY)
    if key in getattr(spec, section).__dataclass_fields__:
        return
    with pytest.raises(UsageError, match=rf"^x\.toml:\d+: unknown key '{section}\.{key}'$"):
        parse_spec(TINY.replace(f"[{section}]", f"[{section}]\n{key} = 1"), "x.toml")


# --- cache ---------------------------------------------------------------------------------------


def test_ensure_built_builds_once_atomically_and_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("RELAYSIM_CACHE", str(tmp_path / "cache"))
    spec_file = write(tmp_path, TINY, "tiny.toml")
    spec = load_spec(spec_file)
    path = ensure_built(spec_file)
    digest = spec_digest(spec, DEFAULT_RELAY_URL)
    assert path == tmp_path / "cache" / "datasets" / f"tiny-{digest[:16]}.jsonl"
    assert path.read_bytes() == encode_jsonl(build(spec))
    stamp = path.stat().st_mtime_ns
    assert ensure_built(spec_file) == path
    assert path.stat().st_mtime_ns == stamp  # reused, not rebuilt
    other = ensure_built(spec_file, "ws://localhost:9999/")
    assert other != path and b"ws://localhost:9999/" in other.read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, other.name])  # no temp files


def test_cache_key_changes_with_spec_and_url(tmp_path):
    spec = parse_spec(TINY)
    changed = parse_spec(TINY.replace("roots = 40", "roots = 41"))
    assert cache_path(spec, DEFAULT_RELAY_URL) != cache_path(changed, DEFAULT_RELAY_URL)
    assert cache_path(spec, DEFAULT_RELAY_URL) != cache_path(spec, "ws://other:1/")
    assert cache_path(spec, DEFAULT_RELAY_URL) == cache_path(
        parse_spec(TINY, "elsewhere.toml"), DEFAULT_RELAY_URL
    )


def test_bad_relay_url_is_a_usage_error():
    spec = parse_spec(TINY)
    with pytest.raises(UsageError, match=r"^relay URL must look like ws://host:port/ \(got 'http://x/'\)$"):
        ensure_built(spec, "http://x/")


def test_prune_cache_removes_old_builds_beyond_the_newest_eight(tmp_path):
    now = 1_800_000_000.0
    ages = [10, 20, 30, 40, 50, 60, 70, 80, 500, 700, 800, 900]  # seconds; ranks 9.. are beyond 8
    files = {}
    for i, age in enumerate(ages):
        path = tmp_path / f"tiny-{i:016x}.jsonl"
        path.write_bytes(b"")
        os.utime(path, (now - age, now - age))
        files[age] = path
    other = tmp_path / "tiny-extra-0000000000000000.jsonl"  # a different dataset: never touched
    other.write_bytes(b"")
    os.utime(other, (now - 99_999, now - 99_999))
    removed = prune_cache("tiny", keep=files[900], now=now)
    # 500 s is beyond rank 8 but younger than 10 minutes; 900 s is the file just built.
    assert removed == [files[700], files[800]]
    assert all(path.exists() for age, path in files.items() if age not in (700, 800))
    assert other.exists()


# --- any valid spec builds -------------------------------------------------------------------------


@st.composite
def small_specs(draw) -> str:
    """Small specs, including the edges: no crowd, nobody followed, one root, no viewer notes."""
    authors = draw(st.integers(2, 8))
    crowd = draw(st.integers(0, 5))
    roots = draw(st.integers(1, 6))
    viewer_notes = draw(st.integers(0, 3))
    aimed = {
        k: (draw(st.integers(0, 3)) if viewer_notes else 0)
        for k in ("replies", "quotes", "reactions", "reposts", "zaps")
    }
    viral = draw(st.lists(st.integers(1, authors + crowd), max_size=min(2, roots)))

    def share():
        return draw(st.sampled_from([0, 0.5, 1]))

    return f"""
[dataset]
name = "prop"
seed = "{draw(st.text("abc", min_size=1, max_size=4))}"
window_end = 1767225600
window_seconds = {draw(st.sampled_from([3600, 86400]))}
[accounts]
authors = {authors}
crowd = {crowd}
followed = {draw(st.integers(0, authors))}
multi_profile_share = {share()}
strangers = {draw(st.integers(0, 2))}
[notes]
roots = {roots}
replies = {draw(st.integers(0, 6))}
deep_threads = {draw(st.integers(0, roots))}
max_depth = {draw(st.integers(1, 5))}
clusters = {draw(st.integers(0, 2))}
cluster_size = {draw(st.integers(0, 3))}
mention_share = {share()}
quote_share = {share()}
dangling = {draw(st.integers(0, 5))}
long_share = 0
unicode_share = {share()}
expired = {draw(st.integers(0, 2))}
future_expiring = {draw(st.integers(0, 2))}
[engagement]
reposts = {draw(st.integers(0, 3))}
empty_repost_share = {share()}
reactions = {draw(st.integers(0, 5))}
viral = {viral}
zaps = {draw(st.integers(0, 2))}
deletions = {draw(st.integers(0, 3))}
[viewer]
profile_versions = {draw(st.integers(1, 2))}
notes = {viewer_notes}
mentions = {draw(st.integers(0, 2))}
{chr(10).join(f"{k} = {v}" for k, v in aimed.items())}
"""


@settings(max_examples=60)
@given(small_specs())
def test_any_valid_spec_builds_sorted_events_inside_its_window(text):
    spec = parse_spec(text)
    events = list(build(spec))
    assert [(e.created_at, e.id) for e in events] == sorted((e.created_at, e.id) for e in events)
    assert all(spec.window_start <= e.created_at <= spec.window_end for e in events)
    assert sum(1 for e in events if e.kind == 1) >= spec.notes.roots + spec.viewer.notes
    assert encode_jsonl(events) == encode_jsonl(build(spec))
