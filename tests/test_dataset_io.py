"""JSONL import (bad lines named by number, good ones kept) and the ``relaysim dataset`` CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.cli import main
from relaysim.dataset import (
    build,
    encode_jsonl,
    parse_spec,
    read_jsonl,
    write_jsonl,
)
from relaysim.dataset.jsonl import LineError
from relaysim.errors import UsageError
from relaysim.nostr.event import Event

try:  # the tests directory is on sys.path (pytest's default rootdir-less layout)
    from test_dataset_spec import TINY
except ImportError:  # pragma: no cover - tests collected as a package
    from tests.test_dataset_spec import TINY


@pytest.fixture(scope="module")
def tiny_events() -> list[Event]:
    return list(build(parse_spec(TINY)))


def corrupted_file(tmp_path: Path, events: list[Event]) -> tuple[Path, list[LineError]]:
    """A file mixing good lines, every accepted shape, and one bad line of each kind."""
    e = events
    bad_sig = e[3].json.replace(
        e[3].sig.encode(), (e[3].sig[:-1] + ("0" if e[3].sig[-1] != "0" else "1")).encode()
    )
    changed = orjson.loads(e[4].json)
    changed["content"] += "!"
    no_kind = orjson.loads(e[5].json)
    del no_kind["kind"]
    lines = [
        e[0].json,  # 1 good object
        b"{not json",  # 2
        b'["EVENT", ' + e[1].json + b"]",  # 3 good relay-log line
        bad_sig,  # 4
        b'["EVENT", "sub1", ' + e[2].json + b"]",  # 5 good REQ answer line
        b"",  # 6 blank: skipped
        orjson.dumps(changed),  # 7 id no longer matches
        orjson.dumps(no_kind),  # 8
        b'["REQ", "x", {}]',  # 9
        b"   " + e[6].json + b"  \r",  # 10 good, with stray whitespace and CRLF
        b"42",  # 11
    ]
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    expected = [
        LineError(2, "invalid: not JSON (unexpected character)"),
        LineError(4, "invalid: signature does not verify"),
        LineError(7, "invalid: event id does not match its content"),
        LineError(8, "invalid: event is missing field 'kind'"),
        LineError(9, 'invalid: expected an event object, ["EVENT", event] or ["EVENT", sub_id, event]'),
        LineError(11, "invalid: event must be a JSON object"),
    ]
    return path, expected


def test_read_jsonl_keeps_good_lines_and_names_bad_ones(tmp_path, tiny_events):
    path, expected = corrupted_file(tmp_path, tiny_events)
    result = read_jsonl(path)
    assert result.errors == expected
    assert result.events == [tiny_events[i] for i in (0, 1, 2, 6)]


def test_read_jsonl_round_trips_a_build(tmp_path, tiny_events):
    path = tmp_path / "tiny.jsonl"
    digest = write_jsonl(path, tiny_events)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    result = read_jsonl(path)
    assert result.errors == [] and result.events == tiny_events


def test_read_jsonl_ignores_a_byte_order_mark_and_crlf(tmp_path, tiny_events):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(e.json for e in tiny_events[:3]) + b"\r\n")
    result = read_jsonl(path)
    assert result.errors == [] and result.events == tiny_events[:3]


def test_read_jsonl_unreadable_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError) as caught:
        read_jsonl(tmp_path / "missing.jsonl")
    assert str(caught.value) == f"cannot read {tmp_path / 'missing.jsonl'}: No such file or directory"
    with pytest.raises(UsageError, match="Is a directory"):
        read_jsonl(tmp_path)


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_build_to_two_files_gives_identical_bytes_and_prints_sha256(tmp_path, capsys, tiny_events):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["dataset", "build", str(spec), "-o", str(a)]) == 0
    first = capsys.readouterr().out
    assert main(["dataset", "build", str(spec), "-o", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes() == encode_jsonl(tiny_events)
    digest = hashlib.sha256(a.read_bytes()).hexdigest()
    assert first == f"wrote {a} ({len(tiny_events)} events)\nsha256 {digest}\n"


def test_cli_build_into_the_cache_and_relay_url_option(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RELAYSIM_CACHE", str(tmp_path / "cache"))
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    assert main(["dataset", "build", str(spec), "--relay-url", "wss://relay.example:443/"]) == 0
    out = capsys.readouterr().out.splitlines()
    path = Path(out[0].split()[1])
    assert path.parent == tmp_path / "cache" / "datasets"
    data = path.read_bytes()
    assert b"wss://relay.example:443/" in data and b"ws://127.0.0.1:7447/" not in data
    assert out[1] == f"sha256 {hashlib.sha256(data).hexdigest()}"


def test_cli_info_of_a_file_lists_kinds_authors_span_and_sha256(tmp_path, capsys, tiny_events):
    path = tmp_path / "tiny.jsonl"
    digest = write_jsonl(path, tiny_events)
    assert main(["dataset", "info", str(path)]) == 0
    out = capsys.readouterr().out
    for kind, name in (
        (0, "profile metadata"),
        (1, "short text note"),
        (7, "reaction"),
        (9735, "zap receipt"),
    ):
        count = sum(1 for e in tiny_events if e.kind == kind)
        assert f"kind {kind:>5}  " in out and name in out and f" {count}  {name}" in out
    assert f"sha256           {digest}" in out
    assert f"authors          {len({e.pubkey for e in tiny_events})}" in out
    assert (
        "first            2025-12-31" in out
        and "last             2026-01-01 00:00:00 UTC (1767225600)" in out
    )


def test_cli_info_by_name_uses_the_cache(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RELAYSIM_DATASETS", str(tmp_path))
    monkeypatch.setenv("RELAYSIM_CACHE", str(tmp_path / "cache"))
    (tmp_path / "tiny.toml").write_text(TINY)
    assert main(["dataset", "info", "tiny"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(str(tmp_path / "cache" / "datasets" / "tiny-"))
    assert "kind  9735" in out


def test_cli_import_reports_each_bad_line_and_exits_1(tmp_path, capsys, tiny_events):
    path, expected = corrupted_file(tmp_path, tiny_events)
    assert main(["dataset", "import", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"{path}:{e.line_no}: {e.reason}" for e in expected]
    assert captured.out == f"4 good events in {path}, 6 bad lines\n"


def test_cli_import_all_good_exits_0_and_can_write_sorted_unique(tmp_path, capsys, tiny_events):
    path = tmp_path / "shuffled.jsonl"
    path.write_bytes(b"".join(e.json + b"\n" for e in [*reversed(tiny_events), tiny_events[0]]))
    out_path = tmp_path / "clean.jsonl"
    assert main(["dataset", "import", str(path), "-o", str(out_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{len(tiny_events) + 1} good events in {path}"
    assert out_path.read_bytes() == encode_jsonl(tiny_events)


def test_cli_missing_file_is_one_line_exit_2(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert main(["dataset", "import", str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"relaysim: error: cannot read {missing}: No such file or directory\n"
    assert captured.out == ""
    assert main(["dataset", "info", str(missing)]) == 2
    assert capsys.readouterr().err == f"relaysim: error: cannot read {missing}: No such file or directory\n"


def test_cli_bad_spec_and_unknown_name_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace("roots = 40", "roots = -1"))
    assert main(["dataset", "build", str(bad), "-o", str(tmp_path / "x.jsonl")]) == 2
    assert (
        capsys.readouterr().err == f"relaysim: error: {bad}:14: notes.roots must be a non-negative integer\n"
    )
    assert not (tmp_path / "x.jsonl").exists()
    assert main(["dataset", "build", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    assert main(["dataset", "build", "seed1", "--relay-url", "localhost:7447"]) == 2
    assert capsys.readouterr().err == (
        "relaysim: error: relay URL must look like ws://host:port/ (got 'localhost:7447')\n"
    )


@settings(max_examples=150)
@given(data=st.data())
def test_read_jsonl_is_total_over_arbitrary_lines(tmp_path_factory, tiny_events, data):
    """Any bytes: each non-blank line is an event or an ``invalid:`` error with its number."""
    good = [e.json for e in tiny_events[:5]] + [b'["EVENT", ' + tiny_events[5].json + b"]"]
    line = st.one_of(st.binary(max_size=60), st.sampled_from(good), st.text(max_size=30).map(str.encode))
    lines = [item.replace(b"\n", b" ") for item in data.draw(st.lists(line, max_size=12))]
    path = tmp_path_factory.mktemp("prop") / "x.jsonl"
    path.write_bytes(b"\n".join(lines))
    result = read_jsonl(path)
    content_lines = [n for n, item in enumerate(lines, start=1) if item.strip()]
    error_lines = [error.line_no for error in result.errors]
    assert sorted(error_lines) == error_lines and set(error_lines) <= set(content_lines)
    assert len(result.events) + len(result.errors) == len(content_lines)
    assert all(error.reason.startswith("invalid: ") for error in result.errors)
    assert sum(1 for item in lines if item.strip() in good) <= len(result.events)


def test_build_does_not_depend_on_the_string_hash_seed(tmp_path, tiny_events):
    """Sets and dicts never decide the order: two interpreters with different hash seeds agree."""
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    digests = set()
    for hash_seed in ("1", "2"):
        out = tmp_path / f"h{hash_seed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        code = (
            "import sys; from pathlib import Path; "
            "from relaysim.dataset import build, load_spec, write_jsonl; "
            "write_jsonl(Path(sys.argv[2]), build(load_spec(sys.argv[1])))"
        )
        subprocess.run(
            [sys.executable, "-c", code, str(spec), str(out)],
            check=True,
            env=env,
            capture_output=True,
            cwd=Path(__file__).resolve().parents[1],
            timeout=120,
        )
        digests.add(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests == {hashlib.sha256(encode_jsonl(tiny_events)).hexdigest()}
