"""``relaysim explore`` as a library call: start what the search needs, search, write, replay.

:func:`explore` resolves the app, starts one relay and one browser, runs the :class:`Search`, closes
the browser, and when something was found writes the minimal session to ``out/scenario.toml`` and
replays that file exactly as ``relaysim run FILE --app APP`` would (a fresh relay and a fresh browser),
so the report can say whether the replay failed on the same assertion. ``out/search.json`` records
the search either way.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaysim.analysis import Verdict
from relaysim.browser import BrowserSpec, open_browser
from relaysim.errors import ExitCode
from relaysim.explore._explorer import ExploreOptions, Explorer
from relaysim.explore._file import judging_tail, scenario_text
from relaysim.explore._progress import Progress
from relaysim.explore._search import Search, SearchReport
from relaysim.explore.machine import BrowsingMachine, ExploreAborted
from relaysim.scenario._app import adapter_for, open_relay, resolve_app
from relaysim.scenario.model import Scenario

__all__ = ["ExploreConfig", "ExploreResult", "explore"]


@dataclass(frozen=True)
class ExploreConfig:
    """The CLI's choices (``relaysim explore --help``)."""

    app: str = "builtin"
    adapter: str | None = None
    seed: int = 0
    max_examples: int = 100_000
    steps: int = 30
    budget: float = 600.0
    shrink_budget: float | None = None
    out: Path = Path("relaysim-explore")
    browser: BrowserSpec = field(default_factory=BrowserSpec)
    options: ExploreOptions = field(default_factory=ExploreOptions)
    replay: bool = True
    targeting: bool = False


@dataclass
class ExploreResult:
    """The search report, where the files went, and what the replay of the written scenario gave."""

    search: SearchReport
    scenario_path: Path | None = None
    report_path: Path | None = None
    replay: dict[str, Any] | None = None

    @property
    def found(self) -> bool:
        return self.search.minimal is not None

    @property
    def reproduced(self) -> bool:
        return bool(self.replay and self.replay.get("reproduced"))

    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.found else ExitCode.PASSED


def explore(config: ExploreConfig, progress: Progress | None = None) -> ExploreResult:
    """Search for a failing session (module docstring); raises ``EnvironmentProblem`` when the browser
    or relay breaks."""
    from relaysim.errors import EnvironmentProblem, UsageError

    target = resolve_app(config.app)
    adapter = adapter_for(target, config.adapter)
    if not adapter.actions:
        raise UsageError(
            f"--app {config.app}: adapter {adapter.name!r} has no actions to browse with; "
            "give --adapter FILE (docs/adapters.md)"
        )
    template = Scenario(name="explore", steps=(), app=target.spec, dataset=config.options.dataset,
                        seed=config.options.traffic_seed)
    with contextlib.ExitStack() as stack:
        relay = stack.enter_context(open_relay(target, template, None))
        session = stack.enter_context(open_browser(config.browser))
        explorer = Explorer(session, relay, target.page_url(relay.http_url), adapter, app=target.spec,
                            options=config.options)
        search = Search(explorer, seed=config.seed, budget=config.budget, shrink_budget=config.shrink_budget,
                        max_examples=config.max_examples, steps=config.steps, machine=BrowsingMachine,
                        progress=progress, targeting=config.targeting)
        try:
            report = search.run()
        except ExploreAborted as exc:
            raise EnvironmentProblem(f"explore stopped: {exc}") from None
    result = ExploreResult(report)
    config.out.mkdir(parents=True, exist_ok=True)
    if report.minimal is not None:
        result.scenario_path = config.out / "scenario.toml"
        result.scenario_path.write_text(_scenario(config, target.spec, report), encoding="utf-8")
        if config.replay:
            if progress is not None:
                progress.event(f"replaying {result.scenario_path} as relaysim run would")
            result.replay = replay(result.scenario_path, config, report.minimal.assertion)
    result.report_path = config.out / "search.json"
    doc = {"app": target.spec, "adapter": config.adapter, **report.to_dict(),
           "scenario": str(result.scenario_path) if result.scenario_path else None, "replay": result.replay}
    result.report_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return result


def _scenario(config: ExploreConfig, app: str, report: SearchReport) -> str:
    found = report.minimal
    assert found is not None
    o = config.options
    tail = judging_tail(found.assertion, settle=o.idle_settle, window=o.idle_window)
    comments = [
        f"Found by relaysim explore --app '{app}' --seed {config.seed}: {found.assertion} failed after "
        f"{found.actions} browsing action(s) ({report.examples} examples, found in "
        f"{report.first_failure_s or 0:.0f} s, shrunk in {report.shrink_s or 0:.0f} s).",
        f"Replay: relaysim run THIS_FILE --app '{app}'  (exit 1, {found.assertion} FAIL)",
        f"Detail when found: {found.detail}",
        "",
    ]
    header = {
        "name": f"explore-{found.assertion}",
        "description": f"A minimal browsing session on which {found.assertion} fails (relaysim explore).",
        "app": app,
        "dataset": o.dataset,
        "seed": o.traffic_seed,
    }
    return scenario_text(header, comments, (*found.steps, *tail))


def replay(path: Path, config: ExploreConfig, assertion: str) -> dict[str, Any]:
    """Run the written scenario as ``relaysim run`` does; did it fail on ``assertion`` again?"""
    from relaysim.scenario import load_scenario
    from relaysim.scenario.runner import RunOptions, run

    started = time.monotonic()
    scenario = load_scenario(path)
    res = run(scenario, RunOptions(app=config.app, adapter=config.adapter, browser=config.browser))
    verdict = res.results.get(assertion)
    code = res.exit_code()
    return {
        "exit_code": int(code),
        "verdict": str(verdict.verdict) if verdict else None,
        "detail": verdict.detail if verdict else None,
        "reproduced": bool(verdict and verdict.verdict == Verdict.FAIL and code == ExitCode.FAILED),
        "seconds": round(time.monotonic() - started, 1),
    }
