"""``click``, ``type``, ``navigate`` and ``js``: a plain page driven from the scenario file, no adapter.

The parsing tests need no browser; one browser test runs all four steps against a small page with a
button, a text field, a hash router and a second document, and reads back what each step did.
"""

from __future__ import annotations

import textwrap

import pytest

from relaysim.errors import UsageError
from relaysim.scenario import parse_scenario
from relaysim.scenario.adapters import AdapterError, parse_adapter
from relaysim.scenario.steps import Click, Js, Navigate, Type


def _parse(steps: str):
    return parse_scenario('name = "s"\n' + textwrap.dedent(steps), "s.toml")


def test_the_four_steps_parse_with_their_defaults() -> None:
    s = _parse(
        """
        [[steps]]
        do = "click"
        selector = "button.more"

        [[steps]]
        do = "type"
        selector = "input[name=q]"
        text = ""
        submit = true

        [[steps]]
        do = "navigate"
        to = "#/thread/1"

        [[steps]]
        do = "js"
        script = "return document.title"
        wait_js = "return true"
        """
    )
    click, typed, nav, js = s.steps
    assert click == Click(selector="button.more")
    assert (click.index, click.wait_for, click.timeout) == (0, None, 15.0)
    assert typed == Type(selector="input[name=q]", text="", submit=True)
    assert nav == Navigate(to="#/thread/1")
    assert js == Js(script="return document.title", wait_js="return true")
    assert not any(step.BROWSING for step in s.steps)  # explore cannot know a page's selectors


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('do = "click"\n', "s.toml:2: step 'click' needs 'selector'"),
        ('do = "click"\nselector = ""\n', "s.toml:4: click.selector must be a non-empty string"),
        ('do = "navigate"\nto = "javascript:alert(1)"\n', "s.toml:4: navigate.to must be an http(s) URL"),
        ('do = "js"\nscript = "1"\ntimeout = 0\n', "s.toml:5: js.timeout must be a number > 0"),
        ('do = "type"\nselector = "input"\n', "s.toml:2: step 'type' needs 'text'"),
    ],
)
def test_mistakes_are_one_line_with_the_line(body: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_scenario(f'name = "s"\n[[steps]]\n{body}', "s.toml")
    assert str(err.value).startswith(message), str(err.value)


def test_an_adapter_action_may_type_and_submit() -> None:
    adapter = parse_adapter(
        {"name": "a", "actions": {"search": {"click": "input", "type": "{arg}", "submit": True}}}, "a.toml"
    )
    action = adapter.actions["search"]
    assert (action.click, action.type, action.submit) == ("input", "{arg}", True)
    with pytest.raises(AdapterError, match="needs one of js, click, type"):
        parse_adapter({"name": "a", "actions": {"x": {"settle": 1}}}, "a.toml")


def test_a_ready_timeout_names_what_it_waited_for() -> None:
    class NeverReady:
        def execute_script(self, script: str, arg: object) -> bool:
            return False

    adapter = parse_adapter({"name": "mine", "ready": "return window.app?.ok === true", "ready_timeout": 0.1},
                            "mine.toml")
    with pytest.raises(AdapterError) as err:
        adapter.wait_ready(NeverReady())
    assert str(err.value) == (
        "app not ready after 0.1 s: waited for window.app?.ok === true to be true (mine.toml)"
    )


# A page with no hooks and no adapter: a counter button, a field echoed on Enter, a hash router and a link.
PAGE = """<!doctype html><title>plain</title>
<button id="more">more</button><input id="q"><p id="echo"></p><p id="route"></p>
<script>
let clicks = 0;
document.querySelector('#more').onclick = () => { clicks++; document.title = 'clicks ' + clicks; };
document.querySelector('#q').addEventListener('keydown', e => {
  if (e.key === 'Enter') document.querySelector('#echo').textContent = 'searched ' + e.target.value;
});
const route = () => { document.querySelector('#route').textContent = 'route ' + location.hash; };
addEventListener('hashchange', route);
window.loads = (window.loads || 0) + 1;
new WebSocket(location.origin.replace(/^http/, 'ws') + '/');  // a client: it reaches the run's relay
</script>"""

SECOND = "<!doctype html><title>second</title><p id='second'>second page</p>"

SCENARIO = """
name = "plain page"
dataset = "seed1"

[[steps]]
do = "click"
selector = "#more"

[[steps]]
do = "click"
selector = "button"

[[steps]]
do = "type"
selector = "#q"
text = "nostr"
submit = true
wait_for = "#echo:not(:empty)"

[[steps]]
do = "navigate"
to = "#/thread/7"
wait_for = "#route:not(:empty)"

[[steps]]
do = "js"
script = "return [document.title, document.querySelector('#echo').textContent, location.hash]"

[[steps]]
do = "navigate"
to = "second.html"
wait_for = "#second"

[[steps]]
do = "js"
script = "return new Promise(r => setTimeout(() => r(document.title), 10))"
"""


@pytest.mark.browser
def test_a_plain_page_is_driven_from_the_scenario_file(tmp_path) -> None:
    from relaysim.scenario.runner import RunOptions, run

    root = tmp_path / "app"
    root.mkdir()
    (root / "index.html").write_text(PAGE)
    (root / "second.html").write_text(SECOND)
    scenario = parse_scenario(textwrap.dedent(SCENARIO), "plain.toml")
    result = run(scenario, RunOptions(app=str(root)))
    details = [(r.kind, r.detail) for r in result.steps]
    assert details[:5] == [
        ("click", "clicked '#more'"),
        ("click", "clicked 'button'"),
        ("type", "typed 5 characters into '#q'"),
        ("navigate", "hash #/thread/7"),
        ("js", "returned ['clicks 2', 'searched nostr', '#/thread/7']"),
    ]
    assert details[5][0] == "navigate" and details[5][1].startswith("loaded http://127.0.0.1:")
    assert details[5][1].endswith("/second.html")
    assert details[6] == ("js", "returned 'second'")  # the Promise was awaited
    # every step sampled afterwards
    assert [p for p in result.phases if p in ("click", "type", "navigate", "js")] == [
        "click", "click", "type", "navigate", "js", "navigate", "js"
    ]
