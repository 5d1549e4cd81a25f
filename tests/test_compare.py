"""``relaysim compare``: the regression gate on reports shaped as real runs make them.

The reports here are built by the real analysis code (``evaluate`` on evidence, ``measure_idle``,
``idle_sites``, ``cycle_growth``, ``cache_peaks``) from synthetic samples, written as JSON files and
compared through the real CLI (``relaysim.cli.main``). The same comparison on real browser runs of
the leak matrix is in tests/test_compare_matrix.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import markdown_it
import orjson
import pytest
import xmlschema

from relaysim.analysis import (
    AllocSite,
    AssertionResult,
    Change,
    CycleReading,
    Evidence,
    Identity,
    Incomparable,
    Sample,
    Thresholds,
    Tolerance,
    Verdict,
    cache_peaks,
    compare,
    cycle_growth,
    evaluate,
    idle_sites,
    measure_idle,
    parse_cache_sizes,
    parse_tolerance,
    site_deltas,
)
from relaysim.cli import main
from relaysim.dataset import build, encode_jsonl, parse_spec, spec_digest, spec_sha256
from relaysim.report import (
    AppInfo,
    Baseline,
    Environment,
    Report,
    ScenarioInfo,
    Timing,
    comparison_markdown,
    comparison_suite,
    heap_figures,
    identity_of,
    junit_xml,
    report_from_json,
    report_suite,
    subject_of,
    write_report,
)
from tests.test_dataset_spec import TINY

SCENARIO = "thread-profile-cycle"
SPEC = "ce625e007d6350026283a149209b47a98f404b2f3189276b842e9a4b254b3052"
SHA = "930d709517ec8ab413a7714923eb09ed65390197fd963b523855baac969701f4"
NAMES = ["cycle_growth", "cache_entries_bounded", "dom_handles_max", "heap_delta", "idle_rate",
         "subscriptions_closed_when_idle"]
XSD = Path(__file__).parent / "junit-10.xsd"
WINDOW_S = 5.0


def make_report(
    *,
    mode: str = "fixed",
    idle_bps: float | None = 0.0,
    idle_timer_bps: float = 0.0,
    reply_cache: int = 0,
    wrappers: int = 12,
    dom: int = 51,
    subs_open: int = 0,
    heap_extra: int = 0,
    scenario: str = SCENARIO,
    dataset: str = "seed1",
    spec: str | None = SPEC,
    sha: str = SHA,
    names: list[str] = NAMES,
) -> Report:
    """A run report as ``relaysim run`` builds it, from synthetic samples of a client that keeps
    ``reply_cache`` bytes per cycle, spends ``idle_bps`` idle (``idle_timer_bps`` of it on its
    ``idle timer`` site) and holds ``wrappers`` profile wrappers (limit 10)."""
    samples = [
        Sample(t=float(i), figures={"heapInuse": 5_000_000 + i * (1_729_280 + heap_extra) // 9,
                                    "dom_handles": min(dom, 20 + i * 10), "totalAlloc": 9_000_000 + i})
        for i in range(10)
    ]
    idle = None
    idle_deltas: list = []
    if idle_bps is not None:
        before = (AllocSite(1, "ws frames", 10, 4_000), AllocSite(7, "idle timer", 0, 0))
        timer = int(idle_timer_bps * WINDOW_S)
        after = (AllocSite(1, "ws frames", 10, 4_000), AllocSite(7, "idle timer", timer // 1024, timer))
        idle_deltas = site_deltas(before, after)
        bounds = [Sample(t=100.0, figures={"totalAlloc": 10_000_000}),
                  Sample(t=100.0 + WINDOW_S, figures={"totalAlloc": 10_000_000 + idle_bps * WINDOW_S})]
        m = measure_idle(bounds, probes=[5], settle_s=5.0, subscriptions_open=0)
        assert m is not None
        idle = dataclasses.replace(m, sites=idle_sites(idle_deltas, m.window_s))
    readings = []
    for k in range(5):  # one before the first pass, one after each; the first pass is the warm-up
        sites = (AllocSite(1, "ws frames", k, k * 4_096), AllocSite(9, "reply cache", k, k * reply_cache))
        readings.append(CycleReading(float(k), 6_000_000 + k * (4_096 + reply_cache), sites))
    cycles = cycle_growth(readings, warmup=1, ignore_sites=["ws frames"])
    assert not isinstance(cycles, str)
    cache_readings = [(1.0, parse_cache_sizes([
        {"group": "profile wrappers", "entries": wrappers, "limit": 10},
        {"group": "replies", "entries": 13, "limit": 500},
    ]))]
    evidence = Evidence(
        samples=samples, idle=idle, idle_site_deltas=idle_deltas,
        idle_unavailable=None if idle is not None else "totalAlloc unavailable (app lacks __moxie_mem_stats)",
        subscriptions_open_when_idle=subs_open, cycles=cycles, cache_readings=cache_readings,
    )
    return Report(
        scenario=ScenarioInfo(name=scenario, path=f"scenarios/{scenario}.toml",
                              thresholds=Thresholds().to_dict()),
        app=AppInfo(url="http://127.0.0.1:41000/" + ("" if mode == "fixed" else f"?{mode}"), mode=mode),
        environment=Environment(browser_name="chrome", relaysim="0.1.0", dataset_name=dataset,
                                dataset_sha256=sha, dataset_spec_sha256=spec, seed=1),
        timing=Timing(started_at="2026-11-29T10:00:00Z", finished_at="2026-11-29T10:00:12Z",
                      duration_s=12.25),
        heap=heap_figures(samples[0], samples[-1]),
        assertions=tuple(evaluate(evidence, Thresholds(), names)),
        idle=idle,
        cycles=cycles,
        caches=cache_peaks(cache_readings),
    )


def run_compare(tmp_path: Path, capsys, base: Report, new: Report, *args: str) -> tuple[int, str, str]:
    write_report(tmp_path / "base.json", base)
    write_report(tmp_path / "new.json", new)
    code = main(["compare", str(tmp_path / "base.json"), str(tmp_path / "new.json"), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def row(comparison, label: str):
    return next(r for r in comparison.rows if r.label == label)


def compared(base: Report, new: Report, **tol: Tolerance):
    return compare(subject_of(base), subject_of(new), tol or None)


# --- verdicts -------------------------------------------------------------------------------------


def test_the_same_run_twice_is_same_and_exits_0(tmp_path, capsys):
    code, out, _ = run_compare(tmp_path, capsys, make_report(), make_report())
    assert code == 0
    assert out.rstrip().endswith("compare: SAME")
    c = compared(make_report(), make_report())
    assert {r.verdict for r in c.rows} == {Change.SAME}
    assert [r.label for r in c.assertion_rows] == NAMES
    # the sites behind the assertions are compared too (the cache groups; none grew idle or per cycle)
    assert {r.label for r in c.site_rows} == {"cache_entries_bounded [cache group: profile wrappers]",
                                             "cache_entries_bounded [cache group: replies]"}


def test_noise_within_each_tolerance_is_same(tmp_path, capsys):
    base = make_report(idle_bps=100, idle_timer_bps=50, dom=51, wrappers=12)
    new = make_report(idle_bps=300, idle_timer_bps=250, dom=70, wrappers=19, heap_extra=100 * 1024)
    code, out, _ = run_compare(tmp_path, capsys, base, new)
    assert code == 0, out
    c = compared(base, new)
    assert c.verdict is Change.SAME
    assert row(c, "idle_rate").change == 200 and row(c, "idle_rate").margin == 256
    assert row(c, "idle_rate [idle site: idle timer]").verdict is Change.SAME


def test_a_creep_under_the_threshold_is_a_regression_naming_the_site(tmp_path, capsys):
    # the example: 200 B/s -> 900 B/s idle, both under the 1024 B/s budget
    base, new = make_report(idle_bps=200, idle_timer_bps=100), make_report(idle_bps=900, idle_timer_bps=800)
    assert {a.verdict for a in new.assertions} == {Verdict.PASS}
    code, out, _ = run_compare(tmp_path, capsys, base, new)
    assert code == 1
    c = compared(base, new)
    assert [r.label for r in c.regressions] == ["idle_rate", "idle_rate [idle site: idle timer]"]
    site = row(c, "idle_rate [idle site: idle timer]")
    assert (site.base, site.new, site.change) == (100, 800, 700)
    assert "idle_rate [idle site: idle timer]" in out and "+700 B/s" in out and "REGRESSED" in out


def test_a_new_site_keeping_3_kb_per_cycle_regresses_while_both_pass(tmp_path, capsys):
    base, new = make_report(), make_report(reply_cache=3_072)
    assert {a.verdict for a in new.assertions} == {Verdict.PASS}  # 3 KB < the 4 KB cycle budget
    code, out, _ = run_compare(tmp_path, capsys, base, new)
    assert code == 1
    c = compared(base, new)
    assert [r.label for r in c.regressions] == ["cycle_growth", "cycle_growth [cycle site: reply cache]"]
    assert row(c, "cycle_growth [cycle site: reply cache]").new == 3_072
    assert "cycle_growth [cycle site: reply cache]" in out and "+3,072 B/cycle" in out


def test_a_fixed_leak_is_an_improvement_and_exits_0(tmp_path, capsys):
    code, out, _ = run_compare(tmp_path, capsys, make_report(reply_cache=12_664, mode="leaks=thread-profile"),
                               make_report())
    assert code == 0
    assert out.rstrip().endswith("compare: IMPROVED")
    c = compared(make_report(reply_cache=12_664), make_report())
    assert row(c, "cycle_growth").verdict is Change.IMPROVED
    assert row(c, "cycle_growth").detail == "FAIL -> PASS"


def test_pass_to_fail_is_a_regression_even_inside_the_tolerance():
    c = compared(make_report(idle_bps=1000), make_report(idle_bps=1030))
    r = row(c, "idle_rate")
    assert r.change == 30 and r.change < r.margin
    assert r.verdict is Change.REGRESSED and r.detail == "PASS -> FAIL"


def test_exact_counts_have_no_tolerance():
    c = compared(make_report(), make_report(subs_open=1))
    assert row(c, "subscriptions_closed_when_idle").verdict is Change.REGRESSED


def test_a_figure_the_baseline_measured_and_the_new_run_did_not_is_a_regression():
    c = compared(make_report(), make_report(idle_bps=None))
    r = row(c, "idle_rate")
    assert r.verdict is Change.REGRESSED
    assert r.detail.startswith("measured in BASE, not in NEW: not measured: totalAlloc unavailable")
    assert "idle sites not compared: NEW has none" in c.notes


def test_a_figure_only_the_new_run_measured_is_not_compared():
    c = compared(make_report(idle_bps=None), make_report())
    assert row(c, "idle_rate").verdict is Change.NOT_COMPARED
    assert c.verdict is Change.SAME


def test_an_assertion_judged_on_one_side_only_is_not_compared():
    c = compared(make_report(names=NAMES[:-1]), make_report())
    r = row(c, "subscriptions_closed_when_idle")
    assert (r.verdict, r.detail) == (Change.NOT_COMPARED, "judged in NEW only")


def test_tolerance_overrides_from_the_command_line(tmp_path, capsys):
    base, new = make_report(idle_bps=200, idle_timer_bps=100), make_report(idle_bps=900, idle_timer_bps=800)
    code, _, _ = run_compare(tmp_path, capsys, base, new, "--tolerance", "idle_rate=1000")
    assert code == 0  # the override covers the sites behind idle_rate too
    code, out, _ = run_compare(tmp_path, capsys, make_report(idle_bps=200), make_report(idle_bps=230),
                               "--tolerance", "idle_rate=10%")
    assert code == 1, out  # 30 B/s > max(0, 10 % of 200)


@pytest.mark.parametrize("spec, message", [
    ("nope=1", "unknown assertion 'nope'"),
    ("idle_rate=abc", "--tolerance takes NAME=ABS, NAME=REL% or NAME=ABS,REL%"),
    ("idle_rate", "--tolerance takes NAME=ABS"),
    ("idle_rate=1,2", "--tolerance takes NAME=ABS"),
    ("idle_rate=-5", "values must be numbers >= 0"),
])
def test_a_bad_tolerance_is_one_line_and_exit_2(tmp_path, capsys, spec, message):
    code, out, err = run_compare(tmp_path, capsys, make_report(), make_report(), "--tolerance", spec)
    assert code == 2 and out == ""
    assert err.startswith("relaysim: error: ") and message in err and err.count("\n") == 1


def test_parse_tolerance():
    assert parse_tolerance("idle_rate=512") == ("idle_rate", Tolerance(abs=512))
    assert parse_tolerance("heap_delta=10%") == ("heap_delta", Tolerance(rel=0.1))
    assert parse_tolerance("soak_alloc_rate=512, 10%") == ("soak_alloc_rate", Tolerance(abs=512, rel=0.1))
    assert Tolerance(abs=256, rel=0.25).margin(200) == 256
    assert Tolerance(abs=256, rel=0.25).margin(-4000) == 1000
    with pytest.raises(ValueError, match="tolerance rel must be a number >= 0"):
        Tolerance(rel=-0.1)


# --- unusable input: exit 2 saying what differs ----------------------------------------------------


@pytest.mark.parametrize("new, reason", [
    (make_report(scenario="idle"), "the scenario differs: BASE ran 'thread-profile-cycle', NEW ran 'idle'"),
    (make_report(dataset="seed2", spec="77" * 32),
     "the dataset differs by name: BASE 'seed1', NEW 'seed2'; the dataset differs by spec digest"),
    (make_report(spec="77" * 32),
     "the dataset differs by spec digest: BASE ce625e007d63, NEW 777777777777 (same name 'seed1': its spec "
     "or the generator changed)"),
])
def test_a_different_scenario_or_dataset_is_exit_2_saying_which(tmp_path, capsys, new, reason):
    code, out, err = run_compare(tmp_path, capsys, make_report(), new)
    assert code == 2 and out == ""
    head = f"relaysim: error: cannot compare {tmp_path / 'new.json'} with {tmp_path / 'base.json'}: "
    assert err.startswith(head)
    assert reason in err and err.count("\n") == 1


def test_the_files_sha256_is_not_the_identity_when_the_spec_digest_is_known(tmp_path, capsys):
    # served on another port, the same spec builds another file: same data, other hints
    code, out, _ = run_compare(tmp_path, capsys, make_report(), make_report(sha="12" * 32))
    assert code == 0
    assert "the dataset files' sha256 differ (BASE 930d709517ec, NEW 121212121212)" in out
    assert "the spec digest ce625e007d63 is the same, so is the data" in out


def test_without_spec_digests_the_file_is_the_identity(tmp_path, capsys):
    other_file = make_report(spec=None, sha="12" * 32)
    code, _, err = run_compare(tmp_path, capsys, make_report(spec=None), other_file)
    assert code == 2
    assert "the dataset file's sha256 differs: BASE 930d709517ec, NEW 121212121212, and neither report " \
           "records a dataset spec digest" in err
    code, out, _ = run_compare(tmp_path, capsys, make_report(spec=None), make_report())
    assert code == 0 and "BASE records no dataset spec digest: the datasets were matched by name only" in out


def test_incomparable_carries_every_reason():
    with pytest.raises(Incomparable) as caught:
        compared(make_report(), make_report(scenario="idle", dataset="seed2", spec="77" * 32))
    assert len(caught.value.reasons) == 3  # scenario, dataset name, spec digest


def test_a_missing_or_damaged_file_is_exit_2(tmp_path, capsys):
    write_report(tmp_path / "base.json", make_report())
    (tmp_path / "junk.json").write_text("{not json")
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "nope.json")]) == 2
    assert "nope.json: cannot read report" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "junk.json")]) == 2
    assert "junk.json: not a relaysim report" in capsys.readouterr().err
    (tmp_path / "soak").mkdir()
    assert main(["compare", str(tmp_path / "base.json"), str(tmp_path / "soak")]) == 2
    assert "soak: a directory without summary.json" in capsys.readouterr().err


# --- soak summaries -------------------------------------------------------------------------------


def soak_summary(alloc_ucb: float, ceiling: float) -> Report:
    results = (
        AssertionResult("soak_alloc_rate", 1024.0, alloc_ucb, "B/s", Verdict.PASS, "lowest UCB", "<"),
        AssertionResult("soak_heap_ceiling", 128 * 2**20, ceiling, "B", Verdict.PASS, "max heapInuse", "<"),
    )
    r = make_report(scenario="soak", names=["idle_rate"])
    return dataclasses.replace(r, assertions=(*results, *r.assertions), cycles=None, caches=None)


def test_soak_summaries_compare_alike_and_a_soak_directory_means_its_summary(tmp_path, capsys):
    (tmp_path / "soak-new").mkdir()
    write_report(tmp_path / "base.json", soak_summary(300, 40 * 2**20))
    write_report(tmp_path / "soak-new" / "summary.json", soak_summary(800, 41 * 2**20))
    code = main(["compare", str(tmp_path / "base.json"), str(tmp_path / "soak-new")])
    out = capsys.readouterr().out
    assert code == 1
    assert "soak_alloc_rate" in out and "+500 B/s" in out and "REGRESSED" in out
    c = compared(soak_summary(300, 40 * 2**20), soak_summary(800, 41 * 2**20))
    assert [r.label for r in c.regressions] == ["soak_alloc_rate"]  # 1 MiB on 40 is inside 4 MiB
    with pytest.raises(Incomparable, match="BASE ran 'soak', NEW ran 'thread-profile-cycle'"):
        compared(soak_summary(300, 1), make_report())


# --- outputs: markdown, JUnit XML, JSON, the report's own fields -----------------------------------


def render_markdown(md: str) -> str:
    """HTML as a CommonMark renderer with GFM tables makes it (alignment styles dropped)."""
    return re.sub(r' style="[^"]*"', "", markdown_it.MarkdownIt("commonmark").enable("table").render(md))


def test_markdown_renders_the_verdict_table_and_the_sites_that_grew(tmp_path, capsys):
    code, md, _ = run_compare(tmp_path, capsys, make_report(), make_report(reply_cache=12_664, wrappers=37,
                                                                             mode="leaks=thread-profile"),
                              "--format", "markdown")
    assert code == 1
    assert md.startswith("### relaysim compare: thread-profile-cycle — REGRESSED\n")
    html = render_markdown(md)
    tables = html.split("<table>")[1:]
    assert len(tables) == 2
    verdicts = tables[0]
    assert "<th>assertion</th>" in verdicts and "<th>verdict</th>" in verdicts
    assert verdicts.count("<tr>") == 1 + len(NAMES)
    assert "<td><code>cycle_growth</code></td>" in verdicts and "<strong>regressed</strong>" in verdicts
    grown = tables[1]
    assert "<td>reply cache</td>" in grown and "<td>+12,664 B/cycle</td>" in grown
    assert "<td>profile wrappers</td>" in grown
    assert "NEW: weakest of 3 cycle(s) after 1 warm-up" in md and "grew in every cycle: reply cache" in md


def test_markdown_cells_cannot_break_the_table():
    a = make_report(idle_bps=100)
    b = make_report(idle_bps=900, idle_timer_bps=800)
    sites = (dataclasses.replace(b.idle.sites[0], name="evil | site\nname"),)  # type: ignore[union-attr]
    b = dataclasses.replace(b, idle=dataclasses.replace(b.idle, sites=sites))  # type: ignore[arg-type]
    html = render_markdown(comparison_markdown(compared(a, b)))
    assert "<td>evil | site name</td>" in html


def validate(xml: bytes, tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_bytes(xml)
    xmlschema.XMLSchema(XSD).validate(str(path))


def test_junit_xml_of_a_comparison_validates_and_fails_each_regression(tmp_path, capsys):
    code, _, _ = run_compare(tmp_path, capsys, make_report(), make_report(reply_cache=12_664),
                             "--junit-xml", str(tmp_path / "compare.xml"))
    assert code == 1
    xsd = xmlschema.XMLSchema(XSD)
    xsd.validate(str(tmp_path / "compare.xml"))
    doc = xsd.to_dict(str(tmp_path / "compare.xml"))
    suite = doc["testsuite"][0]
    assert suite["@name"] == "relaysim compare: thread-profile-cycle"
    assert suite["@failures"] == "2" and suite["@tests"] == str(len(NAMES) + 3)
    failed = {c["@name"]: c["failure"][0] for c in suite["testcase"] if "failure" in c}
    assert set(failed) == {"cycle_growth", "cycle_growth [cycle site: reply cache]"}
    assert "grew in every cycle: reply cache +12,664 B/cycle" in failed["cycle_growth"]["$"]


def test_junit_xml_of_a_run_has_a_case_per_assertion_failures_and_skips(tmp_path):
    leaky = make_report(reply_cache=12_664, idle_bps=None)
    xml = junit_xml([report_suite(leaky)])
    validate(xml, tmp_path)
    doc = xmlschema.XMLSchema(XSD).to_dict(xml.decode())
    suite = doc["testsuite"][0]
    assert suite["@name"] == "relaysim run: thread-profile-cycle" and suite["@tests"] == str(len(NAMES))
    cases = {c["@name"]: c for c in suite["testcase"]}
    assert list(cases) == NAMES
    assert "failure" in cases["cycle_growth"] and "skipped" in cases["idle_rate"]
    assert cases["idle_rate"]["skipped"][0]["@message"].startswith("not measured: totalAlloc unavailable")
    assert (suite["@failures"], suite["@skipped"]) == ("1", "1")
    # run --baseline writes both suites into one file
    both = junit_xml([report_suite(leaky), comparison_suite(compared(make_report(), leaky))])
    validate(both, tmp_path)
    assert both.count(b"<testsuite ") == 2


def test_json_output_carries_every_row(tmp_path, capsys):
    code, out, _ = run_compare(tmp_path, capsys, make_report(), make_report(reply_cache=12_664),
                               "--format", "json")
    doc = orjson.loads(out)
    assert code == 1 and doc["verdict"] == "regressed"
    site = next(r for r in doc["rows"] if r["site"] == "reply cache")
    assert site["kind"] == "cycle site" and site["verdict"] == "regressed" and site["new"] == 12_664
    assert doc["new"]["dataset_spec_sha256"] == SPEC


def test_the_report_keeps_idle_sites_the_spec_digest_and_the_baseline_exactly():
    base = make_report()
    new = dataclasses.replace(
        make_report(idle_bps=900, idle_timer_bps=800),
        baseline=Baseline(path="baseline/report.json", identity=identity_of(base), verdict="regressed",
                          regressed=("idle_rate",)),
    )
    data = orjson.loads(new.to_json())
    timer = {"site": 7, "name": "idle timer", "count": 3, "bytes": 4000, "rate": 800.0}
    assert data["idle"]["sites"] == [timer]
    assert data["environment"]["dataset_spec_sha256"] == SPEC
    assert data["baseline"]["identity"] == {
        "scenario": SCENARIO, "dataset_name": "seed1", "dataset_spec_sha256": SPEC, "dataset_sha256": SHA,
        "app_mode": "fixed", "app_url": "http://127.0.0.1:41000/", "relaysim": "0.1.0",
    }
    assert report_from_json(new.to_json()) == new


# --- the dataset's identity -------------------------------------------------------------------------


def test_the_spec_digest_names_the_data_across_relay_urls():
    spec = parse_spec(TINY)
    a, b = "ws://127.0.0.1:7447/", "ws://127.0.0.1:41999/"
    file_a = hashlib.sha256(encode_jsonl(build(spec, a))).hexdigest()
    file_b = hashlib.sha256(encode_jsonl(build(spec, b))).hexdigest()
    assert file_a != file_b and spec_digest(spec, a) != spec_digest(spec, b)  # the hints name the relay
    assert spec_sha256(spec) == spec_sha256(parse_spec(TINY, "elsewhere.toml"))
    assert spec_sha256(spec) != spec_sha256(parse_spec(TINY.replace("roots = 40", "roots = 41")))


def test_the_relay_reports_the_spec_digest_of_what_it_serves(tmp_path, monkeypatch):
    from relaysim.relay.loading import load_served

    monkeypatch.setenv("RELAYSIM_CACHE", str(tmp_path / "cache"))
    (tmp_path / "tiny.toml").write_text(TINY)
    served, _ = load_served(str(tmp_path / "tiny.toml"), (), relay_url="ws://127.0.0.1:41999/", capacity=None)
    assert served.info["spec_sha256"] == spec_sha256(parse_spec(TINY))
    assert served.info["sha256"] != served.info["spec_sha256"]
    assert Identity(scenario="x").dataset_spec_sha256 is None


# --- relaysim run --baseline: what is checked before a browser starts ------------------------------


def test_run_baseline_of_another_scenario_is_refused_before_the_run(tmp_path, capsys):
    write_report(tmp_path / "idle.json", make_report(scenario="idle"))
    assert main(["run", "thread-profile-cycle", "--baseline", str(tmp_path / "idle.json")]) == 2
    err = capsys.readouterr().err
    assert err == (f"relaysim: error: cannot compare with {tmp_path / 'idle.json'}: the scenario differs: "
                   "BASE ran 'idle', this run is 'thread-profile-cycle'\n")


@pytest.mark.parametrize("args, message", [
    (["--tolerance", "idle_rate=5"], "--tolerance needs --baseline"),
    (["--baseline", "nope.json"], "nope.json: cannot read report"),
    (["--baseline", "x.json", "--tolerance", "idle_rate=x"], "--tolerance takes NAME=ABS"),
])
def test_run_baseline_usage_errors_come_before_the_run(capsys, args, message):
    assert main(["run", "idle", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relaysim: error: ") and message in err


def test_the_documented_tolerances_are_the_declared_ones():
    from relaysim.analysis import get_assertion

    text = (Path(__file__).parents[1] / "docs" / "ci.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|", text, flags=re.M)
    documented = {name: (abs_, rel) for name, abs_, rel in rows}
    assert len(documented) >= 17
    for name, (abs_text, rel_text) in documented.items():
        tol = get_assertion(name).tolerance
        assert float(abs_text.split()[0]) == tol.abs, name
        assert float(rel_text.strip().rstrip(" %") or 0) / 100 == pytest.approx(tol.rel), name


def test_the_text_table_keeps_each_row_on_one_line():
    from relaysim.report import render_comparison

    text = render_comparison(compared(make_report(), make_report(wrappers=37)))
    line = next(x for x in text.splitlines() if "[cache group: profile wrappers]" in x)
    assert line.split() == ["cache_entries_bounded", "[cache", "group:", "profile", "wrappers]", "1.20", "x",
                            "limit", "3.70", "x", "limit", "+2.50", "x", "limit", "(+208.3%)", "REGRESSED"]
