"""An advance or a review grade that no worker takes in time (the worker holding the
workflow was killed) is a 503 to retry, not a 500. Real Temporal dev server; the workflow
runs on a task queue that no worker polls."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client

from api.auth import Principal
from api.errors import ServiceUnavailable
from api.services import reviews as review_service
from api.services import sessions as service
from domain.contracts import UpdateName, WorkflowName, reviews_workflow_id, session_workflow_id
from domain.reviews import GradeBody
from domain.sessions import AdvanceRequest


async def test_an_update_nobody_takes_in_time_is_service_unavailable(
    temporal_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = uuid.uuid4()
    handle = await temporal_client.start_workflow(
        WorkflowName.SESSION,
        id=session_workflow_id(session_id),
        task_queue=f"nobody-polls-{uuid.uuid4().hex}",
    )
    monkeypatch.setattr(service, "UPDATE_TIMEOUT_SECONDS", 1.0)
    try:
        with pytest.raises(ServiceUnavailable) as refused:
            await service._update(temporal_client, session_id, UpdateName.ADVANCE, AdvanceRequest())
        assert int(refused.value.headers["Retry-After"]) > 0
    finally:
        await handle.terminate()


async def test_a_grade_nobody_takes_in_time_is_service_unavailable(
    temporal_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = f"grader-{uuid.uuid4().hex[:8]}"
    handle = await temporal_client.start_workflow(
        WorkflowName.REVIEW_SCHEDULE,
        id=reviews_workflow_id(user),
        task_queue=f"nobody-polls-{uuid.uuid4().hex}",
    )

    async def a_card(*_: object) -> object:  # the card row: not what is under test
        return object()

    monkeypatch.setattr(review_service.repo, "get_owned", a_card)
    monkeypatch.setattr(review_service, "UPDATE_TIMEOUT_SECONDS", 1.0)
    try:
        with pytest.raises(ServiceUnavailable) as refused:
            await review_service.grade(
                None,  # type: ignore[arg-type]
                temporal_client,
                Principal(user),
                "math-derivative-power",
                GradeBody(rating="good", force=True),
                idempotency_key=None,
            )
        assert int(refused.value.headers["Retry-After"]) > 0
    finally:
        await handle.terminate()
