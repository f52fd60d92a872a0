"""With ``CI=true`` a skip fails the run; without it, a skip is a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SKIPPING = """
import pytest

def test_runs():
    pass

@pytest.mark.skipif(True, reason="no chromium here")
def test_marked():
    pass

def test_skips_itself():
    pytest.skip("no root here")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
"""


def run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.ci_skips", "-q", "-p", "no:cacheprovider"]
        + ["-p", "no:randomly", "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_in_ci_a_skip_is_a_failure(tmp_path: Path) -> None:
    result = run(tmp_path, "true")
    assert result.returncode == 1, result.stdout + result.stderr
    # A skipif mark skips at setup (an error), pytest.skip() in the test body fails it.
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in result.stdout, result.stdout
    assert "skipped in CI (CI=true)" in result.stdout
    assert "no chromium here" in result.stdout


def test_outside_ci_a_skip_is_a_skip(tmp_path: Path) -> None:
    result = run(tmp_path, None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 2 skipped, 1 xfailed" in result.stdout, result.stdout
