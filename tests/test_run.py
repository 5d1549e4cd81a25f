"""``relaysim run`` and the scenario runner, end to end: real relay, real headless Chromium, real client.

Idle windows are short here (3 s) to keep the file within about a minute and a half; the 30 s window of
the seed is the CLI's default and is exercised by the shipped scenarios, not by these tests.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from relaysim.browser import BrowserSpec
from relaysim.cli import main
from relaysim.relay import RelayConfig, SyncRelay
from relaysim.scenario import load_scenario
from relaysim.scenario.runner import RunOptions, build_report, resolve_app, run

pytestmark = pytest.mark.browser

# A page that is not the reference client: no hooks at all. It subscribes like any Nostr client would.
NO_HOOKS_PAGE = """<!doctype html><title>no hooks</title><p>plain client</p><script>
const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/');
ws.onopen = () => ws.send(JSON.stringify(['REQ', 'plain', {kinds: [1], limit: 3}]));
</script>"""

# Has the hooks, but __moxie_close_all does nothing: its subscription stays open.
STUBBORN_PAGE = """<!doctype html><title>stubborn</title><script>
let total = 0;
window.__moxie_mem_stats = () => ({totalAlloc: total, mallocs: 0, heapInuse: total, sys: 0});
window.__moxie_read_alloc_counters = () => [];
window.__moxie_dom_handles = () => 1;
window.__moxie_close_all = () => true;
const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/');
ws.onopen = () => ws.send(JSON.stringify(['REQ', 'kept', {kinds: [1], limit: 1}]));
</script>"""

SHORT_IDLE = """
name = "short-idle"
app = "builtin"
dataset = "seed1"

[[steps]]
do = "wait"
seconds = 1.5

[[steps]]
do = "close_all"

[[steps]]
do = "measure_idle"
settle = 1
window = 3

[[steps]]
do = "assert"
names = ["idle_rate", "subscriptions_closed_when_idle", "dom_handles_max", "heap_delta"]
"""


THREADS = """
name = "threads"
app = "builtin"
dataset = "seed1"

[[steps]]
do = "repeat"
times = 2

  [[steps.steps]]
  do = "open_thread"
  k = 0

  [[steps.steps]]
  do = "back"

  [[steps.steps]]
  do = "open_thread"
  k = 2

  [[steps.steps]]
  do = "open_profile"
  from_thread = true

  [[steps.steps]]
  do = "back"
  n = 2

[[steps]]
do = "close_all"

[[steps]]
do = "measure_idle"
settle = 1
window = 2

