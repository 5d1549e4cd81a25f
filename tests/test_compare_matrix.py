"""The regression gate on real runs: the leak matrix's own reports, compared.

The reports are the ones tests/test_leak_matrix.py makes (real relay, real headless Chromium, the
real CLI; tests/matrix_runs.py runs each client once per session), so this file adds one run: a
second fixed run of thread-profile-cycle, made with ``relaysim run --baseline`` (the run and the
comparison in one step), for fixed vs fixed.

* fixed vs fixed: SAME, exit 0 -- run-to-run noise must not flag;
* fixed vs each leaky client of the matrix: REGRESSED, exit 1, naming the assertion meant to catch
  the leak and, where the leak lives in an allocation site or a cache group, that site;
* reports of two scenarios: exit 2 saying so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xmlschema

from relaysim.cli import main
from tests.test_leak_matrix import MATRIX, SHORT_IDLE, run_cli

pytestmark = pytest.mark.browser

XSD = Path(__file__).parent / "junit-10.xsd"

# leak -> the site behind the assertion that the comparison must name (kind, site); the others' figure
# has no site (threadEvents entries, subscriptions, DOM handles are counts of one table)
SITES = {
    "idle": ("idle site", "idle timer"),
    "maps": ("cache group", "profile wrappers"),
    "thread-profile": ("cycle site", "reply cache"),
    "reconnect": ("cycle site", "reconnects"),
}


def saved(path: Path, report: dict) -> str:
    path.write_text(json.dumps(report))
    return str(path)


@pytest.mark.parametrize("leak", list(MATRIX))
def test_fixed_vs_each_leaky_client_regresses_naming_the_assertion_and_the_site(tmp_path, capsys, leak):
    scenario, meant = MATRIX[leak]
    base = saved(tmp_path / "base.json", run_cli(tmp_path, capsys, scenario, "builtin")[1])
    new = saved(tmp_path / "new.json", run_cli(tmp_path, capsys, scenario, f"builtin?leaks={leak}")[1])
    capsys.readouterr()
    code = main(["compare", base, new, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    regressed = [r for r in doc["rows"] if r["verdict"] == "regressed"]
    assert set(meant) <= {r["assertion"] for r in regressed if r["site"] is None}, regressed
    if leak in SITES:
        kind, site = SITES[leak]
        grew = [r for r in regressed if r["site"] == site]
        assert grew and grew[0]["kind"] == kind and grew[0]["change"] > grew[0]["margin"], regressed
    # the text a person reads names them too
    assert main(["compare", base, new]) == 1
    out = capsys.readouterr().out
    assert all(name in out for name in meant) and "REGRESSED" in out
    if leak in SITES:
        assert f"[{SITES[leak][0]}: {SITES[leak][1]}]" in out


def test_fixed_vs_fixed_is_same_through_run_baseline(tmp_path, capsys):
    scenario = "thread-profile-cycle"
    base = saved(tmp_path / "base.json", run_cli(tmp_path, capsys, scenario, "builtin")[1])
    capsys.readouterr()
    new, junit = tmp_path / "new.json", tmp_path / "junit.xml"
    code = main(["run", scenario, "--app", "builtin", *SHORT_IDLE, "--report", str(new),
                 "--baseline", base, "--format", "markdown", "--junit-xml", str(junit)])
    out = capsys.readouterr()
    assert code == 0, out
    md = out.out
    assert md.startswith(f"### relaysim run: {scenario} — PASS\n"), md
    assert f"### relaysim compare: {scenario} — SAME\n" in md, md
    assert "report:" not in md  # stdout is the comment only; the paths go to stderr
    report = json.loads(new.read_text())
    assert report["baseline"]["verdict"] == "same" and report["baseline"]["regressed"] == []
    identity = report["baseline"]["identity"]
    assert identity["scenario"] == scenario and identity["app_mode"] == "fixed"
    assert identity["dataset_name"] == "seed1" and len(identity["dataset_spec_sha256"]) == 64
    assert identity["dataset_spec_sha256"] == report["environment"]["dataset_spec_sha256"]
    xsd = xmlschema.XMLSchema(XSD)
    xsd.validate(str(junit))
    suites = xsd.to_dict(str(junit))["testsuite"]
    assert [s["@name"] for s in suites] == [f"relaysim run: {scenario}", f"relaysim compare: {scenario}"]
    assert [s["@failures"] for s in suites] == ["0", "0"]
    # and relaysim compare on the two files agrees
    assert main(["compare", base, str(new)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("compare: SAME")


def test_reports_of_two_scenarios_are_refused_with_exit_2(tmp_path, capsys):
    idle = saved(tmp_path / "idle.json", run_cli(tmp_path, capsys, "idle", "builtin")[1])
    cycle = saved(tmp_path / "cycle.json", run_cli(tmp_path, capsys, "thread-profile-cycle", "builtin")[1])
    capsys.readouterr()
    assert main(["compare", idle, cycle]) == 2
    err = capsys.readouterr().err
    assert "the scenario differs: BASE ran 'idle', NEW ran 'thread-profile-cycle'" in err
    assert err.count("\n") == 1
