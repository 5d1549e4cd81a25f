"""The JSON report: schema fields, exact round trip, atomic write, crash-safe timeline, the table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from relaysim.analysis import (
    AllocSite,
    CycleReading,
    Evidence,
    Sample,
    Thresholds,
    Verdict,
    cache_peaks,
    cycle_growth,
    dom_handles,
    evaluate,
    measure_idle,
    measure_probe_cost,
    parse_alloc_counters,
    parse_cache_sizes,
    trend,
)
from relaysim.errors import UsageError
from relaysim.report import (
    SCHEMA_VERSION,
    AppInfo,
    Environment,
    RelayFigures,
    Report,
    SamplingCost,
    ScenarioInfo,
    StepTiming,
    TimelineWriter,
    Timing,
    Unavailable,
    alloc_sites,
    bound_samples,
    format_value,
    heap_figures,
    read_report,
    read_timeline,
    render_table,
    report_from_dict,
    report_from_json,
    unavailable_figures,
    write_report,
)

MiB = 1024 * 1024


def timeline() -> list[Sample]:
    out = []
    for i in range(40):
        figures: dict[str, float | None] = {
            "totalAlloc": 1_000_000 + i * 5_000 + (i >= 35) * 0,
            "mallocs": 2_000 + i * 10,
            "heapInuse": 900_000 + i * 5_000,
            "sys": 16 * MiB,
            "dom_handles": 300 + (i % 7) * 10,
            "js_heap_used": 2_500_000.0 + i,
            "nodes": 800 + i,
            "uasm_bytes": None,
        }
        out.append(Sample(t=100.0 + i, figures=figures, app_ts=1_700_000_000_000.0 + i * 1000))
    return out


def full_report(**changes: object) -> Report:
    samples = timeline()
    probe = measure_probe_cost([1_000_000, 1_000_096, 1_000_192])
    idle = measure_idle(samples[30::9], probes=[9], probe_cost=probe, settle_s=5.0, subscriptions_open=0)
    results = tuple(
        evaluate(
            Evidence(samples=samples, idle=idle), Thresholds(), ["idle_rate", "heap_delta", "dom_handles_max"]
        )
    )
    before = parse_alloc_counters([{"site": 0, "name": "eventCache", "count": 10, "bytes": 1_000}])
    after = parse_alloc_counters(
        [
            {"site": 0, "name": "eventCache", "count": 30, "bytes": 190_000},
            {"site": 1, "name": "noteElements", "count": 400, "bytes": 6_400},
        ]
    )
    fields: dict[str, object] = {
        "scenario": ScenarioInfo(
            name="feed-browsing",
            path="scenarios/feed-browsing.toml",
            description="Open the feed, scroll, idle.",
            thresholds=Thresholds().to_dict(),
        ),
        "app": AppInfo(url="http://127.0.0.1:7447/?leaks=idle", mode="leaks=idle", hooks_missing=()),
        "environment": Environment(
            browser_name="chromium",
            browser_version="156.0.7000.1",
            driver_version="156.0.7000.1",
            python="3.11.7",
            relaysim="0.1.0",
            platform="Linux-x86_64",
            dataset_name="seed1",
            dataset_sha256="ab" * 32,
            seed=1,
        ),
        "timing": Timing(
            started_at="2026-11-26T08:00:00Z",
            finished_at="2026-11-26T08:01:02Z",
            duration_s=62.25,
            steps=(StepTiming(index=0, kind="open", line=8, start_s=0.0, duration_s=1.5),),
            sampling=SamplingCost(samples=40, ms_per_sample=12.5, round_trips_per_sample=4.0),
        ),
        "heap": heap_figures(samples[0], samples[-1], trend(samples, "heapInuse")),
        "assertions": results,
        "alloc_sites": alloc_sites(before, after),
        "dom_handles": dom_handles(samples),
        "relay": RelayFigures(
            subscriptions_opened=5,
            subscriptions_closed=5,
            subscriptions_open_at_end=0,
            events_pushed=812,
            bytes_pushed=402_113,
            connections=1,
        ),
        "probe_cost": probe,
        "idle": idle,
        "unavailable": unavailable_figures(samples, {"uasm_bytes": "not cross-origin isolated"}),
        "samples": bound_samples(samples, 10),
        "timeline": "runs/feed.jsonl",
        "notes": ("first run",),
        "cycles": cycle_growth(
            [
                CycleReading(t, heap, (AllocSite(10, "reply cache", n, r), AllocSite(13, "ws frames", n, ws)))
                for t, heap, n, r, ws in ((0.0, 1000, 0, 0, 0), (1.0, 3000, 1, 900, 1100),
                                              (2.0, 5000, 2, 1800, 2200))
            ],
            warmup=0,
            ignore_sites=["ws frames"],
        ),
        "caches": cache_peaks(
            [(1.0, parse_cache_sizes([{"group": "profile wrappers", "entries": 12, "limit": 10}]))]
        ),
    }
    fields.update(changes)
    return Report(**fields)  # type: ignore[arg-type]


TOP_LEVEL = [
    "schema_version",
    "scenario",
    "app",
    "environment",
    "timing",
    "verdict",
    "assertions",
    "heap",
    "alloc_sites",
    "dom_handles",
    "relay",
    "probe_cost",
    "idle",
    "unavailable",
    "notes",
    "timeline",
    "samples",
    "cycles",
    "caches",
    "soak",
    "baseline",
    "browser",
]


def test_report_json_has_every_schema_field() -> None:
    data = orjson.loads(full_report().to_json())
    assert list(data) == TOP_LEVEL
    assert data["schema_version"] == SCHEMA_VERSION == "relaysim.report/1"
    assert data["verdict"] == "FAIL"
    assert list(data["environment"]) == [
        "browser_name",
        "browser_version",
        "driver_version",
        "webdriver_url",
        "python",
        "relaysim",
        "platform",
        "dataset_name",
        "dataset_sha256",
        "seed",
        "dataset_spec_sha256",
        "dataset_relay_url",
    ]
    assert list(data["heap"]) == [
        "initial",
        "final",
        "delta_bytes",
        "total_alloc_delta",
        "mallocs_delta",
        "trend",
    ]
    assert data["heap"]["delta_bytes"] == 39 * 5_000
    assert data["heap"]["mallocs_delta"] == 390
    assert data["assertions"][0] == {
        "name": "idle_rate",
        "threshold": 1024.0,
        "measured": 5_000 - 9 * 96 / 9,
        "unit": "B/s",
        "verdict": "FAIL",
        "detail": "raw 5000.0 B/s, probe 96 B x 9, window 9.0 s, weakest of 1",
        "comparison": "<",
        "source": "",
    }
    assert [a["verdict"] for a in data["assertions"]] == ["FAIL", "PASS", "PASS"]
    assert data["alloc_sites"]["top_by_bytes"][0] == {
        "site": 0,
        "name": "eventCache",
        "count": 20,
        "bytes": 189_000,
        "total_count": 30,
        "total_bytes": 190_000,
    }
    assert [x["name"] for x in data["alloc_sites"]["top_by_count"]] == ["noteElements", "eventCache"]
    assert data["dom_handles"] == {"max": 360, "final": 340, "max_t": 106.0, "samples": 40}
    assert list(data["idle"]) == [
        "figure",
        "windows",
        "weakest",
        "raw_rate",
        "compensated_rate",
        "window_s",
        "settle_s",
        "subscriptions_open",
        "probe_cost",
        "sites",
    ]
    assert data["probe_cost"] == {
        "bytes_per_probe": 96.0,
        "calls_measured": 3,
        "figure": "totalAlloc",
        "min_bytes": 96.0,
        "max_bytes": 96.0,
    }
    expected = {"figure": "uasm_bytes", "reason": "not cross-origin isolated", "missing_hook": None}
    assert expected in data["unavailable"]
    assert len(data["samples"]) == 10
    assert data["samples"][0] == {
        "t": 100.0,
        "app_ts": 1_700_000_000_000.0,
        "figures": timeline()[0].to_dict()["figures"],
    }


def test_verdict_is_computed_from_the_assertions() -> None:
    assert full_report().verdict is Verdict.FAIL  # idle rate 4904 B/s fails
    assert full_report(assertions=()).verdict is Verdict.PASS


def test_round_trip_is_exact() -> None:
    report = full_report()
    assert report_from_json(report.to_json()) == report
    assert report_from_json(report.to_json(indent=False)) == report
    minimal = Report(
        scenario=ScenarioInfo(name="x"),
        app=AppInfo(url="u", mode="external", hooks_missing=("__moxie_mem_stats",)),
        environment=Environment(),
        timing=Timing(started_at="a", finished_at="b", duration_s=0.0),
        heap=heap_figures(Sample(t=0.0), Sample(t=1.0)),
    )
    assert report_from_json(minimal.to_json()) == minimal


def test_non_finite_numbers_become_null() -> None:
    r = full_report(heap=heap_figures(Sample(t=0.0, figures={"x": float("nan")}), Sample(t=1.0)))
    assert orjson.loads(r.to_json())["heap"]["initial"] == {"x": None}


def test_reading_a_wrong_schema_or_shape() -> None:
    data = orjson.loads(full_report().to_json())
    data["schema_version"] = "relaysim.report/0"
    with pytest.raises(
        ValueError, match=r"^unsupported report schema 'relaysim.report/0' \(this relaysim reads "
    ):
        report_from_dict(data)
    data = orjson.loads(full_report().to_json())
    data["verdict"] = "MAYBE"
    with pytest.raises(
        ValueError, match=r"^report.verdict: 'MAYBE' is not one of \['PASS', 'FAIL', 'UNAVAILABLE'\]$"
    ):
        report_from_dict(data)
    data = orjson.loads(full_report().to_json())
    del data["timing"]["duration_s"]
    with pytest.raises(ValueError, match=r"^report.timing: missing field 'duration_s'$"):
        report_from_dict(data)


def test_bound_samples_keeps_the_ends() -> None:
    samples = [Sample(t=float(i)) for i in range(1001)]
    bounded = bound_samples(samples, 11)
    assert [x.t for x in bounded] == [float(i) for i in range(0, 1001, 100)]
    assert bound_samples(samples[:5], 11) == tuple(samples[:5])
    with pytest.raises(ValueError, match=r"^max_samples must be >= 2, got 1$"):
        bound_samples(samples, 1)


# --- files --------------------------------------------------------------------------------------


def test_write_report_is_atomic_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    write_report(target, full_report())
    assert read_report(target) == full_report()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temp file left behind


def test_write_report_failure_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A crash between writing the temp file and the rename cannot be staged for real in a unit test,
    # so fsync is made to fail: the old report must survive whole and the temp file must be gone.
    target = tmp_path / "r.json"
    target.write_text("old report")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        write_report(target, full_report())
    assert target.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_read_report_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        read_report(tmp_path / "none.json")
    assert str(info.value) == f"{tmp_path / 'none.json'}: cannot read report: No such file or directory"
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": "other"}')
    with pytest.raises(UsageError) as info:
        read_report(bad)
    assert str(info.value) == (
        f"{bad}: not a relaysim report: unsupported report schema 'other' "
        "(this relaysim reads 'relaysim.report/1')"
    )


def test_timeline_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TimelineWriter(path, fsync_every=3) as w:
        for sample in timeline()[:5]:
            w.append(sample)
        w.append({"type": "step", "index": 0, "kind": "open", "t": 100.5})
        assert w.lines == 6
    got = read_timeline(path)
    assert got.samples == timeline()[:5]
    assert got.records == [{"type": "step", "index": 0, "kind": "open", "t": 100.5}]
    assert (got.truncated, got.lines) == (False, 6)
    with pytest.raises(ValueError, match=r"^a timeline record needs a 'type' key$"):
        TimelineWriter(tmp_path / "u.jsonl").append({"t": 1})


def test_timeline_survives_a_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TimelineWriter(path) as w:
        for sample in timeline()[:4]:
            w.append(sample)
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # the kill hit in the middle of the fourth line
    got = read_timeline(path)
    assert got.samples == timeline()[:3]
    assert got.truncated is True
    # Resuming cuts the torn fragment, so the file stays valid JSONL.
    with TimelineWriter(path) as w:
        assert w.dropped_tail > 0
        w.append(timeline()[3])
    again = read_timeline(path)
    assert again.samples == timeline()[:4]
    assert again.truncated is False


def test_timeline_damage_before_the_last_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(
        b'{"type":"sample","t":1,"figures":{}}\n{"type":"sam\n{"type":"sample","t":2,"figures":{}}\n'
    )
    with pytest.raises(UsageError) as info:
        read_timeline(path)
    assert str(info.value).startswith(f"{path}:2: not a timeline record: ")


WRITER = """
import sys
from relaysim.analysis import Sample
from relaysim.report import TimelineWriter
w = TimelineWriter(sys.argv[1], fsync_every=50)
i = 0
while True:
    w.append(Sample(t=float(i), figures={"totalAlloc": i * 4096, "pad": "x" * 3000}))
    i += 1
