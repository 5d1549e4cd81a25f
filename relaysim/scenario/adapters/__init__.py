"""App adapters: how to perform each scenario action in one particular web app.

A scenario says *what* a person does ("open thread 3", "scroll 5", "back"); an adapter says *how* that is
done in a given app, as data in a TOML file, so pointing relaysim at a new client (Smesh, say) means
writing one small file, not Python. See ``docs/adapters.md``.

An adapter file::

    name = "builtin"
    ready = "return window.__relaysim_app_state?.().ready === true"   # polled until truthy
    ready_timeout = 20

    [actions.open_thread]
    js = "return window.__relaysim_action('open_thread', arguments[0])"   # may return a Promise

    [actions.notifications]
    click = "[data-testid='nav-notifications']"      # CSS selector; {arg} is replaced by the argument
    wait_for = "[data-testid='page-notifications']"  # CSS selector that must appear afterwards

Each action may have ``js``, ``click`` (with optional ``index``: which match, ``{arg}`` allowed),
``type`` (text typed into the clicked element, or the focused one without ``click``; ``submit`` then
presses Enter), ``wait_for`` and ``wait_js``; they run in that order. The step's argument is
``arguments[0]`` in ``js`` and ``wait_js`` and ``{arg}`` in selectors and ``type``. ``settle`` (seconds)
waits a fixed time afterwards. :func:`perform_action` does one action; the scenario steps ``click``,
``type`` and ``js`` build an :class:`Action` on the spot, so a plain page needs no adapter file.

The adapter layer is the only place that knows an app's DOM; the runner never does.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaysim.errors import UsageError
from relaysim.resources import builtin_adapter_path

__all__ = ["BUILTIN", "Action", "Adapter", "AdapterError", "load_adapter", "perform_action"]

BUILTIN = builtin_adapter_path()
_ACTION_KEYS = {
    "js", "click", "index", "type", "submit", "wait_for", "wait_js", "timeout", "settle", "description"
}


class AdapterError(UsageError):
    """An adapter file is malformed, or an action could not be performed in the page."""


@dataclass(frozen=True)
class Action:
    """How to perform one action; see the module docstring for the fields."""

    name: str
    js: str | None = None
    click: str | None = None
    index: str | None = None
    type: str | None = None
    submit: bool = False
    wait_for: str | None = None
    wait_js: str | None = None
    timeout: float = 15.0
    settle: float = 0.0
    description: str = ""


@dataclass(frozen=True)
class Adapter:
    """A named set of actions plus the readiness check run after every page load."""

    name: str
    actions: dict[str, Action]
    ready: str | None = None
    ready_timeout: float = 20.0
    description: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def supports(self, action: str) -> bool:
        return action in self.actions

    def wait_ready(self, driver: Any) -> None:
        """Poll the ``ready`` script until it returns a truthy value (AdapterError on timeout)."""
        if self.ready:
            waited = " ".join(self.ready.split())
            if waited.startswith("return "):
                waited = waited[len("return "):]
            where = self.source or f"adapter {self.name!r}"
            why = f"app not ready after {self.ready_timeout:g} s: waited for {waited} to be true ({where})"
            _poll(driver, self.ready, None, self.ready_timeout, why)

    def perform(self, driver: Any, action: str, arg: Any = None) -> Any:
        """Do ``action`` in the page; returns what its ``js`` returned (or None)."""
        spec = self.actions.get(action)
        if spec is None:
            known = ", ".join(sorted(self.actions)) or "none"
            raise AdapterError(f"adapter {self.name!r} has no action {action!r} (it has: {known})")
        return perform_action(driver, spec, arg)


def perform_action(driver: Any, spec: Action, arg: Any = None) -> Any:
    """Do one action in the page (js, click, type, wait_for, wait_js, settle, in that order); returns
    what its ``js`` returned (or None). AdapterError names what did not happen in time."""
    result = None
    if spec.js:
        result = driver.execute_script(spec.js, arg)
    if spec.click:
        _click(driver, spec, arg)
    if spec.type is not None:
        _type(driver, _fill(spec.type, arg), spec.submit)
    if spec.wait_for:
        selector = _fill(spec.wait_for, arg)
        script = "return document.querySelector(arguments[0]) !== null"
        _poll(driver, script, selector, spec.timeout, f"{spec.name}: {selector!r} did not appear")
    if spec.wait_js:
        _poll(driver, spec.wait_js, arg, spec.timeout, f"{spec.name}: wait_js stayed false")
    if spec.settle:
        time.sleep(spec.settle)
    return result


def _fill(template: str, arg: Any) -> str:
    return template.replace("{arg}", "" if arg is None else str(arg))


# Found, scrolled into view and clicked inside the page: no element reference goes back to WebDriver.
# (chromedriver keeps every element it hands out, and a kept element keeps its whole detached page
# alive: a harness that clicks through find_elements would itself "leak" a page per click.)
_CLICK_JS = """
const found = document.querySelectorAll(arguments[0]);
const el = found[arguments[1]];
if (!el) return found.length;
el.scrollIntoView({block: 'center'});
if (arguments[2]) el.focus();
el.click();
return -1;
"""


def _click(driver: Any, spec: Action, arg: Any) -> None:
    """Click the ``index``-th match of ``click`` (waiting up to ``timeout`` for it); with ``type``, the
    element is focused too, so the key presses go to it."""
    from selenium.common.exceptions import JavascriptException

    selector = _fill(spec.click or "", arg)
    deadline = time.monotonic() + spec.timeout
    index = int(_fill(spec.index, arg)) if spec.index else 0
    while True:
        try:
            found = driver.execute_script(_CLICK_JS, selector, index, spec.type is not None)
        except JavascriptException as exc:
            if "is not a valid selector" in str(exc):
                raise AdapterError(f"{spec.name}: {selector!r} is not a valid CSS selector") from None
            raise
        if found == -1:
            return
        if time.monotonic() > deadline:
            raise AdapterError(f"{spec.name}: no element #{index} for {selector!r} ({found} found)")
        time.sleep(0.05)


def _type(driver: Any, text: str, submit: bool) -> None:
    """Key presses into the focused element, as a person types them (no element reference kept)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(driver).send_keys(text + (Keys.ENTER if submit else "")).perform()


