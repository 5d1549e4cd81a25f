"""Loading scenario files: TOML in, a validated :class:`~relaysim.scenario.model.Scenario` out.

Every problem is a one-line :class:`~relaysim.errors.UsageError` that names the file and, when it
can be found, the line: ``scenarios/x.toml:12: unknown step 'scrol' (expected one of: ...)``.
tomllib reports the line of a syntax error in its message; for a semantic error (a bad step, a bad
argument, an unknown key) tomllib has already thrown the positions away, so :class:`_Lines` scans
the raw text for the ``[[steps]]`` / ``[[steps.steps]]`` headers and ``key =`` lines and maps a
step's position in the data (its index path) back to the line it was written on.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from relaysim.analysis import ASSERTIONS, ThresholdError, Thresholds
from relaysim.errors import UsageError
from relaysim.relay.faults import FAULT_KINDS, fault_spec, fault_value
from relaysim.resources import scenarios_dir
from relaysim.scenario._args import (
    ArgType,
    BadValue,
    Choice,
    Flag,
    FloatRange,
    IntRange,
    Rates,
    StepList,
    Text,
    UnknownName,
)
from relaysim.scenario._step import STEP_CLASSES, BadStep, Step, arguments, walk
from relaysim.scenario.model import BrowserOptions, Scenario
from relaysim.scenario.steps import Assert, Repeat, Traffic
from relaysim.traffic.rates import parse_rates

__all__ = ["load_scenario", "parse_scenario", "resolve_scenario"]

BROWSERS = ("chromium", "firefox", "remote")


def resolve_scenario(name_or_path: str | Path) -> Path:
    """A path as given if it exists; else ``scenarios/<name>.toml`` in the current folder, then the
    shipped scenario of that name (package data, so it works from any folder after a wheel install)."""
    p = Path(name_or_path)
    if p.exists():
        return p
    if p.suffix == "" and len(p.parts) == 1:
        for root in (Path("scenarios"), scenarios_dir()):
            candidate = root / f"{p.name}.toml"
            if candidate.exists():
                return candidate
    return p


def load_scenario(path: str | Path) -> Scenario:
    """Read, parse and validate the scenario file at ``path`` (or a shipped scenario's bare name)."""
    label = str(path)
    p = resolve_scenario(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{label}: no such scenario file") from None
    except IsADirectoryError:
        raise UsageError(f"{label}: is a directory, not a scenario file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{label}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{label}: cannot read: {exc.strerror}") from None
    return parse_scenario(text, str(p) if p != Path(label) else label)


# --- where things were written ------------------------------------------------------------------

_ARRAY_HEADER = re.compile(r"^\s*\[\[\s*([^\[\]]+?)\s*\]\]\s*(?:#.*)?$")
_TABLE_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_STEPS_PATH = re.compile(r"^steps(?:\.steps)*$")
_DO_KEY = re.compile(r"(?:^|[{,\s])do\s*=")


@dataclass
class _Node:
    line: int  # 1-based header line
    end: int  # last line of its own section
    children: list[_Node] = field(default_factory=list)


class _Lines:
    """Maps keys and steps back to the 1-based lines they were written on (None when not found)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.root = _Node(0, 0)
        self.tables: dict[str, tuple[int, int]] = {}
        self.top_end = len(self.lines)
        headers: list[int] = []
        stack: list[_Node] = [self.root]
        for i, raw in enumerate(self.lines, start=1):
            m = _ARRAY_HEADER.match(raw)
            t = None if m else _TABLE_HEADER.match(raw)
            if not (m or t):
                continue
            headers.append(i)
            if m:
                name = re.sub(r"\s+", "", m.group(1))
                if _STEPS_PATH.match(name):
                    depth = name.count("steps")
                    if depth <= len(stack) - 1 + 1 and depth >= 1:
                        parent = stack[depth - 1] if depth - 1 < len(stack) else stack[-1]
                        node = _Node(i, len(self.lines))
                        parent.children.append(node)
                        stack = [*stack[:depth], node]
            else:
                self.tables[re.sub(r"\s+", "", t.group(1))] = (i, len(self.lines))  # type: ignore[union-attr]
        # Each section ends where the next header begins.
        ends = {h: nxt - 1 for h, nxt in zip(headers, [*headers[1:], len(self.lines) + 1], strict=False)}
        self.top_end = headers[0] - 1 if headers else len(self.lines)
        self.tables = {k: (start, ends[start]) for k, (start, _) in self.tables.items()}
        self._fix_ends(self.root, ends)
        self.do_lines = [
            i for i, raw in enumerate(self.lines, start=1) if _DO_KEY.search(raw.split("#", 1)[0])
        ]

    def _fix_ends(self, node: _Node, ends: Mapping[int, int]) -> None:
        for child in node.children:
            child.end = ends.get(child.line, child.end)
            self._fix_ends(child, ends)

    def _find_key(self, key: str, start: int, end: int) -> int | None:
        pattern = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
        for i in range(start, end + 1):
            if 1 <= i <= len(self.lines) and pattern.match(self.lines[i - 1]):
                return i
        return None

    def key(self, key: str, table: str | None = None) -> int | None:
        """Line of ``key = ...`` at the top level or inside ``[table]`` (the table header otherwise)."""
        if table is None:
            found = self._find_key(key, 1, self.top_end)
            if found is None and key in self.tables:  # written as a [key] table
                found = self.tables[key][0]
            if found is None and key == "steps" and self.root.children:
                found = self.root.children[0].line
            return found
        if table not in self.tables:
            return self._find_key(table, 1, self.top_end)
        start, end = self.tables[table]
        return self._find_key(key, start + 1, end) or start

    def step(self, path: Sequence[int], preorder: int, key: str | None = None) -> int | None:
        """Line of the step at index ``path`` (or of its ``key``); ``preorder``: its document-order index."""
        node = self.root
        for index in path:
            if index >= len(node.children):
                node = None  # type: ignore[assignment]
                break
            node = node.children[index]
        if node is not None and node is not self.root:
            if key is not None:
                return self._find_key(key, node.line + 1, node.end) or node.line
            return node.line
        # Steps written inline (steps = [{ do = "..." }]): the n-th `do =` in the file.
        if 0 <= preorder < len(self.do_lines):
            return self.do_lines[preorder]
        return self.key("steps")


# --- parsing ----------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.where = _Lines(text)
        self.preorder = 0

    def fail(self, line: int | None, message: str) -> UsageError:
        return UsageError(f"{self.source}:{line}: {message}" if line else f"{self.source}: {message}")

    # steps
    def steps(self, raw: object, path: tuple[int, ...], line: int | None) -> tuple[Step, ...]:
        if path:
            name, header, what = "repeat.steps", "[[steps.steps]]", "a repeat needs"
        else:
            name, header, what = "'steps'", "[[steps]]", "a scenario needs"
        if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
            raise self.fail(line, f"{name} must be an array of tables ({header})")
        if not raw:
            raise self.fail(line, f"{name} is empty: {what} at least one step")
        return tuple(self.step(item, (*path, i)) for i, item in enumerate(raw))

    def step(self, raw: dict[str, object], path: tuple[int, ...]) -> Step:
        """One step, read through its class's declaration (:func:`relaysim.scenario._step.arguments`)."""
        preorder = self.preorder
        self.preorder += 1
        line = self.where.step(path, preorder)

        def at(key: str | None) -> int | None:
            return line if key is None else self.where.step(path, preorder, key)

        kinds = tuple(sorted(STEP_CLASSES))
        expected = f"expected one of: {', '.join(kinds)}"
        if "do" not in raw:
            raise self.fail(line, f"step has no 'do' key ({expected})")
        kind = raw["do"]
        if not isinstance(kind, str) or kind not in STEP_CLASSES:
            raise self.fail(at("do"), f"unknown step {kind!r} ({expected})")
        cls = STEP_CLASSES[kind]
        spec = {a.name: a for a in arguments(cls)}
        values: dict[str, object] = {}
        for key, value in raw.items():
            if key == "do":
                continue
            a = spec.get(key)
            if a is None:
                takes = f"expected: {', '.join(spec)}" if spec else "it takes none"
                raise self.fail(at(key), f"step '{kind}' takes no argument {key!r} ({takes})")
            if isinstance(a.type, StepList):
                continue  # read below, once this step's own arguments are known good
            try:
                values[key] = a.type.check(value)
            except UnknownName as exc:
                raise self.fail(at(key), str(exc)) from None
            except BadValue as exc:
                raise self.fail(at(key), f"{kind}.{key} {exc}") from None
        for a in spec.values():
            if a.required and a.name not in raw:
                raise self.fail(line, f"step '{kind}' needs {a.name!r}")
        for a in spec.values():
            if isinstance(a.type, StepList):
                values[a.name] = self.steps(raw[a.name], path, at(a.name))
        built = cls(line=line, **values)
        try:
            built.validate(frozenset(k for k in raw if k != "do"), nested=len(path) > 1)
        except BadStep as exc:
            raise self.fail(at(exc.key), str(exc)) from None
        return built

    # semantic checks across steps
    def check_order(self, steps: tuple[Step, ...], traffic: str | None) -> None:
        """Checks that need the steps in document order (each message names the step's line).

        An ``assert`` may name an assertion only after a step that provides what it requires
        (:attr:`relaysim.analysis.Assertion.requires`, e.g. a ``measure_idle`` for ``idle_rate``).
        One run has one traffic mix: the relay's generator is built with its rates when the relay
        starts, and ``traffic`` steps only pause, resume or burst it. So every ``on`` step must give
        the same rates as the top-level ``traffic`` or the first ``on`` step (or none, to reuse them).
        """
        mix = parse_rates(traffic).describe() if traffic else None
        provided: set[str] = set()
        cycles_line: int | None = None
        for step in walk(steps):
            provided |= step.provides()
            if isinstance(step, Repeat) and step.measure_cycles:
                if cycles_line is not None:
                    raise self.fail(
                        step.line, f"only one repeat may set measure_cycles (another at line {cycles_line})"
                    )
                cycles_line = step.line or 0
            if isinstance(step, Traffic) and step.mode == "on":
                if step.rates is None:
                    if mix is None:
                        raise self.fail(step.line, "traffic mode 'on' needs 'rates'")
                    continue
                rates = parse_rates(step.rates).describe()
                if mix is None:
                    mix = rates
                elif rates != mix:
                    raise self.fail(
                        step.line,
                        f"traffic rates '{step.rates}' differ from '{mix}' given before: a run has one "
                        'traffic mix (pause it with mode = "off", resume with mode = "on")',
                    )
            elif isinstance(step, Assert):
                for name in step.names:
                    needs = ASSERTIONS[name].requires
                    if needs is not None and needs not in provided:
                        text = ASSERTIONS[name].requires_text
                        raise self.fail(step.line, f"assert {name!r} needs {text} before it")


_TOP_KEYS = (
    "app",
    "browser",
    "dataset",
    "description",
    "faults",
    "name",
    "probe_calls",
    "sample_interval",
    "seed",
    "steps",
    "thresholds",
    "traffic",
)
_TOP_CHECKS: dict[str, ArgType] = {
    "name": Text(),
    "description": Text(nonempty=False),
    "app": Text(),
    "dataset": Text(),
    "seed": IntRange(0),
    "traffic": Rates(),
    "sample_interval": FloatRange(0, strict=True),
    "probe_calls": IntRange(2, 1000),
}
_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse scenario TOML ``text``; ``source`` names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS.search(msg)
        if m:
            raise UsageError(
                f"{source}:{m.group(1)}: invalid TOML: {msg[: m.start()]} (column {m.group(2)})"
            ) from None
        if msg.endswith("(at end of document)"):
            end = max(1, len(text.splitlines()))
            raise UsageError(
                f"{source}:{end}: invalid TOML: {msg[: -len(' (at end of document)')]}"
            ) from None
        raise UsageError(f"{source}: invalid TOML: {msg}") from None

    p = _Parser(text, source)
    where = p.where
    for key in data:
        if key not in _TOP_KEYS:
            raise p.fail(where.key(key), f"unknown key {key!r} (expected one of: {', '.join(_TOP_KEYS)})")
    fields: dict[str, object] = {}
    for key, check in _TOP_CHECKS.items():
        if key in data:
            try:
                fields[key] = check.check(data[key])
            except BadValue as exc:
                raise p.fail(where.key(key), f"{key!r} {exc}") from None

    thresholds = Thresholds()
    overrides: dict[str, float] = {}
    raw_th = data.get("thresholds", {})
    if not isinstance(raw_th, dict):
        raise p.fail(where.key("thresholds"), "'thresholds' must be a table ([thresholds])")
    try:
        thresholds = thresholds.with_overrides(raw_th)
    except ThresholdError as exc:
        raise p.fail(where.key(exc.key, "thresholds"), str(exc)) from None
    overrides = dict(raw_th)

    browser = _browser(p, data.get("browser", {}))
    fields.update(_faults(p, data.get("faults", {})))

    if "steps" not in data:
        raise p.fail(None, "no steps (add [[steps]] tables)")
    steps = p.steps(data["steps"], (), where.key("steps"))
    p.check_order(steps, fields.get("traffic"))  # type: ignore[arg-type]
    return Scenario(
        name=fields.pop("name", None) or Path(source).stem,  # type: ignore[arg-type]
        steps=steps,
        thresholds=thresholds,
        threshold_overrides=overrides,
        browser=browser,
        path=source,
        **fields,  # type: ignore[arg-type]
    )


def _faults(p: _Parser, raw: object) -> dict[str, object]:
    """The ``[faults]`` table: ``--faults`` items as keys (``delay = "50ms"``), plus ``seed``."""
    where = p.where
    if not isinstance(raw, dict):
        raise p.fail(where.key("faults"), "'faults' must be a table ([faults])")
    values: dict[str, object] = {}
    seed: int | None = None
    for key, value in raw.items():
        line = where.key(key, "faults")
        if key == "seed":
            try:
                seed = IntRange(0).check(value)
            except BadValue as exc:
                raise p.fail(line, f"faults.seed {exc}") from None
            continue
        if key not in FAULT_KINDS:
            known = ", ".join((*FAULT_KINDS, "seed"))
            raise p.fail(line, f"unknown fault {key!r} in [faults] (expected one of: {known})")
        text = ("1" if value else "0") if isinstance(value, bool) else value
        if not isinstance(text, str | int | float):
            raise p.fail(line, f"faults.{key} must be a number or a string, got {value!r}")
        try:
            values[key] = fault_value(key, str(text))
        except ValueError as exc:
            raise p.fail(line, f"faults.{key} {exc}") from None
    if values.get("reset") and "disconnect-every" not in values:
        raise p.fail(
            where.key("reset", "faults"),
            "faults.reset needs disconnect-every (it says how disconnect-every ends connections)",
        )
    return {"faults": fault_spec(values).describe(), "faults_seed": seed}


def _window_size(ws: object) -> tuple[int, int]:
    if not (
        isinstance(ws, list)
        and len(ws) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in ws)
    ):
        raise BadValue(f"must be [width, height] in pixels, got {ws!r}")
    return (ws[0], ws[1])


def _str_list(v: object) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
        raise BadValue(f"must be a list of strings, got {v!r}")
    return tuple(v)


_BROWSER_CHECKS: dict[str, Callable[[object], object]] = {
    "name": Choice(BROWSERS).check,
    "headless": Flag().check,
    "window_size": _window_size,
    "args": _str_list,
}


def _browser(p: _Parser, raw: object) -> BrowserOptions:
    where = p.where
    if not isinstance(raw, dict):
        raise p.fail(where.key("browser"), "'browser' must be a table ([browser])")
    options: dict[str, object] = {}
    for key, value in raw.items():
        check = _BROWSER_CHECKS.get(key)
        if check is None:
            raise p.fail(
                where.key(key, "browser"),
                f"unknown browser option {key!r} (expected one of: {', '.join(sorted(_BROWSER_CHECKS))})",
            )
        try:
            options[key] = check(value)
        except BadValue as exc:
            raise p.fail(where.key(key, "browser"), f"browser.{key} {exc}") from None
    return BrowserOptions(**options)  # type: ignore[arg-type]