"""


def test_timeline_of_a_killed_writer_loses_nothing_written(tmp_path: Path) -> None:
    # A real process appending as fast as it can, killed with SIGKILL mid-stream.
    path = tmp_path / "killed.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
    try:
        deadline = time.monotonic() + 30
        while (not path.exists() or path.stat().st_size < 2_000_000) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    got = read_timeline(path)
    assert len(got.samples) > 100
    # Every complete line is there, in order, with nothing skipped.
    assert [x.t for x in got.samples] == [float(i) for i in range(len(got.samples))]
    assert got.lines == len(got.samples)


# --- table --------------------------------------------------------------------------------------


def test_format_value() -> None:
    assert format_value(None, "B") == "unavailable"
    assert format_value(20 * MiB, "B") == "20.0 MiB"
    assert format_value(12_288, "B") == "12.0 KiB"
    assert format_value(900, "B") == "900 B"
    assert format_value(1024, "B/s") == "1,024 B/s"
    assert format_value(1023.25, "B/s") == "1,023.2 B/s"
    assert format_value(3000, "handles") == "3,000 handles"
    assert format_value(2.5, "events") == "2.50 events"


def test_render_table_exact() -> None:
    report = full_report(
        unavailable=(Unavailable(figure="uasm_bytes", reason="not cross-origin isolated"),),
    )
    assert render_table(report, width=90) == (
        "relaysim: feed-browsing\n"
        "\n"
        "  assertion               threshold      measured   verdict\n"
        " " + "─" * 59 + "\n"
        "  idle_rate             < 1,024 B/s     4,904 B/s   FAIL\n"
        "  heap_delta             < 20.0 MiB     190.4 KiB   PASS\n"
        "  dom_handles_max   < 3,000 handles   360 handles   PASS\n"
        "\n"
        "  idle_rate: raw 5000.0 B/s, probe 96 B x 9, window 9.0 s, weakest of 1\n"
        "  unavailable: uasm_bytes (not cross-origin isolated)\n"
        "verdict: FAIL\n"
    )
