"""Scenarios: files in ``scenarios/*.toml`` that say what to do in the app and what to assert.

This package's ``model`` and ``parse`` modules are pure (no browser, no relay); the runner
(``relaysim.scenario.runner``) executes a loaded :class:`Scenario`. See docs/scenarios.md.

API summary (stable; the runner codes to these names)
-----------------------------------------------------
``load_scenario(path_or_name) -> Scenario`` (a bare name like ``feed-browsing`` finds
``scenarios/feed-browsing.toml``); ``parse_scenario(text, source)``; every problem is a one-line
``UsageError`` "``FILE:LINE: message``".

``Scenario(name, steps, description, app="builtin", dataset="seed1", seed=1, traffic=None|rates,
sample_interval=1.0, probe_calls=10, thresholds: analysis.Thresholds, threshold_overrides: dict,
browser: BrowserOptions(name, headless, window_size, args), path)``; ``.walk()`` (written order),
``.expanded()`` (run order, repeats unrolled), ``.min_duration_s``, ``.assertions``.

Steps (frozen dataclasses, ``KIND`` = the file's ``do`` value, ``line`` = source line), for
``match step:`` in the runner:
  ``Open(page: "feed"|"notifications"|"profile"|"thread", arg: int|str|None)``,
  ``Scroll(n=1, pause=0.5)``, ``OpenThread(k=0, k_step=0)``, ``OpenProfile(k=0, from_thread=False,
  k_step=0)`` (``k_step``: k + k_step x pass of the innermost repeat; ``model.at_iteration``),
  ``Back(n=1)``, ``Notifications()``, ``Feed()``, ``Wait(seconds)``,
  ``Traffic(mode: "on"|"off"|"burst", rates: str|None, kind: str|None, n: int|None)``,
  ``CloseAll()``, ``MeasureIdle(settle=5.0, window=30.0, windows=1)``,
  ``Assert(names: tuple[str, ...])`` (analysis.ASSERTION_NAMES; "all" expands),
  ``SampleInterval(interval)`` (``do = "sample"``), ``Repeat(times, steps, measure_cycles=False,
  warmup=1, ignore_sites=())`` (``Scenario.measured_repeat``: the one marked for ``cycle_growth``).
``STEP_CLASSES`` (kind -> class), ``STEP_KINDS``, ``PAGES``.
"""

from relaysim.scenario.model import (
    PAGES,
    STEP_CLASSES,
    STEP_KINDS,
    Assert,
    Back,
    BrowserOptions,
    CloseAll,
    Feed,
    MeasureIdle,
    Notifications,
    Open,
    OpenProfile,
    OpenThread,
    Repeat,
    SampleInterval,
    Scenario,
    Scroll,
    Step,
    Traffic,
    Wait,
)
from relaysim.scenario.parse import load_scenario, parse_scenario, resolve_scenario

__all__ = [
    "PAGES",
    "STEP_CLASSES",
    "STEP_KINDS",
    "Assert",
    "Back",
    "BrowserOptions",
    "CloseAll",
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
    "Traffic",
    "Wait",
    "load_scenario",
    "parse_scenario",
    "resolve_scenario",
]
