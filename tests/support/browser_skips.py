"""pytest plugin: a browser test that could not run is never a quiet pass.

The run ends with one loud line counting the skipped browser tests and why; with
RAPPORT_REQUIRE_BROWSER_TESTS=1 (CI sets it) any such skip fails the run. Drawing the docs'
screenshots is not a check: those tests are left out (not skipped) unless RAPPORT_SCREENSHOTS=1.
"""

from __future__ import annotations

import os

import pytest

REQUIRED = "RAPPORT_REQUIRE_BROWSER_TESTS"

_skipped: list[pytest.TestReport] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("RAPPORT_SCREENSHOTS"):
        return
    drawing = [item for item in items if item.get_closest_marker("screenshots")]
    if drawing:
        config.hook.pytest_deselected(items=drawing)
        items[:] = [item for item in items if item not in drawing]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "browser" in report.keywords:
        _skipped.append(report)


def _reasons() -> list[str]:
    reasons: list[str] = []
    for report in _skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        if reason not in reasons:
            reasons.append(reason)
    return reasons


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and os.environ.get(REQUIRED) and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _skipped:
        return
    verdict = "FAILED: required here" if os.environ.get(REQUIRED) else "NOT RUN"
    terminalreporter.write_line(
        f"!!! {len(_skipped)} browser test(s) SKIPPED ({verdict}): {'; '.join(_reasons())}. "
        "Install Debian's chromium (scripts/ensure-chromium does it where it can).",
        red=True,
        bold=True,
    )
