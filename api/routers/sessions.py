"""Learning sessions: one learner working through one track."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from api.deps import PrincipalDep, SessionDep, SettingsDep, TemporalDep
from api.errors import problem_responses
from api.services import sessions as service
from domain.progression import SessionStatus
from domain.sessions import AdvanceRequest, SessionCreate, SessionDetail, SessionList

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


@router.post(
    "",
    response_model=SessionDetail,
    status_code=201,
    summary="Start a session on a track",
    description=(
        "Starts a session on the newest published version of the track (201). A learner "
        "has at most one active session per track: if one exists it is returned (200)."
    ),
    responses={
        200: {"model": SessionDetail, "description": "The active session on this track"},
        **problem_responses(401, 404, 422, 429, 503),
    },
)
async def create_session(
    body: SessionCreate,
    response: Response,
    user: PrincipalDep,
    db: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> SessionDetail:
    out, created = await service.create(db, temporal, settings, user, body)
    response.status_code = 201 if created else 200
    response.headers["Location"] = out.links["self"]
    return out


@router.get(
    "",
    response_model=SessionList,
    summary="The caller's sessions, newest first",
    description=(
        "Ordered by `started_at` descending, then `id` descending. Each item uses the "
        "field names of the session detail. Pages: pass the previous page's "
        "`next_cursor` as `cursor`; it is null on the last page."
    ),
    responses=problem_responses(401, 422, 429),
)
async def list_sessions(
    user: PrincipalDep,
    db: SessionDep,
    status: Annotated[
        SessionStatus | None, Query(description="Only sessions in this state.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SessionList:
    return await service.list_(db, user, status=status, limit=limit, cursor=cursor)


@router.get(
    "/{session_id}",
    response_model=SessionDetail,
    summary="A session: current item, progress, attempts, hints, mastery, next actions",
    responses=problem_responses(401, 404, 422, 429),
)
async def get_session(session_id: uuid.UUID, user: PrincipalDep, db: SessionDep) -> SessionDetail:
    return await service.get(db, user, session_id)


@router.post(
    "/{session_id}/advance",
    response_model=SessionDetail,
    summary="Move past the current item",
    description=(
        "Allowed when the current item is mastered, optional or skippable (an unmastered "
        "item is then marked skipped). Otherwise 409 `advance-refused` with the reason. "
        "Give `from_problem_id`: a retried request whose item the learner has already "
        "moved past answers 200 with the current state instead of skipping a second "
        "item. A session that is over answers 409 `session-closed`."
    ),
    responses=problem_responses(401, 404, 409, 422, 429, 503),
)
async def advance_session(
    session_id: uuid.UUID,
    user: PrincipalDep,
    db: SessionDep,
    temporal: TemporalDep,
    body: Annotated[AdvanceRequest | None, Body()] = None,
) -> SessionDetail:
    return await service.advance(db, temporal, user, session_id, body or AdvanceRequest())


@router.post(
    "/{session_id}/end",
    response_model=SessionDetail,
    summary="End the session",
    description=(
        "Idempotent: ending a session that is already over (completed, ended or "
        "abandoned) answers 200 with its final state."
    ),
    responses=problem_responses(401, 404, 422, 429, 503),
)
async def end_session(
    session_id: uuid.UUID, user: PrincipalDep, db: SessionDep, temporal: TemporalDep
) -> SessionDetail:
    return await service.end(db, temporal, user, session_id)
