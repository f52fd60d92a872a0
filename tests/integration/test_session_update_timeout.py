"""An advance that no worker takes in time (the worker holding the session was killed) is
a 503 to retry, not a 500. Real Temporal dev server; the workflow runs on a task queue
that no worker polls."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client

from api.errors import ServiceUnavailable
from api.services import sessions as service
from domain.sessions import AdvanceRequest
from domain.temporal import session_workflow_id


async def test_an_update_nobody_takes_in_time_is_service_unavailable(
    temporal_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = uuid.uuid4()
    handle = await temporal_client.start_workflow(
        "SessionWorkflow",
        id=session_workflow_id(session_id),
        task_queue=f"nobody-polls-{uuid.uuid4().hex}",
    )
    monkeypatch.setattr(service, "UPDATE_TIMEOUT_SECONDS", 1.0)
    try:
        with pytest.raises(ServiceUnavailable) as refused:
            await service._update(
                temporal_client, session_id, service.ADVANCE_UPDATE, AdvanceRequest()
            )
        assert int(refused.value.headers["Retry-After"]) > 0
    finally:
        await handle.terminate()
