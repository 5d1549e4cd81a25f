"""A scenario's injected faults: the ``[faults]`` table, the ``faults`` step, the relay it starts,
switching over the control endpoint, and what the report says (no browser: a real relay only)."""

from __future__ import annotations

import pytest

from relaysim.errors import EnvironmentProblem, UsageError
from relaysim.relay import RelayConfig, SyncRelay
from relaysim.scenario import load_scenario, parse_scenario
from relaysim.scenario._app import open_relay, relay_config, resolve_app
from relaysim.scenario._faults import fault_figures, fault_note, switch_faults
from relaysim.scenario.steps import SetFaults

STEPS = '\n[[steps]]\ndo = "wait"\nseconds = 1\n'


def test_the_faults_table_becomes_the_relays_faults_and_seed():
    text = (
        'seed = 3\n[faults]\ndrop = 0.01\ndelay = "50ms"\njitter = "20ms"\ndisconnect-every = "60s"\n'
        "refuse-reconnect = 2\nreset = true\n" + STEPS
    )
    sc = parse_scenario(text, "x.toml")
    assert sc.faults == "drop=0.01,delay=50ms,jitter=20ms,disconnect-every=60s,refuse-reconnect=2,reset=1"
    assert sc.faults_seed is None
    config = relay_config(resolve_app("builtin"), sc)
    assert config.fault_spec.describe() == sc.faults and config.faults_seed == 3  # the scenario's seed
    seeded = parse_scenario("seed = 3\n[faults]\nseed = 9\n" + STEPS, "x.toml")
    assert seeded.faults == "" and relay_config(resolve_app("builtin"), seeded).faults_seed == 9
    assert parse_scenario(STEPS, "x.toml").faults == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[faults]\ndelay = 50\n', "x.toml:2: faults.delay must be a duration with a unit (ms, s, m or h)"),
        ("[faults]\ndorp = 0.1\n", "x.toml:2: unknown fault 'dorp' in [faults] (expected one of: drop,"),
        ("[faults]\ndrop = 2\n", "x.toml:2: faults.drop must be a probability between 0 and 1"),
        ("[faults]\nreset = true\n", "x.toml:2: faults.reset needs disconnect-every"),
        ('[faults]\nseed = "x"\n', "x.toml:2: faults.seed must be an integer"),
        ("[faults]\ndrop = [1]\n", "x.toml:2: faults.drop must be a number or a string, got [1]"),
        ("faults = 3\n", "x.toml:1: 'faults' must be a table ([faults])"),
        (
            '[[steps]]\ndo = "faults"\nspec = "dealy=1s"\n',
            "x.toml:3: faults.spec is not a faults spec: bad --faults item 'dealy=1s': unknown fault 'dealy'",
        ),
        ('[[steps]]\ndo = "faults"\n', "x.toml:1: step 'faults' needs 'spec'"),
    ],
)
def test_a_bad_faults_table_or_step_names_its_line(text, message):
    with pytest.raises(UsageError) as info:
        parse_scenario(text + ("" if "steps" in text else STEPS), "x.toml")
    assert str(info.value).startswith(message), str(info.value)


def test_the_faults_step_keeps_the_canonical_spec():
    text = '[[steps]]\ndo = "faults"\nspec = "DISCONNECT-EVERY=2000ms"\n'
    sc = parse_scenario(text + '\n[[steps]]\ndo = "faults"\nspec = "off"\n', "x.toml")
    assert sc.steps == (SetFaults(spec="disconnect-every=2s"), SetFaults(spec=""))


def test_reconnect_storm_switches_disconnects_on_then_off_before_idle():
    sc = load_scenario("reconnect-storm")
    kinds = [s.KIND for s in sc.steps]  # the top level, in order
    switches = [s.spec for s in sc.walk() if isinstance(s, SetFaults)]
    assert switches == ["disconnect-every=2s", ""] and sc.faults_seed == 27
    assert kinds == ["open", "faults", "repeat", "faults", "wait", "close_all", "measure_idle", "assert"]
    assert set(sc.assertions) >= {"cycle_growth", "subscriptions_closed_when_idle"}


def test_switching_over_the_control_endpoint_and_the_report_figures():
    with SyncRelay(RelayConfig(faults="disconnect-every=60s", faults_seed=4)) as relay:
        answer = switch_faults(relay, "drop=0.5", 4)
        assert answer["spec"] == "drop=0.5" and answer["seed"] == 4
        with pytest.raises(EnvironmentProblem, match=r"answered 400 to POST /control/faults: .*'dorp=1'"):
            switch_faults(relay, "dorp=1")
        switch_faults(relay, "")  # off
        stats = relay.stats()
    started = stats["faults"]["events"][0]["at"] - 2.0
    figures = fault_figures(stats, started)
    assert figures is not None and figures.spec == "" and figures.seed == 4
    assert [(r.t, r.fault, r.detail) for r in figures.events] == [
        (2.0, "spec", "drop=0.5"),
        (round(stats["faults"]["events"][1]["at"] - started, 3), "spec", "off"),
    ]
    note = fault_note(figures)
    assert note is not None and note.startswith("faults injected (seed 4, spec at the end: off): ")
    assert fault_figures({"totals": {}}, 0.0) is None
    quiet = fault_figures({"faults": {"spec": "", "seed": 1, "counts": {}, "events": []}}, 0.0)
    assert fault_note(quiet) is None  # a run without faults adds no note


def test_the_faults_table_reaches_a_relay_given_by_url():
    sc = parse_scenario('[faults]\nseed = 5\ndelay = "10ms"\n' + STEPS, "x.toml")
    with SyncRelay(RelayConfig()) as relay, open_relay(resolve_app("builtin"), sc, relay.url) as handle:
        assert handle.stats()["faults"]["spec"] == "delay=10ms"
        assert relay.stats()["faults"]["seed"] == 5
