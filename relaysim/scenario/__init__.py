"""Scenarios: files in ``scenarios/*.toml`` that say what to do in the app and what to assert.

The step types are declared once each in :mod:`relaysim.scenario.steps` (arguments with their checks,
capabilities, how they run); ``model`` and ``parse`` are pure (no browser, no relay); the runner
(``relaysim.scenario.runner``) executes a loaded :class:`Scenario`. See docs/scenarios.md.

API summary
-----------
``load_scenario(path_or_name) -> Scenario`` (a bare name like ``feed-browsing`` finds the shipped
``feed-browsing.toml``); ``parse_scenario(text, source)``; every problem is a one-line
``UsageError`` "``FILE:LINE: message``".

``Scenario(name, steps, description, app="builtin", dataset="seed1", seed=1, traffic=None|rates,
sample_interval=1.0, probe_calls=10, thresholds: analysis.Thresholds, threshold_overrides: dict,
browser: BrowserOptions(name, headless, window_size, args), path)``; ``.walk()`` (written order),
``.expanded()`` (run order: ``expand(steps)``, repeats unrolled with ``CycleMark`` between measured
passes), ``.min_duration_s``, ``.assertions``.

Steps: ``STEP_CLASSES`` (kind -> class, registered with ``step_type``), ``arguments(cls)`` (the declared
``ArgSpec``s), ``STEP_KINDS``, ``PAGES``. ``build_report(result)`` is the one way from a
``RunResult`` to a report.
"""

from relaysim.scenario._step import (
    STEP_CLASSES,
    ArgSpec,
    BadStep,
    Step,
    StepContext,
    arg,
    arguments,
    step_type,
    walk,
)
from relaysim.scenario.model import STEP_KINDS, BrowserOptions, Scenario, min_duration
from relaysim.scenario.parse import load_scenario, parse_scenario, resolve_scenario
from relaysim.scenario.steps import (
    PAGES,
    Assert,
    Back,
    CloseAll,
    CycleMark,
    Feed,
    MeasureIdle,
    Notifications,
    Open,
    OpenProfile,
    OpenThread,
    Repeat,
    SampleInterval,
    Scroll,
    Traffic,
    Wait,
    expand,
)

__all__ = [
    "PAGES",
    "STEP_CLASSES",
    "STEP_KINDS",
    "ArgSpec",
    "Assert",
    "Back",
    "BadStep",
    "BrowserOptions",
    "CloseAll",
    "CycleMark",
    "Feed",
    "MeasureIdle",
    "Notifications",
    "Open",
    "OpenProfile",
    "OpenThread",
    "Repeat",
    "SampleInterval",
    "Scenario",
    "Scroll",
    "Step",
    "StepContext",
    "Traffic",
    "Wait",
    "arg",
    "arguments",
    "expand",
    "load_scenario",
    "min_duration",
    "parse_scenario",
    "resolve_scenario",
    "step_type",
    "walk",
]
