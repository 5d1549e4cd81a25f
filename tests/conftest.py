"""Shared test settings.

Hypothesis runs derandomized in CI (CI=true) so a red build is reproducible from its log, and
without deadlines because the CI machine is shared and slow timing is not a failure of behaviour.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_addoption(parser):
    parser.addoption(
        "--slow", action="store_true", help="also run the tests marked slow (full-length variants)"
    )


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` are the full-length variants of what CI checks in a small budget (a long
    search, a real soak): deselected unless ``--slow`` is given. Deselected, not skipped, because a
    skip in CI is a failure (below)."""
    if config.getoption("--slow"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI a skip is a failure: scripts/install provides every browser, driver and tool, so a
    test that skips there means the install step is broken, not that the test may be ignored."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where scripts/install provides everything: {report.longrepr}"
