"""A found session as a scenario file that ``relaysim run`` replays to the same failing assertion.

The steps are written from their declarations (:func:`step_table`: every argument that differs from
its default, a repeat's body as ``[[steps.steps]]``), so the file parses back to equal steps
(:func:`scenario_text` checks that before returning). After the browsing steps comes what the
failing assertion needs to be judged, and nothing else: an ``assert`` naming it, preceded by
``close_all`` and ``measure_idle`` for an assertion judged at an idle point.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from relaysim import analysis as an
from relaysim.scenario._step import Step, arguments, walk
from relaysim.scenario.parse import parse_scenario
from relaysim.scenario.steps import Assert, CloseAll, MeasureIdle

__all__ = ["browsing_actions", "judging_tail", "scenario_text", "step_table"]


def step_table(step: Step) -> dict[str, Any]:
    """The step as the TOML table a file would give: ``do`` and every argument not at its default."""
    table: dict[str, Any] = {"do": step.KIND}
    for spec in arguments(type(step)):
        value = getattr(step, spec.name)
        if not spec.required and value == spec.default:
            continue
        table[spec.name] = [step_table(s) for s in value] if spec.name == "steps" else value
    return table


def browsing_actions(steps: Iterable[Step]) -> int:
    """Leaf browsing steps, a repeat's body counted once; the harness's own steps not at all."""
    return sum(1 for s in walk(tuple(steps)) if s.BROWSING)


def judging_tail(assertion: str, *, settle: float, window: float) -> tuple[Step, ...]:
    """The steps that judge ``assertion`` after a session: the idle protocol first when it needs one."""
    if an.ASSERTIONS[assertion].requires == "idle":
        return (CloseAll(), MeasureIdle(settle=settle, window=window), Assert(names=(assertion,)))
    return (Assert(names=(assertion,)),)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} into a scenario file")


def _steps(tables: Sequence[dict[str, Any]], prefix: str, indent: str) -> list[str]:
    out: list[str] = []
    for t in tables:
        out += ["", f"{indent}[[{prefix}]]"]
        nested = t.get("steps")
        for key, v in t.items():
            if key != "steps":
                out.append(f"{indent}{key} = {_value(v)}")
        if nested:
            out += _steps(nested, f"{prefix}.steps", indent + "  ")
    return out


def scenario_text(header: dict[str, Any], comments: Sequence[str], steps: Sequence[Step]) -> str:
    """The scenario file: ``comments`` (lines), the ``header`` keys (name, description, app, dataset,
    seed), then the steps. Parsed back before it is returned: the file must mean exactly ``steps``."""
    lines = [f"# {c}" if c else "#" for c in comments]
    lines += [f"{k} = {_value(v)}" for k, v in header.items()]
    lines += _steps([step_table(s) for s in steps], "steps", "")
    text = "\n".join(lines) + "\n"
    back = parse_scenario(text, "<written>")
    if back.steps != tuple(steps):
        raise AssertionError("the written scenario does not parse back to the same steps")  # pragma: no cover
    return text
