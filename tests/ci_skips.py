"""In CI (``CI=true``, as GitHub Actions and ``.ci/run`` set it) a skipped test is a
failure: the browser, root-only and HAProxy tests must run there, and a skip that hides a
missing package or privilege must turn the run red rather than quietly shrink it.

Loaded by ``tests/conftest.py`` (``pytest_plugins``); ``-p tests.ci_skips`` loads it alone.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true), which counts as a failure: {reason}"
