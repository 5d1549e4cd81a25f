"""JUnit XML, the test-result format every CI system reads (Jenkins, GitLab, GitHub Actions reporters).

One ``<testsuite>`` per judged thing -- a run report, a soak summary, a comparison -- inside one
``<testsuites>`` root; one ``<testcase>`` per assertion (a comparison: per compared figure, the
sites behind an assertion included). A FAIL (a REGRESSED figure) is a ``<failure>`` whose text is the
detail that names what grew; UNAVAILABLE (NOT_COMPARED) is ``<skipped>`` with the reason, because
nothing was judged. The shape follows the Jenkins xUnit plugin's ``junit-10.xsd`` (tests/junit-10.xsd
validates it in the tests). Written with the standard library's :mod:`xml.etree.ElementTree`, which
escapes text and attributes; ``time`` has at most three decimals, as that schema requires.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from relaysim.analysis import AssertionResult, Change, Comparison, FigureChange, Verdict
from relaysim.report._io import write_bytes_atomic
from relaysim.report._model import Report
from relaysim.report._table import format_change, format_value

__all__ = ["assertion_cases", "comparison_suite", "junit_xml", "report_suite", "session_suite", "write_junit"]


def _time(seconds: float) -> str:
    return f"{max(0.0, seconds):.3f}"


def _suite(name: str, cases: list[ET.Element], time_s: float, timestamp: str | None,
           properties: dict[str, str | None]) -> ET.Element:
    suite = ET.Element("testsuite", {
        "name": name,
        "tests": str(len(cases)),
        "failures": str(sum(1 for c in cases if c.find("failure") is not None)),
        "errors": "0",
        "skipped": str(sum(1 for c in cases if c.find("skipped") is not None)),
        "time": _time(time_s),
    })
    if timestamp:
        suite.set("timestamp", timestamp)
    props = ET.SubElement(suite, "properties")
    for key, value in properties.items():
        if value is not None:
            ET.SubElement(props, "property", {"name": key, "value": str(value)})
    suite.extend(cases)
    return suite


def assertion_cases(results: Iterable[AssertionResult], classname: str) -> list[ET.Element]:
    """One ``<testcase>`` per assertion: FAIL a failure with its detail, UNAVAILABLE skipped."""
    cases = []
    for r in results:
        case = ET.Element("testcase", {"classname": classname, "name": r.name, "time": "0.000"})
        measured = f"measured {format_value(r.measured, r.unit)}, threshold {r.comparison} " \
                   f"{format_value(r.threshold, r.unit)}"
        if r.verdict is Verdict.FAIL:
            failure = ET.SubElement(case, "failure", {"type": "FAIL", "message": measured})
            failure.text = r.detail or measured
        elif r.verdict is Verdict.UNAVAILABLE:
            why = r.detail or "unavailable"
            ET.SubElement(case, "skipped", {"type": "UNAVAILABLE", "message": why}).text = why
        else:
            ET.SubElement(case, "system-out").text = f"{measured}; {r.detail}" if r.detail else measured
        cases.append(case)
    return cases


def report_suite(report: Report, name: str | None = None) -> ET.Element:
    """A run report (or soak summary) as a ``<testsuite>``: one test case per assertion."""
    scenario = report.scenario.name
    cases = assertion_cases(report.assertions, f"relaysim.{scenario}")
    env = report.environment
    properties = {
        "app": report.app.url, "app_mode": report.app.mode, "verdict": str(report.verdict),
        "dataset": env.dataset_name, "dataset_spec_sha256": env.dataset_spec_sha256,
        "dataset_sha256": env.dataset_sha256, "browser": env.browser_name,
        "browser_version": env.browser_version, "relaysim": env.relaysim,
    }
    kind = "soak" if report.soak is not None else "run"
    return _suite(name or f"relaysim {kind}: {scenario}", cases, report.timing.duration_s,
                  report.timing.started_at, properties)


def session_suite(name: str, classname: str, results: Iterable[AssertionResult], *, seconds: float = 0.0,
                  error: str | None = None, properties: dict[str, str | None] | None = None) -> ET.Element:
    """One session of a batch (``--browsers N``): its assertions, or one ``<error>`` case when the
    session produced no verdicts (it never ran), so a CI system shows it instead of an empty suite."""
    cases = assertion_cases(results, classname)
    if error is not None and not cases:
        case = ET.Element("testcase", {"classname": classname, "name": "session", "time": "0.000"})
        ET.SubElement(case, "error", {"type": "ERROR", "message": error}).text = error
        cases.append(case)
    suite = _suite(name, cases, seconds, None, properties or {})
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    return suite


def _case_for(row: FigureChange, scenario: str) -> ET.Element:
    case = ET.Element("testcase", {"classname": f"relaysim.compare.{scenario}", "name": row.label,
                                   "time": "0.000"})
    base, new = format_value(row.base, row.unit), format_value(row.new, row.unit)
    summary = f"{base} -> {new} ({format_change(row)})"
    if row.detail:
        summary += f"; {row.detail}"
    if row.verdict is Change.REGRESSED:
        failure = ET.SubElement(case, "failure", {"type": "REGRESSED", "message": summary})
        failure.text = f"{summary}\n{row.new_detail}" if row.new_detail else summary
    elif row.verdict is Change.NOT_COMPARED:
        ET.SubElement(case, "skipped", {"type": "NOT_COMPARED", "message": row.detail or "not compared"})
    else:
        ET.SubElement(case, "system-out").text = f"{row.verdict.value}: {summary}"
    return case


def comparison_suite(comparison: Comparison, name: str | None = None) -> ET.Element:
    """A comparison as a ``<testsuite>``: one test case per compared figure (a regression fails it)."""
    scenario = comparison.new.scenario
    cases = [_case_for(r, scenario) for r in comparison.rows]
    b, n = comparison.base, comparison.new
    properties = {
        "verdict": comparison.verdict.value, "base_app": b.app_mode, "new_app": n.app_mode,
        "dataset": n.dataset_name, "dataset_spec_sha256": n.dataset_spec_sha256,
        "base_relaysim": b.relaysim, "new_relaysim": n.relaysim,
    }
    return _suite(name or f"relaysim compare: {scenario}", cases, 0.0, None, properties)


def junit_xml(suites: Iterable[ET.Element]) -> bytes:
    """``<testsuites>`` around ``suites``, with the totals, as UTF-8 bytes with an XML declaration."""
    root = ET.Element("testsuites", {"name": "relaysim"})
    total = {"tests": 0, "failures": 0, "errors": 0}
    seconds = 0.0
    for s in suites:
        root.append(s)
        for key in total:
            total[key] += int(s.get(key, "0"))
        seconds += float(s.get("time", "0"))
    for key, value in total.items():
        root.set(key, str(value))
    root.set("time", _time(seconds))
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def write_junit(path: str | Path, suites: Iterable[ET.Element]) -> None:
    """Write :func:`junit_xml` of ``suites`` to ``path`` atomically."""
    write_bytes_atomic(path, junit_xml(suites))
