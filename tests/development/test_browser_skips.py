"""A browser test that cannot run is announced, and fails the run where browsers are required."""

import os
import subprocess
import sys

from django.conf import settings

SKIPPING_BROWSER_TEST = """
import pytest

@pytest.mark.browser
def test_drives_chromium():
    pytest.skip("headless Chromium (/usr/bin/chromium) is not installed")

def test_plain():
    pass
"""


def _run_pytest(tmp_path, **env):
    (tmp_path / "test_sample.py").write_text(SKIPPING_BROWSER_TEST)
    environ = {k: v for k, v in os.environ.items() if k != "RAPPORT_REQUIRE_BROWSER_TESTS"}
    environ.update(env, PYTHONPATH=str(settings.BASE_DIR))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:django",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.support.browser_skips",
            "-o",
            "markers=browser: drives headless Chromium",
            "-c",
            os.devnull,
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environ,
        timeout=60,
    )


def test_a_skipped_browser_test_ends_the_run_with_one_loud_line(tmp_path):
    run = _run_pytest(tmp_path)

    assert run.returncode == 0, run.stdout
    loud = [line for line in run.stdout.splitlines() if line.startswith("!!!")]
    assert len(loud) == 1
    assert "1 browser test(s) SKIPPED" in loud[0]
    assert "Chromium (/usr/bin/chromium) is not installed" in loud[0]


def test_where_browser_tests_are_required_a_skip_fails_the_run(tmp_path):
    run = _run_pytest(tmp_path, RAPPORT_REQUIRE_BROWSER_TESTS="1")

    assert run.returncode == 1, run.stdout
    assert "FAILED: required here" in run.stdout
