"""``report.html`` and ``relaysim report DIR``: a synthetic soak directory written with the real writers."""

from __future__ import annotations

import math
import re
from pathlib import Path

import orjson
import pytest

from relaysim.analysis import Sample, Verdict
from relaysim.cli import main
from relaysim.report import (
    AppInfo,
    Environment,
    HeapFigures,
    Report,
    ScenarioInfo,
    TimelineWriter,
    Timing,
    read_soak_dir,
    render_html,
    write_html,
    write_report,
)
from relaysim.report._html import decimate

SOAK_NAMES = (
    "soak_alloc_rate",
    "soak_heap_trend",
    "soak_dom_trend",
    "soak_heap_plateau",
    "soak_restarts_per_hour",
)


def soak_dir(path: Path, hours: float = 1.0, dt: float = 10.0) -> Path:
    """Idle 3 of every 15 minutes, a crashed tab at 20..24 min, a restart when the heap passes 16 MB."""
    path.mkdir(parents=True, exist_ok=True)
    events: list[dict[str, object]] = []
    total, seg_start, restarts, live = 1e6, 0.0, 0, 0
    idle_open = False
    with TimelineWriter(path / "timeline.jsonl") as timeline:
        timeline.append({"type": "probe_cost", "bytes_per_probe": 0})
        for i in range(int(hours * 3600 / dt) + 1):
            t = i * dt
            if 1200 <= t < 1440:
                if t == 1200:
                    events.append({"t": 1203.0, "wall": 1.75e9 + t, "type": "fault", "reason": "tab crashed"})
                    events.append({"t": 1435.0, "wall": 1.75e9 + t, "type": "session_replaced"})
                continue
            if t == 1440:
                seg_start = t
            idle = t % 900 >= 720
            if idle and not idle_open:
                events.append({"t": t, "wall": 1.75e9 + t, "type": "idle_start"})
            if not idle and idle_open:
                events.append({"t": t - dt, "wall": 1.75e9 + t, "type": "idle_end", "rate": 0.0})
            idle_open = idle
            heap = 6e6 + 5000 * (t - seg_start)
            if heap > 16e6:
                restarts += 1
                seg_start, heap = t, 6e6
                events.append({"t": t - 2, "wall": 1.75e9 + t, "type": "restart"})
            live += 0 if idle else 30
            figures = {
                "totalAlloc": total,
                "heapInuse": heap,
                "dom_handles": 400 + (i % 7) * 10,
                "relay_subscriptions": 0 if idle else 3,
                "relay_live_events_sent": live,
            }
            timeline.append(Sample(t, figures))
            total += (0.0 if idle else 20_000.0) * dt
    events.sort(key=lambda e: e["t"])  # type: ignore[arg-type,return-value]
    (path / "events.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def test_a_killed_soak_renders_recomputed_verdicts_plots_and_markers(tmp_path: Path) -> None:
    d = soak_dir(tmp_path / "soak")
    page = write_html(d).read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "recomputed from timeline.jsonl and events.jsonl" in page
    table = page[
        page.index('<table class="verdicts">') : page.index("</table>", page.index('class="verdicts"'))
    ]
    rows = re.findall(r"<tr><td>(soak_\w+)</td>.*?<td class=\"v (\w+)\">", table)
    assert rows == [
        ("soak_alloc_rate", "PASS"),
        ("soak_heap_trend", "FAIL"),
        ("soak_dom_trend", "PASS"),
        ("soak_heap_plateau", "FAIL"),
        ("soak_restarts_per_hour", "FAIL"),
    ]
    assert page.count("<svg") == 1  # one figure, five aligned plots
    for title in ("heapInuse", "allocation rate", "DOM handles", "relay subscriptions", "live events sent"):
        assert title in page
    # The markers' legend counts what the plots mark: 4 idle periods, 1 restart, a fault, one gap.
    for label in ("idle period (4)", "restart (1)", "harness fault (2)", "no samples (1)"):
        assert label in page
    assert "#d62728" in page  # the restart line's colour
    assert "19.8..24.0 min (tab crashed; session_replaced)" in page
    assert ">restart<" in page and ">fault<" in page  # the events table


def test_the_page_is_self_contained(tmp_path: Path) -> None:
    page = write_html(soak_dir(tmp_path / "soak")).read_text()
    assert "<script" not in page
    assert re.search(r"https?://", page) is None
    assert re.search(r"""(src|href)\s*=\s*["'](?!#)""", page) is None
    assert re.search(r"url\((?!#)", page) is None and "@import" not in page  # url(#clip) is local


def test_a_finished_soak_shows_the_summary_verdicts(tmp_path: Path) -> None:
    from relaysim.analysis import AssertionResult

    d = soak_dir(tmp_path / "soak")
    results = (
        AssertionResult("heap_inuse_after_5min", 64 * 2**20, 17e6, "B", Verdict.PASS, "max after 300 s"),
        AssertionResult("soak_alloc_rate", 1024.0, 3.5, "B/s", Verdict.PASS, "from the live run"),
    )
    summary = Report(
        scenario=ScenarioInfo(name="soak"),
        app=AppInfo(url="builtin", mode="fixed"),
        environment=Environment(browser_name="chromium", browser_version="140"),
        timing=Timing(started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T01:00:00Z", duration_s=3600),
        heap=HeapFigures(initial={}, final={}),
        assertions=results,
    )
    write_report(d / "summary.json", summary)
    page = render_html(read_soak_dir(d))
    assert "recomputed" not in page
    table = page[page.index('<table class="verdicts">') :]
    assert re.findall(r"<tr><td>(\w+)</td>", table)[:2] == ["heap_inuse_after_5min", "soak_alloc_rate"]
    assert "from the live run" in page and "builtin (fixed)" in page and "chromium 140" in page
    assert '<span class="badge PASS">PASS</span>' in page


def test_a_torn_last_line_is_skipped_and_said(tmp_path: Path) -> None:
    d = soak_dir(tmp_path / "soak")
    with open(d / "events.jsonl", "ab") as fh:
        fh.write(b'{"t": 99')
    soak = read_soak_dir(d)
    assert soak.torn == ("events.jsonl",)
    assert "A torn last line (killed writer) was skipped in events.jsonl" in render_html(soak)


def test_a_10_hour_soak_stays_small_and_every_line_is_thinned(tmp_path: Path) -> None:
    page = write_html(soak_dir(tmp_path / "soak", hours=10.0)).read_text()
    assert len(page) < 1_000_000
    paths = re.findall(r'<path d="([^"]+)"', page)
    assert max(p.count("L") for p in paths) <= 2100


def test_decimate_keeps_extremes_and_cuts_lines_at_gaps() -> None:
    ts = [float(i) for i in range(36_000)]
    vs = [0.0] * 36_000
    vs[12_345] = 99.0  # one spike
    dts, dvs = decimate(ts, vs, max_points=2000)
    assert len(dts) <= 2000 and 99.0 in dvs
    gapped = [t for t in ts if not 100 <= t < 200]
    gts, gvs = decimate(gapped, [1.0] * len(gapped), gap_s=5.0)
    assert (len(gts), sum(1 for v in gvs if math.isnan(v))) == (
        len(gapped) if len(gapped) <= 2000 else len(gts),
        1,
    )


def test_cli_report_rerenders_and_names_the_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = soak_dir(tmp_path / "soak", hours=0.5)
    assert main(["report", str(d)]) == 0
    assert capsys.readouterr().out == f"report: {d / 'report.html'}\n"
    assert (d / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert (
        capsys.readouterr().err
        == f"relaysim: error: {tmp_path / 'nope'}: no such directory (expected a soak output directory)\n"
    )
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    timeline = tmp_path / "empty" / "timeline.jsonl"
    err = capsys.readouterr().err
    assert err == f"relaysim: error: {timeline}: no timeline here (not a soak output directory?)\n"
    (d / "events.jsonl").write_bytes(b"not json\n{}\n")
    assert main(["report", str(d)]) == 2
    assert capsys.readouterr().err.startswith(f"relaysim: error: {d / 'events.jsonl'}:1: not an event")