[[steps]]
do = "assert"
names = ["thread_events_released", "idle_rate", "subscriptions_closed_when_idle", "dom_handles_max"]
"""


def _scenario(tmp_path, text=SHORT_IDLE):
    path = tmp_path / "scenario.toml"
    path.write_text(textwrap.dedent(text))
    return load_scenario(path)


def _static(tmp_path, html):
    root = tmp_path / "app"
    root.mkdir()
    (root / "index.html").write_text(html)
    return root


def test_cli_fixed_client_passes_and_writes_report(tmp_path, capsys):
    report = tmp_path / "r.json"
    timeline = tmp_path / "t.jsonl"
    code = main(["run", "idle", "--idle-window", "3", "--report", str(report), "--timeline", str(timeline)])
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads(report.read_text())
    assert data["schema_version"] == "relaysim.report/1"
    assert data["verdict"] == "PASS"
    seed1_sha256 = (Path(__file__).resolve().parents[1] / "datasets" / "seed1.sha256").read_text().split()[0]
    assert data["environment"]["dataset_name"] == "seed1"
    assert data["environment"]["dataset_sha256"] == seed1_sha256
    names = {a["name"]: a["verdict"] for a in data["assertions"]}
    assert names == {
        "idle_rate": "PASS",
        "subscriptions_closed_when_idle": "PASS",
        "dom_handles_max": "PASS",
        "heap_delta": "PASS",
    }
    assert data["idle"]["window_s"] == pytest.approx(3, abs=0.5)
    assert data["timing"]["sampling"]["round_trips_per_sample"] >= 1
    assert data["probe_cost"]["calls_measured"] >= 2
    # the harness turned __moxie_instrument on: the seed's threshold log is in the report
    assert any(n.startswith("alloc_log: ") and "ws._conns.size=1" in n for n in data["notes"])
    records = [json.loads(line) for line in timeline.read_text().splitlines()]
    samples = [r for r in records if r["type"] == "sample"]
    assert len(samples) == data["timing"]["sampling"]["samples"]
    steps = [r["kind"] for r in records if r["type"] == "step"]
    assert steps == ["open", "wait", "close_all", "measure_idle", "assert"]
    assert "idle_rate" in out and "PASS" in out


def test_cli_idle_leak_fails_exactly_idle_rate_and_names_the_site(tmp_path, capsys):
    report = tmp_path / "r.json"
    code = main(["run", "idle", "--app", "builtin?leaks=idle", "--idle-window", "2", "--idle-windows", "2",
                 "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 1, out
    data = json.loads(report.read_text())
    verdicts = {a["name"]: a["verdict"] for a in data["assertions"]}
    assert [n for n, v in verdicts.items() if v != "PASS"] == ["idle_rate"]
    idle_rate = next(a for a in data["assertions"] if a["name"] == "idle_rate")
    assert idle_rate["measured"] > 1024
    assert "grew while idle: idle timer" in idle_rate["detail"]
    assert any(n.startswith("idle: allocation sites that grew: idle timer") for n in data["notes"])
    assert data["app"]["mode"] == "leaks=idle"
    windows = data["idle"]["windows"]  # weakest of 2: the reported rate is the higher window's
    assert len(windows) == 2
    assert idle_rate["measured"] == max(w["compensated_rate"] for w in windows)
    assert "idle_rate" in out and "FAIL" in out and "idle timer" in out


def test_costly_probe_is_measured_and_taken_out_of_the_idle_rate(tmp_path):
    # With ?costly-probe=1 every hook read allocates in the WASM heap (as the seed's JSON probe does):
    # the raw idle rate is the probe's own doing, and the compensated rate shows the app is idle.
    result = run(_scenario(tmp_path), RunOptions(app="builtin?costly-probe=1"))
    assert result.probe_cost.bytes_per_probe > 500
    idle = result.idle[0].measurement
    assert idle.raw_rate > 1024
    assert abs(idle.compensated_rate) < 0.1 * idle.raw_rate
    assert result.results["idle_rate"].verdict.value == "PASS"


@pytest.mark.parametrize(
    ("app", "failed"), [("builtin", []), ("builtin?leaks=thread", ["thread_events_released"])]
)
def test_thread_leak_fails_exactly_thread_events_released(tmp_path, app, failed):
    result = run(_scenario(tmp_path, THREADS), RunOptions(app=app))
    assert [n for n, r in result.results.items() if r.verdict.value != "PASS"] == failed
    # two direct closes and two closes after coming back from a profile opened in the thread
    assert [c.label for c in result.thread_closes] == ["thread 0", "thread 2", "thread (returned to)"] * 2


def test_cli_usage_and_environment_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert err == f"relaysim: error: {tmp_path / 'nope.toml'}: no such scenario file\n"
    assert main(["run", "idle", "--app", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is neither builtin" in err
    assert main(["run", "idle", "--browser", "remote"]) == 2
    assert capsys.readouterr().err == (
        "relaysim: error: --browser remote needs --webdriver-url URL (a W3C WebDriver or Selenium Grid)\n"
    )
    assert main(["run", "idle", "--idle-window", "0"]) == 2
    assert capsys.readouterr().err == "relaysim: error: --idle-window must be > 0, got 0\n"


def test_cli_page_script_error_is_one_line_exit_2(tmp_path, capsys):
    root = _static(tmp_path, "<!doctype html><p>x</p>")
    adapter = tmp_path / "adapter.toml"
    adapter.write_text('name = "broken"\n[actions.feed]\njs = "throw new Error(\'no feed here\')"\n')
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "s"\n[[steps]]\ndo = "feed"\n')
    code = main(["run", str(scenario), "--app", str(root), "--adapter", str(adapter)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("relaysim: error: browser failed during the run: javascript error: no feed here")
    assert err.count("\n") == 1


def test_app_without_hooks_reports_browser_figures_and_lists_what_is_missing(tmp_path):
    root = _static(tmp_path, NO_HOOKS_PAGE)
    result = run(_scenario(tmp_path), RunOptions(app=str(root)))
    report = build_report(result)
    # the page keeps its REQ: judged on what it still holds once settled, before the relay ends it
    assert result.exit_code() == 1
    missing = {u.figure: u.reason for u in report.unavailable}
    assert missing["totalAlloc"] == "hook missing: __moxie_mem_stats"
    assert missing["dom_handles"] == "hook missing: __moxie_dom_handles"
    assert missing["alloc_sites"] == "hook missing: __moxie_read_alloc_counters"
    assert set(report.app.hooks_missing) >= {"__moxie_mem_stats", "__moxie_close_all"}
    verdicts = {r.name: (r.verdict.value, r.measured) for r in report.assertions}
    assert verdicts["idle_rate"] == ("UNAVAILABLE", None)
    assert verdicts["dom_handles_max"] == ("UNAVAILABLE", None)
    assert verdicts["subscriptions_closed_when_idle"] == ("FAIL", 1)
    # without __moxie_close_all the relay ended the page's subscription itself
    assert result.idle[0].closed_by == "relay"
    assert report.relay.subscriptions_opened == 1
    # browser-level figures are there, from CDP, in every sample
    assert all(s.get("nodes") and s.get("js_heap_used") for s in result.samples)
    assert result.initial_browser.metrics["Nodes"] > 0
    assert result.initial_browser.dom_counters["nodes"] > 0
    # the missing hooks come from typed values, not from parsing reason text
    assert {u.missing_hook for u in report.unavailable if u.missing_hook} == set(report.app.hooks_missing)


def test_cli_nothing_judged_exits_3_unless_unavailable_is_allowed(tmp_path, capsys):
    """Every asserted figure unavailable (an app without hooks, memory assertions only): exit 3, not a
    pass that could not have failed; --allow-unavailable makes it 0."""
    root = _static(tmp_path, NO_HOOKS_PAGE)
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "s"\n[[steps]]\ndo = "wait"\nseconds = 1\n'
                        '[[steps]]\ndo = "assert"\nnames = ["heap_delta", "dom_handles_max"]\n')
    assert main(["run", str(scenario), "--app", str(root)]) == 3
    assert "UNAVAILABLE" in capsys.readouterr().out
    assert main(["run", str(scenario), "--app", str(root), "--allow-unavailable"]) == 0


def test_client_that_keeps_a_subscription_fails_with_that_fact(tmp_path):
    root = _static(tmp_path, STUBBORN_PAGE)
    result = run(_scenario(tmp_path), RunOptions(app=str(root)))
    assert result.exit_code() == 1
    subs = result.results["subscriptions_closed_when_idle"]
    assert (subs.verdict.value, subs.measured) == ("FAIL", 1)
    idle = result.results["idle_rate"]
    assert idle.verdict.value == "UNAVAILABLE"
    assert "still held 1 subscription" in idle.detail
    assert result.idle[0].open_detail == """'kept' {"kinds":[1],"limit":1}"""


def test_run_against_a_relay_given_by_url(tmp_path):
    with SyncRelay(RelayConfig(dataset="seed1")) as relay:
        options = RunOptions(app="builtin", relay_url=relay.url, idle_window=2, idle_settle=1)
        result = run(_scenario(tmp_path), options)
    assert result.exit_code() == 0
    assert result.results["subscriptions_closed_when_idle"].measured == 0
    assert result.idle[0].closed_by == "app"


def test_resolve_app_forms(tmp_path):
    assert resolve_app("builtin").page_url("http://127.0.0.1:1/") == "http://127.0.0.1:1/"
    assert resolve_app("builtin?leaks=idle").page_url("http://h:1/") == "http://h:1/?leaks=idle"
    assert resolve_app("http://example.test/app").page_url(None) == "http://example.test/app"
    assert resolve_app(str(tmp_path)).static_dir == tmp_path.resolve()


def test_remote_browser_spec_is_checked_before_anything_starts():
    from relaysim.errors import UsageError

    with pytest.raises(UsageError):
        BrowserSpec(kind="remote")
