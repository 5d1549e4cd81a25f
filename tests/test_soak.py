"""``relaysim soak`` end to end: real relay, real headless Chromium, short soaks (about 5 minutes in all).

Each test runs the real CLI -- in this process, or as a child process when it must be killed -- and
reads back only the files the soak wrote (timeline.jsonl, events.jsonl, summary.json, report.html).
The plan (pure) is tested without a browser at the end.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relaysim.cli import main
from relaysim.report import read_report, read_timeline
from relaysim.soak import BrowsePlan, browsing_step_types, plan_rng
from relaysim.soak._files import active_seconds
from relaysim.soak._procs import descendants

# Short soaks: browsing bursts of ~15 s, idle windows of 8 s, a sample every 2 s, light traffic.
# A short soak at a stress pace (a step every 1-4 s, not the default person's 10-40 s), so a minute
# holds several browsing steps and idle periods.
SHORT = ["--browse", "15", "--think", "1,4", "--idle-window", "8", "--interval", "2",
         "--traffic", "notes=1/s,reactions=2/s", "--progress", "off"]


def events(d: Path) -> list[dict]:
    return [json.loads(line) for line in (d / "events.jsonl").read_text().splitlines()]


def verdicts(d: Path) -> dict[str, str]:
    return {a.name: a.verdict.value for a in read_report(d / "summary.json").assertions}


def strictly_increasing(d: Path) -> list[float]:
    ts = [s.t for s in read_timeline(d / "timeline.jsonl").samples]
    assert all(b > a for a, b in itertools.pairwise(ts)), "sample times must strictly increase"
    return ts


def start_child(d: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "relaysim", "soak", *args, *SHORT], cwd=d.parent,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def wait_for(predicate, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def sample_count(d: Path) -> int:
    try:
        return sum(1 for line in (d / "timeline.jsonl").read_bytes().splitlines() if b'"sample"' in line)
    except FileNotFoundError:
        return 0


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def kill_tree(pid: int) -> None:
    """SIGKILL a child soak and then what it started (the browser would outlive it otherwise)."""
    below = descendants(pid)
    os.kill(pid, signal.SIGKILL)
    for p in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


@pytest.mark.browser
def test_fixed_client_short_soak_passes_and_writes_every_file(tmp_path, capsys):
    out = tmp_path / "soak"
    code = main(["soak", "--minutes", "1", "--out", str(out), *SHORT])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = read_report(out / "summary.json")  # parses as a relaysim.report/1 document
    names = [a.name for a in report.assertions]
    assert names[:6] == ["soak_alloc_rate", "soak_heap_trend", "soak_dom_trend", "soak_heap_plateau",
                         "soak_restarts_per_hour", "soak_heap_ceiling"]
    assert set(names[6:]) == {"heap_inuse_after_5min", "dom_handles_max", "idle_rate",
                              "subscriptions_closed_when_idle"}
    v = verdicts(out)
    assert "FAIL" not in v.values()
    assert v["soak_alloc_rate"] == v["idle_rate"] == v["subscriptions_closed_when_idle"] == "PASS"
    ts = strictly_increasing(out)
    assert report.soak is not None and report.soak.samples == len(ts)
    ev = events(out)
    kinds = [e["type"] for e in ev]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    assert kinds.count("idle_start") == kinds.count("idle_end") >= 1
    assert all(e["rate"] is not None for e in ev if e["type"] == "idle_end")
    assert "page" in kinds and "fault" not in kinds
    assert active_seconds(ts, [ev[0]["t"]]) >= 60
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "soak_alloc_rate" in html
    assert "<script" not in html and 'src="http' not in html and "href=\"http" not in html  # self-contained
    assert "verdict:" in printed and str(out / "report.html") in printed


@pytest.mark.browser
def test_idle_leak_fails_naming_the_verdicts(tmp_path, capsys):
    out = tmp_path / "leak"
    code = main(["soak", "--minutes", "0.75", "--app", "builtin?leaks=idle", "--out", str(out), *SHORT])
    printed = capsys.readouterr().out
    assert code == 1, printed
    v = verdicts(out)
    assert v["soak_alloc_rate"] == "FAIL" and v["idle_rate"] == "FAIL"
    assert [n for n, x in v.items() if x == "FAIL"] == ["soak_alloc_rate", "idle_rate"]
    assert "soak_alloc_rate" in printed and "FAIL" in printed
    rates = [e["rate"] for e in events(out) if e["type"] == "idle_end"]
    assert rates and min(rates) > 1024  # every idle period shows the leak


@pytest.mark.browser
def test_sigkill_then_resume_loses_and_duplicates_no_sample(tmp_path):
    out = tmp_path / "killed"
    child = start_child(out, "--minutes", "0.9", "--out", str(out))
    try:
        wait_for(lambda: sample_count(out) >= 8)
    finally:
        kill_tree(child.pid)
        child.wait(timeout=30)
    time.sleep(8)  # stopped for longer than 3 sampling intervals: the report shows a gap
    before = read_timeline(out / "timeline.jsonl")
    assert not (out / "summary.json").exists()
    n_before = len(before.samples)

    code = main(["soak", "--resume", str(out), "--progress", "off"])
    assert code in (0, 1), code
    ts = strictly_increasing(out)  # also: no sample written twice (times would repeat)
    ev = events(out)
    stop = [e for e in ev if e["type"] == "stop"][-1]
    assert len(ts) == n_before + stop["samples_written"]  # nothing lost: old lines kept, new ones appended
    resume = next(e for e in ev if e["type"] == "resume")
    assert resume["samples_before"] == n_before
    replaced = next(e for e in ev if e["type"] == "session_replaced")
    assert replaced["reason"] == "resume" and replaced["t"] > before.samples[-1].t
    assert [e["type"] for e in ev].count("start") == 1
    report = read_report(out / "summary.json")
    assert report.soak is not None and report.soak.samples == len(ts)
    assert [g.cause for g in report.soak.gaps] == ["resume"]  # the stopped time is a gap, named
    assert [s.begins for s in report.soak.segments] == ["start", "session_replaced"]
    assert any("resumed 1 time" in n for n in report.notes)
    assert 50 <= report.timing.duration_s <= 90  # --minutes 0.9 of sampled time over both processes


@pytest.mark.browser
def test_lost_webdriver_session_is_replaced_and_sigterm_finishes_the_report(tmp_path):
    out = tmp_path / "fault"
    child = start_child(out, "--minutes", "2", "--out", str(out))
    try:
        wait_for(lambda: sample_count(out) >= 5)
        drivers = [p for p in descendants(child.pid) if comm(p) == "chromedriver"]
        assert drivers
        for p in drivers:
            os.kill(p, signal.SIGKILL)
        wait_for(lambda: any(e["type"] == "session_replaced" for e in events(out)), timeout=60)
        n = sample_count(out)
        wait_for(lambda: sample_count(out) >= n + 3)  # the soak goes on in the new session
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            kill_tree(child.pid)
    assert code in (0, 1, 3), child.stderr.read() if child.stderr else b""
    ev = events(out)
    kinds = [e["type"] for e in ev]
    fault = next(e for e in ev if e["type"] == "fault")
    replaced = next(e for e in ev if e["type"] == "session_replaced")
    assert replaced["reason"] == "harness fault" and replaced["t"] > fault["t"]
    assert ev[-1]["type"] == "stop" and ev[-1]["reason"] == "SIGTERM"
    assert "cleanup" in kinds  # the lost session's chromium was ended, not left running
    report = read_report(out / "summary.json")
    assert (out / "report.html").is_file()
    assert any("fault" in n for n in report.notes)
    assert report.soak is not None and [s.begins for s in report.soak.segments][-1] == "session_replaced"
    strictly_increasing(out)
    assert not [p for p in descendants(child.pid) if comm(p) in ("chromedriver", "chromium")]


@pytest.mark.browser
def test_proactive_restart_is_seen_restored_and_counted(tmp_path, capsys):
    out = tmp_path / "restart"
    app = "builtin?restart_mb=1&restart_poll=1"  # restarts at 1 MiB, at most once per 10 polls (10 s)
    code = main(["soak", "--minutes", "0.75", "--app", app, "--out", str(out), *SHORT])
    capsys.readouterr()
    assert code == 1
    ev = events(out)
    restarts = [e for e in ev if e["type"] == "restart"]
    assert restarts and all(e["heap_after"] < e["heap_before"] for e in restarts)
    restored = [e for e in ev if e["type"] == "restart_restored"]
    assert restored and all(e["restored"] for e in restored)  # page, arg, pubkey and scroll came back
    assert all(e["after"]["pubkey"] == e["before"]["pubkey"] is not None for e in restored)
    report = read_report(out / "summary.json")
    assert report.soak is not None and len(report.soak.restarts) == len(restarts)
    assert all("counter" in r.evidence for r in report.soak.restarts)
    v = verdicts(out)
    assert v["soak_restarts_per_hour"] == "FAIL"
    assert [n for n, x in v.items() if x == "FAIL"] == ["soak_restarts_per_hour"]


# -- without a browser --------------------------------------------------------------------------------


def test_plan_draws_every_browsing_step_type_from_its_declaration_reproducibly():
    kinds = {c.KIND for c in browsing_step_types()}
    assert {"feed", "notifications", "scroll", "open_thread", "open_profile", "back", "open"} <= kinds

    def draw(seed: int) -> list[str]:
        plan = BrowsePlan(plan_rng(seed), browse_s=30)
        plan.new_burst()
        return [repr(plan.next_step()) for _ in range(60)]

    assert draw(7) == draw(7) and draw(7) != draw(8)
    plan = BrowsePlan(plan_rng(1))
    plan.new_burst()
    steps = [plan.next_step().step for _ in range(300)]
    assert steps[0].KIND == "feed"  # a burst opens on the feed
    assert {s.KIND for s in steps if s is not None} == kinds
    assert all(s.n <= 3 for s in steps if s is not None and s.KIND == "scroll")  # explore bounds
    assert plan_rng(1, 1).random() != plan_rng(1).random()  # a resumed process browses anew


def test_usage_errors_are_one_line(tmp_path, capsys):
    assert main(["soak", "--minutes", "0", "--out", str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err == "relaysim: error: --minutes must be > 0, got 0\n"
    assert main(["soak", "--think", "9,3", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err == "relaysim: error: --think must be LO,HI with 0 <= LO <= HI seconds, got '9,3'\n"
    assert main(["soak", "--traffic", "likes=2/s", "--out", str(tmp_path / "a")]) == 2
    assert "unknown traffic kind 'likes'" in capsys.readouterr().err
    assert main(["soak", "--resume", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == (
        f"relaysim: error: {tmp_path / 'none'}: no timeline.jsonl here (not a soak output directory?)\n"
    )
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "timeline.jsonl").write_text("")
    assert main(["soak", "--minutes", "1", "--out", str(tmp_path / "b")]) == 2
    assert "already holds a soak (use --resume" in capsys.readouterr().err
    assert main(["soak", "--resume", str(tmp_path / "b"), "--minutes", "3"]) == 2
    assert capsys.readouterr().err.endswith("drop --minutes\n")


def test_run_progress_shows_step_phase_countdown_and_figures():
    import io

    from relaysim.analysis import Sample
    from relaysim.scenario import Feed, MeasureIdle, Wait
    from relaysim.soak.progress import PlainProgress, RunHooks

    out = io.StringIO()
    hooks = RunHooks(PlainProgress("relaysim run idle", stream=out, every_s=0.0), idle_window=3.0)
    hooks.on_step(1, 3, Feed())
    hooks.on_sample(Sample(t=100.0, figures={"heapInuse": 2 * 2**20, "totalAlloc": 1000, "dom_handles": 50,
                                             "relay_subscriptions": 1}), "feed")
    hooks.on_step(2, 3, Wait(seconds=20.0))
    hooks.on_step(3, 3, MeasureIdle(window=30.0, windows=2))
    hooks.on_sample(Sample(t=110.0, figures={"totalAlloc": 1000 + 5120, "relay_subscriptions": 0}), "idle")
    lines = out.getvalue().splitlines()
    assert "phase step 1 of 3: browsing feed" in lines[0]
    assert "heapInuse 2.00 MiB" in lines[1] and "DOM handles 50" in lines[1] and "relay subs 1" in lines[1]
    assert "phase step 2 of 3: waiting (20 s left)" in lines[2]
    assert "phase step 3 of 3: idle: settling" in lines[3]
    assert "phase step 3 of 3: idle window (6 s left)" in lines[4]  # --idle-window 3 x 2 windows
    assert "alloc rate 512 B/s" in lines[-1]


def test_verdict_so_far_names_a_heap_growing_past_the_soak_budget_after_warm_up():
    from relaysim.analysis import Sample
    from relaysim.soak._loop import _Verdict

    v = _Verdict()
    v.new_segment(0.0, 300.0)
    for t in range(0, 600, 10):  # 10 KB/s: past 3,728 B/s (128 MiB in 10 h)
        v.sample(Sample(t=float(t), figures={"heapInuse": 1e6 + 10_000 * t, "dom_handles": 50}), float(t))
    assert v.text(0, 600 / 3600) == "FAIL so far: heapInuse growing 10,000 B/s"
    v.new_segment(600.0, 30.0)  # a restart: trended afresh after settling; the worst segment stays
    for t in range(600, 900, 10):
        v.sample(Sample(t=float(t), figures={"heapInuse": 1e6}), float(t))
    assert v.text(0, 0.25) == "FAIL so far: heapInuse growing 10,000 B/s"
    flat = _Verdict()
    flat.new_segment(0.0, 300.0)
    flat.worst_idle = 12.0
    for t in range(0, 600, 10):
        flat.sample(Sample(t=float(t), figures={"heapInuse": 1e6 + 100 * t}), float(t))
    assert flat.text(0, 600 / 3600) == "PASS so far"
