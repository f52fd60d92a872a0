"""Submissions: code or answers sent for evaluation."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from api.deps import PrincipalDep, SessionDep, SettingsDep, TemporalDep
from api.errors import problem_responses
from api.observability import SUBMISSIONS
from api.services import submissions as service
from domain.submissions import SubmissionCreate, SubmissionOut, SubmissionPage

router = APIRouter(prefix="/v1/submissions", tags=["submissions"])


@router.post(
    "",
    response_model=SubmissionOut,
    status_code=202,
    summary="Submit code or an answer for evaluation",
    description=(
        "Answers 202 with the queued submission. With `Prefer: wait=N` (N ≤ 30) it waits "
        "up to N seconds for the verdict and answers 200 when it arrives in time. An "
        "`Idempotency-Key` makes a retried POST return the same submission."
    ),
    responses={
        200: {"model": SubmissionOut, "description": "Evaluated within the wait"},
        **problem_responses(401, 404, 413, 422, 429),
    },
)
async def create_submission(
    body: SubmissionCreate,
    response: Response,
    user: PrincipalDep,
    db: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    prefer: Annotated[str | None, Header(max_length=200)] = None,
) -> SubmissionOut:
    out = await service.create(
        db,
        temporal,
        settings,
        user,
        body,
        idempotency_key=idempotency_key,
        wait_seconds=service.parse_prefer_wait(prefer),
    )
    response.headers["Location"] = out.links["self"]
    SUBMISSIONS.labels(out.verdict.value if out.verdict is not None else "pending").inc()
    if out.status in ("completed", "failed"):
        response.status_code = 200
        if prefer:
            response.headers["Preference-Applied"] = "wait"
    return out


@router.get(
    "/{submission_id}",
    response_model=SubmissionOut,
    summary="A submission with its status and result",
    responses=problem_responses(401, 404, 422, 429),
)
async def get_submission(
    submission_id: uuid.UUID, user: PrincipalDep, db: SessionDep
) -> SubmissionOut:
    return await service.get(db, user, submission_id)


@router.get(
    "",
    response_model=SubmissionPage,
    summary="The caller's submissions, newest first",
    responses=problem_responses(401, 422, 429),
)
async def list_submissions(
    user: PrincipalDep,
    db: SessionDep,
    problem_id: Annotated[str | None, Query(max_length=120)] = None,
    session_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SubmissionPage:
    return await service.list_(
        db, user, problem_id=problem_id, session_id=session_id, limit=limit, cursor=cursor
    )
