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

# A 202 says when to look again: most evaluations finish within a second or two.
POLL_AFTER_SECONDS = 1


@router.post(
    "",
    response_model=SubmissionOut,
    status_code=202,
    summary="Submit code or an answer for evaluation",
    description=(
        "Answers 202 with the queued submission. With `Prefer: wait=N` (N ≤ 30) it waits "
        "up to N seconds for the verdict and answers 200 when it arrives in time; a 202 "
        "carries `Retry-After` (seconds until it is worth polling `Location`). An "
        "`Idempotency-Key` makes a retried POST return the same submission (another body "
        "with the same key: 422 `idempotency-key-reused`). With `session_id` the problem "
        "must be the session's current item (409 `item-not-available`), and the session "
        "must be active (409 `session-closed`)."
    ),
    responses={
        200: {"model": SubmissionOut, "description": "Evaluated within the wait"},
        202: {
            "model": SubmissionOut,
            "description": "Queued or running; poll `Location` after `Retry-After` seconds",
            "headers": {
                "Retry-After": {
                    "description": "Seconds until polling is worthwhile.",
                    "schema": {"type": "integer"},
                }
            },
        },
        **problem_responses(401, 404, 409, 413, 422, 429),
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
    else:
        response.headers["Retry-After"] = str(POLL_AFTER_SECONDS)
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
