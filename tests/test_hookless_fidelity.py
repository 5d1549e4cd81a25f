"""Judging a client with no hooks from the relay's side: what it still holds at idle (named with its
filter), subscriptions piling up, a page that never reached the relay, figures scoped to this run,
the hosts a page tried. Real relay, real headless Chromium; the reference client with its hooks off
is the control group (builtin?hooks=off: fixed passes, leaks=subs fails).
"""

from __future__ import annotations

import json
import textwrap

import pytest
import trio
from relay_client import connect

from relaysim.cli import main
from relaysim.nostr.messages import encode_close, encode_req
from relaysim.relay import RelayConfig, SyncRelay
from relaysim.scenario import load_scenario, parse_scenario
from relaysim.scenario.runner import RunOptions, build_report, run

pytestmark = pytest.mark.browser

# No hooks; one REQ kept open for ever, one closed after EOSE, and a try at a public relay.
KEEPS_A_REQ = """<!doctype html><title>keeps a req</title><script>
new WebSocket('wss://relay.damus.io');
const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/');
ws.onopen = () => {
  ws.send(JSON.stringify(['REQ', 'plain', {kinds: [1], limit: 3}]));
  ws.send(JSON.stringify(['REQ', 'once', {kinds: [0], limit: 1}]));
};
ws.onmessage = (m) => {
  const [type, id] = JSON.parse(m.data);
  if (type === 'EOSE' && id === 'once') ws.send(JSON.stringify(['CLOSE', 'once']));
};
</script>"""

IDLE = """
name = "idle"
dataset = "seed1"

[[steps]]
do = "close_all"

[[steps]]
do = "measure_idle"
settle = 1
window = 1

[[steps]]
do = "assert"
names = ["subscriptions_closed_when_idle", "subscriptions_bounded"]
"""


def _app(tmp_path, html: str):
    root = tmp_path / "app"
    root.mkdir()
    (root / "index.html").write_text(html)
    return root


def test_a_page_that_keeps_a_req_fails_naming_it_and_its_other_hosts_are_listed(tmp_path) -> None:
    scenario = parse_scenario(textwrap.dedent(IDLE), "idle.toml")
    result = run(scenario, RunOptions(app=str(_app(tmp_path, KEEPS_A_REQ))))
    subs = result.results["subscriptions_closed_when_idle"]
    assert (subs.verdict.value, subs.measured, subs.source) == ("FAIL", 1, "relay")
    assert "before the relay ended any" in subs.detail
    assert subs.detail.endswith(""": 'plain' {"kinds":[1],"limit":3}""")
    assert result.results["subscriptions_bounded"].measured == 0
    report = build_report(result)
    assert report.app.hosts_tried == ("relay.damus.io:443",)
    assert report.relay is not None and report.relay.subscriptions_opened == 2
    assert report.relay.scope is not None and report.relay.scope.startswith("connections ")


def test_a_page_that_never_reaches_the_relay_exits_2_naming_it(tmp_path, capsys) -> None:
    root = _app(tmp_path, "<!doctype html><title>elsewhere</title><p>talks to another relay</p>")
    scenario = tmp_path / "s.toml"
    scenario.write_text(textwrap.dedent(IDLE))
    report = tmp_path / "r.json"
    assert main(["run", str(scenario), "--app", str(root), "--report", str(report)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relaysim: error: the page never connected to the harness's relay ws://127.0.0.1:")
    assert err.count("\n") == 1
    notes = json.loads(report.read_text())["notes"]
    assert any(n.startswith("relay: the page never connected to ws://127.0.0.1:") for n in notes)


async def _earlier_client(url: str) -> None:
    client = await connect(url)
    for i in range(3):
        await client.send(encode_req(f"old{i}", {"limit": 1}))
        await client.recv_until_eose(f"old{i}")
        await client.send(encode_close(f"old{i}"))
    await client.close()


def test_relay_figures_count_this_runs_connections_only(tmp_path) -> None:
    root = _app(tmp_path, KEEPS_A_REQ)
    with SyncRelay(RelayConfig(dataset="seed1", static=root)) as relay:
        trio.run(_earlier_client, relay.url)
        result = run(
            parse_scenario(textwrap.dedent(IDLE), "idle.toml"), RunOptions(app=str(root), relay_url=relay.url)
        )
        everything = relay.stats()["totals"]
    report = build_report(result)
    assert report.relay is not None
    assert everything["subs_opened"] == 5 and everything["connections_opened"] == 2
    assert (report.relay.subscriptions_opened, report.relay.connections) == (2, 1)
    assert report.relay.scope == "connections 2 and later"


SUBS_FAIL = {"subscriptions_closed_when_idle", "subscriptions_bounded"}


@pytest.mark.parametrize(
    ("app", "failing"),
    [
        ("builtin?hooks=off", set()),
        ("builtin?hooks=off&leaks=subs", SUBS_FAIL),
        ("builtin?hooks=off&leaks=dom", {"dom_nodes_growth", "cycle_growth"}),
    ],
)
def test_hooks_off_control_group(app: str, failing: set[str]) -> None:
    """The reference client without hooks, clicked through thread and back (measured cycles): the fixed
    client passes everything (the feed's one live subscription is allowed); each leak fails exactly its
    assertions, the subs leak from the relay's side, the dom leak from the browser's."""
    result = run(load_scenario("hookless-thread-cycle"), RunOptions(app=app, idle_window=1, idle_settle=1))
    assert result.hooks_missing  # every hook is gone
    verdicts = {name: r.verdict.value for name, r in result.results.items()}
    assert {name for name, v in verdicts.items() if v == "FAIL"} == failing, result.results
    assert set(verdicts.values()) <= {"PASS", "FAIL"}  # everything judged, nothing UNAVAILABLE
    subs = result.results["subscriptions_closed_when_idle"]
    assert subs.measured == (2 if failing == SUBS_FAIL else 1) and "'feed' {" in subs.detail
    if failing == SUBS_FAIL:
        assert "added: 'thread' {" in result.results["subscriptions_bounded"].detail
