"""A real client nobody here wrote, judged as a new user would judge it: npm nostr-components 0.4.3
(MIT, NDK-based web components), installed by scripts/install, served by the run's relay with
``--test-headers``, driven by tests/interop/nostr-components.toml. docs/third-party-client.md says what
relaysim finds; this test keeps those findings true (scripts/third-party-client reproduces them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from relaysim.cli import main
from relaysim.report import read_report

INTEROP = Path(__file__).resolve().parent / "interop"
sys.path.insert(0, str(INTEROP))

import nostr_components_site as site  # noqa: E402

pytestmark = pytest.mark.browser


def test_nostr_components_rendered_judged_and_its_other_hosts_listed(tmp_path, capsys) -> None:
    if site.installed_version() != site.VERSION:
        pytest.skip(f"nostr-components {site.VERSION} is not installed: run scripts/install")
    root = site.build_site(tmp_path / "site")
    report_path = tmp_path / "report.json"
    code = main([
        "run", str(INTEROP / "nostr-components.toml"), "--app", str(root), "--test-headers",
        "--report", str(report_path), "--progress", "off",
    ])
    out = capsys.readouterr().out
    report = read_report(report_path)
    verdicts = {r.name: (r.verdict.value, r.measured) for r in report.assertions}
    # it rendered (the scenario's first step waits for the profile and the note) and reached the relay
    assert report.relay is not None and report.relay.connections and report.relay.subscriptions_opened
    # it closes what it opens: nothing held once settled, nothing piling up across re-mounts
    assert verdicts["subscriptions_closed_when_idle"] == ("PASS", 0)
    assert verdicts["subscriptions_bounded"] == ("PASS", 0)
    assert verdicts["no_events_after_close"] == ("PASS", 0)
    # each re-mounted <nostr-post> leaves JS event listeners behind (after GC), and its websockets open
    assert verdicts["listeners_growth"][0] == "FAIL", out
    assert report.relay.connections_open_at_end == report.relay.connections > 2
    assert code == 1
    # NDK's defaults: public relays the relays= attribute does not turn off, refused, named
    assert report.app.hosts_tried and {"nos.lol:443", "purplepag.es:443"} <= set(report.app.hosts_tried)
    assert report.environment.dataset_relay_url == report.relay.url  # the hints name the relay served
