"""Generated browsing sessions: search for one that breaks an assertion, shrink it, write it as a scenario.

* :class:`BrowsingMachine` -- the Hypothesis state machine over the registered browsing steps, with
  preconditions from each step's ``possible(view)`` and an invariant per cheap assertion;
* :class:`Explorer` -- one browser and one relay kept across examples, a clean start per example;
* :class:`Search` -- seed, budget, bookkeeping, then :func:`shrink` on the failing steps;
  :func:`explore` -- the whole
  ``relaysim explore`` (search, write ``scenario.toml`` and ``search.json``, replay the file).

The strategies the machine draws from are public in :mod:`relaysim.strategies`. docs/explore.md has
the user's side.
"""

from relaysim.explore._explorer import VIEW_JS, ExploreOptions, Explorer
from relaysim.explore._file import browsing_actions, judging_tail, scenario_text, step_table
from relaysim.explore._judged import cheap_assertions, idle_assertions
from relaysim.explore._run import ExploreConfig, ExploreResult, explore, replay
from relaysim.explore._search import BudgetSpent, Finding, Found, Search, SearchReport
from relaysim.explore._shrink import ShrinkResult, shrink
from relaysim.explore.machine import AssertionFailed, BrowsingMachine, ExploreAborted, failure_type

__all__ = [
    "VIEW_JS",
    "AssertionFailed",
    "BrowsingMachine",
    "BudgetSpent",
    "ExploreAborted",
    "ExploreConfig",
    "ExploreOptions",
    "ExploreResult",
    "Explorer",
    "Finding",
    "Found",
    "Search",
    "SearchReport",
    "ShrinkResult",
    "browsing_actions",
    "cheap_assertions",
    "explore",
    "failure_type",
    "idle_assertions",
    "judging_tail",
    "replay",
    "scenario_text",
    "shrink",
    "step_table",
]