def _poll(driver: Any, script: str, arg: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not driver.execute_script(script, arg):
        if time.monotonic() > deadline:
            raise AdapterError(message)
        time.sleep(0.05)


def parse_adapter(data: dict[str, Any], source: str = "<adapter>") -> Adapter:
    """An :class:`Adapter` from the parsed TOML table; AdapterError names the bad key."""
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise AdapterError(f"{source}: 'name' must be a non-empty string")
    raw_actions = data.get("actions", {})
    if not isinstance(raw_actions, dict):
        raise AdapterError(f"{source}: [actions] must be a table")
    actions = {}
    for action_name, spec in raw_actions.items():
        if not isinstance(spec, dict):
            raise AdapterError(f"{source}: actions.{action_name} must be a table")
        unknown = set(spec) - _ACTION_KEYS
        if unknown:
            raise AdapterError(f"{source}: actions.{action_name}: unknown key {sorted(unknown)[0]!r}")
        if not any(spec.get(k) for k in ("js", "click", "type", "wait_for", "wait_js")):
            raise AdapterError(
                f"{source}: actions.{action_name} needs one of js, click, type, wait_for, wait_js"
            )
        index = spec.get("index")
        actions[action_name] = Action(
            name=action_name,
            js=spec.get("js"),
            click=spec.get("click"),
            index=None if index is None else str(index),
            type=None if spec.get("type") is None else str(spec["type"]),
            submit=bool(spec.get("submit", False)),
            wait_for=spec.get("wait_for"),
            wait_js=spec.get("wait_js"),
            timeout=float(spec.get("timeout", 15.0)),
            settle=float(spec.get("settle", 0.0)),
            description=str(spec.get("description", "")),
        )
    known = {"name", "actions", "ready", "ready_timeout", "description"}
    return Adapter(
        name=name,
        actions=actions,
        ready=data.get("ready"),
        ready_timeout=float(data.get("ready_timeout", 20.0)),
        description=str(data.get("description", "")),
        source=source,
        extra={k: v for k, v in data.items() if k not in known},
    )


def load_adapter(name_or_path: str | Path | None = None) -> Adapter:
    """``None`` or ``"builtin"`` -> the reference client's adapter; otherwise a path to a TOML file."""
    path = BUILTIN if name_or_path in (None, "builtin") else Path(name_or_path)
    if not path.is_file():
        raise AdapterError(f"adapter file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise AdapterError(f"{path}: not valid TOML: {exc}") from exc
    return parse_adapter(data, str(path))
