"""``/docs`` (Swagger UI) and ``/redoc`` work without internet: headless Chromium, with
every host name but loopback unresolvable, loads them from the API alone and sees the
operations listed."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from devservices.testing import serve
from tests.support.browser import CHROMIUM, chromium

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
)


async def test_swagger_ui_and_redoc_render_the_operations_offline(
    app: FastAPI, tmp_path: Path
) -> None:
    async with (
        serve(app, lifespan="off", graceful_shutdown_seconds=1) as api,
        chromium(tmp_path / "profile", offline=True) as browser,
    ):
        paths = await browser.page_value(
            f"{api}/docs",
            ready="document.querySelectorAll('.opblock').length > 10",
            value="[...document.querySelectorAll('.opblock-summary-path')]"
            ".map(e => e.getAttribute('data-path'))",
        )
        tags = await browser.page_value(
            f"{api}/docs",
            ready="document.querySelectorAll('.opblock-tag').length > 0",
            value="[...document.querySelectorAll('.opblock-tag')].map(e => e.dataset.tag)",
        )
        redoc = await browser.page_value(
            f"{api}/redoc",
            ready="document.body.innerText.includes('Start a session on a track')",
            value="document.body.innerText",
        )
    assert "/v1/problems/{problem_id}" in paths
    assert "/v1/sessions/{session_id}/advance" in paths
    assert {"tracks", "problems", "sessions", "submissions", "tutor", "authoring"} <= set(tags)
    assert "A problem: statement, starter code" in redoc
