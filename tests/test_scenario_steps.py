"""Step types and assertions are declared once: parsing, docs tables, expansion and the registry derive
from the declaration, so a new one is a single object (these tests add one of each and watch it arrive)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import pytest

from relaysim.analysis import (
    Assertion,
    Evidence,
    Measured,
    Sample,
    Threshold,
    Thresholds,
    Verdict,
    _verdict,
    assertion_names,
    evaluate,
)
from relaysim.errors import ExitCode, UsageError, exit_code_for
from relaysim.scenario import (
    STEP_CLASSES,
    CycleMark,
    OpenThread,
    Repeat,
    Step,
    StepContext,
    arg,
    arguments,
    expand,
    parse_scenario,
    step_type,
)
from relaysim.scenario import _step as step_module
from relaysim.scenario._args import IntRange
from relaysim.scenario.doc_tables import assertions_table, refresh, steps_table, thresholds_table

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_registries():
    """Registries as they are, restored after the test (what a test registers does not leak out)."""
    saved_steps = dict(step_module._STEPS)
    saved_assertions = dict(_verdict._REGISTRY)
    saved_thresholds = dict(_verdict._THRESHOLDS)
    yield
    for registry, saved in (
        (step_module._STEPS, saved_steps),
        (_verdict._REGISTRY, saved_assertions),
        (_verdict._THRESHOLDS, saved_thresholds),
    ):
        registry.clear()
        registry.update(saved)


def test_every_field_of_every_step_is_a_declared_argument() -> None:
    for cls in STEP_CLASSES.values():
        names = {f.name for f in dataclasses.fields(cls)} - {"line"}
        assert names == {a.name for a in arguments(cls)}, cls.KIND
        assert cls.__doc__, f"step {cls.KIND} needs a docstring (it is the docs table's text)"


def test_docs_tables_are_written_from_the_declarations() -> None:
    text = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    assert refresh(text) == text, "run: python -m relaysim.scenario.doc_tables docs/scenarios.md"
    for table in (steps_table(), assertions_table(), thresholds_table()):
        assert table in text


def test_a_new_step_type_is_one_class(clean_registries) -> None:
    @step_type
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Reload(Step):
        """Reload the page ``times`` times."""

        KIND: ClassVar[str] = "reload"
        BROWSING: ClassVar[bool] = True
        times: int = arg(IntRange(1, 5), 1, "how often")

        def run(self, ctx: StepContext) -> str | None:
            for _ in range(self.times):
                ctx.act("reload")
            return None

    sc = parse_scenario('name = "r"\n[[steps]]\ndo = "reload"\ntimes = 2\n', "r.toml")
    assert sc.steps == (Reload(times=2),)
    with pytest.raises(UsageError) as info:
        parse_scenario('name = "r"\n[[steps]]\ndo = "reload"\ntimes = 9\n', "r.toml")
    assert str(info.value) == "r.toml:4: reload.times must be an integer from 1 to 5, got 9"
    assert "| `reload` | `times` (integer from 1 to 5; default 1): how often |" in steps_table()


def test_a_step_class_must_declare_its_arguments(clean_registries) -> None:
    with pytest.raises(TypeError, match="not declared with arg"):

        @step_type
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class Sloppy(Step):
            KIND: ClassVar[str] = "sloppy"
            n: int = 1


def test_a_new_assertion_is_one_object(clean_registries) -> None:
    def measure(ev: Evidence, th: Thresholds) -> Measured:
        return Measured(float(len(ev.samples)), f"{len(ev.samples)} samples")

    _verdict.register(Assertion(
        name="few_samples",
        summary="samples taken",
        unit="samples",
        thresholds=(Threshold("few_samples_max", 3, "samples allowed"),),
        measure=measure,
        requires="idle",
        requires_text="a measure_idle step",
    ))
    assert "few_samples" in assertion_names()
    assert Thresholds().few_samples_max == 3
    samples = tuple(Sample(t=float(i)) for i in range(5))
    (result,) = evaluate(Evidence(samples=samples), Thresholds(few_samples_max=10), ["few_samples"])
    assert (result.verdict, result.measured, result.detail) == (Verdict.PASS, 5.0, "5 samples")
    # the parser checks its prerequisite from the declaration
    with pytest.raises(UsageError) as info:
        parse_scenario('name = "a"\n[[steps]]\ndo = "assert"\nnames = ["few_samples"]\n', "a.toml")
    assert str(info.value) == "a.toml:2: assert 'few_samples' needs a measure_idle step before it"
    assert "| `few_samples` | samples taken |" in assertions_table()


def test_expand_is_the_run_order_with_cycle_marks() -> None:
    body = (OpenThread(k=1, k_step=2),)
    steps = (Repeat(times=3, steps=body, measure_cycles=True),)
    got = list(expand(steps))
    assert got == [
        CycleMark("cycle-start"),
        OpenThread(k=1), CycleMark("cycle-end"),
        OpenThread(k=3), CycleMark("cycle-end"),
        OpenThread(k=5), CycleMark("cycle-end"),
    ]


@pytest.mark.parametrize(
    ("verdicts", "allow", "code"),
    [
        ([], False, ExitCode.PASSED),
        (["PASS", "UNAVAILABLE"], False, ExitCode.PASSED),
        (["UNAVAILABLE", "UNAVAILABLE"], False, ExitCode.NOT_JUDGED),
        (["UNAVAILABLE"], True, ExitCode.PASSED),
        (["FAIL", "UNAVAILABLE"], True, ExitCode.FAILED),
    ],
)
def test_exit_code_table(verdicts: list[str], allow: bool, code: ExitCode) -> None:
    results = [dataclasses.make_dataclass("R", ["verdict"])(Verdict(v)) for v in verdicts]
    assert exit_code_for(results, allow) is code
