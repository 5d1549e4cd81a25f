"""RelayConfig: every mistake a user can make is one line, before a port is bound or a file read."""

from __future__ import annotations

import dataclasses

import pytest
from relay_client import signed_note

from relaysim.errors import UsageError
from relaysim.relay import DEFAULT_MAX_EVENTS, Limits, RelayConfig
from relaysim.traffic import Rates, parse_rates


def test_defaults_and_a_frozen_value():
    config = RelayConfig()
    assert (config.dataset, config.host, config.port, config.max_events) == (
        None,
        "127.0.0.1",
        0,
        DEFAULT_MAX_EVENTS,
    )
    assert config.limits == Limits() and config.rates == Rates()
    events = [signed_note(1, "a")]
    config = RelayConfig(events=events)
    events.append(signed_note(2, "b"))
    assert config.events == (events[0],)  # a copy: the caller's list does not change the config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
    assert dataclasses.replace(config, port=7447).port == 7447


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 70000}, "--port must be between 0 and 65535, got 70000"),
        ({"port": -1}, "--port must be between 0 and 65535, got -1"),
        ({"host": ""}, "--host must not be empty (use 127.0.0.1 for this machine only)"),
        ({"max_events": 0}, "--max-events must be a positive number, got 0"),
        ({"static": "/no/such/dir"}, "--static /no/such/dir: not a directory"),
        ({"traffic_seed": 1.5}, "--traffic-seed must be an integer or a string, got 1.5"),
        (
            {"dataset": "seed1", "traffic": "likes=2/s"},
            "unknown traffic kind 'likes' in 'likes=2/s' "
            "(valid: notes, replies, reactions, reposts, zaps, profiles)",
        ),
        (
            {"traffic": "notes=1/s"},
            "--traffic needs a named dataset (its authors sign the traffic), not an empty relay",
        ),
        (
            {"dataset": "x.jsonl", "traffic": "notes=1/s"},
            "--traffic needs a named dataset (its authors sign the traffic), not a JSONL file",
        ),
    ],
)
def test_mistakes_are_one_line_usage_errors(kwargs, message):
    with pytest.raises(UsageError) as info:
        RelayConfig(**kwargs)
    assert str(info.value) == message


def test_traffic_rates_are_parsed_once_given():
    config = RelayConfig(dataset="seed1", traffic="notes=2/s", traffic_seed="abc", max_events=None)
    assert config.rates == parse_rates("notes=2/s") and config.max_events is None
