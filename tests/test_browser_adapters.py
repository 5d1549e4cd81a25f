"""App adapters: the TOML model (exact error messages) and each action kind against a real page."""

from __future__ import annotations

import urllib.parse

import pytest

from relaysim.browser import open_browser
from relaysim.scenario.adapters import AdapterError, load_adapter, parse_adapter

PAGE = "data:text/html," + urllib.parse.quote(
    """<!doctype html><body>
<button data-testid="open-a" onclick="show('a')">a</button>
<button data-testid="open-b" onclick="show('b')">b</button>
<button data-testid="open-c" onclick="show('c')">c</button>
<div id="out"></div>
<script>
window.ready = false; setTimeout(() => { window.ready = true; }, 200);
function show(x) { setTimeout(() => {
  const d = document.createElement('div'); d.dataset.testid = 'shown-' + x; out.appendChild(d); }, 100); }
window.later = (x) => new Promise((r) => setTimeout(() => r('got ' + x), 50));
</script>"""
)

ADAPTER = {
    "name": "test",
    "ready": "return window.ready === true",
    "ready_timeout": 5,
    "actions": {
        "pick": {"click": "[data-testid^=open-]", "index": "{arg}", "wait_for": "[data-testid^=shown-]"},
        "open": {"click": "[data-testid=open-{arg}]", "wait_for": "[data-testid=shown-{arg}]"},
        "later": {"js": "return window.later(arguments[0])"},
        "count": {"wait_js": "return document.querySelectorAll('#out div').length >= arguments[0]",
                  "timeout": 2},
        "missing": {"wait_for": "#nope", "timeout": 0.3},
    },
}


@pytest.fixture(scope="module")
def driver():
    with open_browser() as session:
        yield session.driver


@pytest.mark.browser
def test_actions_click_wait_and_js_in_a_real_page(driver):
    adapter = parse_adapter(ADAPTER)
    driver.get(PAGE)
    adapter.wait_ready(driver)
    adapter.perform(driver, "pick", 2)
    assert driver.execute_script("return out.firstChild.dataset.testid") == "shown-c"
    adapter.perform(driver, "open", "a")
    assert adapter.perform(driver, "later", 7) == "got 7"
    adapter.perform(driver, "count", 2)
    with pytest.raises(AdapterError) as info:
        adapter.perform(driver, "missing")
    assert str(info.value) == "missing: '#nope' did not appear"
    with pytest.raises(AdapterError) as info:
        adapter.perform(driver, "fly")
    assert str(info.value) == "adapter 'test' has no action 'fly' (it has: count, later, missing, open, pick)"


def test_builtin_adapter_covers_every_app_action_the_runner_uses():
    adapter = load_adapter("builtin")
    for action in ("feed", "notifications", "back", "scroll", "open_thread", "open_profile",
                   "open_profile_from_thread"):
        assert adapter.supports(action), action
    assert adapter.ready and adapter.ready_timeout == 30


def test_bad_adapter_files_name_the_problem(tmp_path):
    with pytest.raises(AdapterError) as info:
        parse_adapter({"actions": {}}, "a.toml")
    assert str(info.value) == "a.toml: 'name' must be a non-empty string"
    with pytest.raises(AdapterError) as info:
        parse_adapter({"name": "x", "actions": {"go": {"clik": "#a"}}}, "a.toml")
    assert str(info.value) == "a.toml: actions.go: unknown key 'clik'"
    with pytest.raises(AdapterError) as info:
        parse_adapter({"name": "x", "actions": {"go": {"settle": 1}}}, "a.toml")
    assert str(info.value) == "a.toml: actions.go needs one of js, click, type, wait_for, wait_js"
    with pytest.raises(AdapterError) as info:
        load_adapter(tmp_path / "none.toml")
    assert str(info.value) == f"adapter file not found: {tmp_path / 'none.toml'}"
    bad = tmp_path / "bad.toml"
    bad.write_text("name = ")
    with pytest.raises(AdapterError) as info:
        load_adapter(bad)
    assert str(info.value).startswith(f"{bad}: not valid TOML: ")
