"""The tutor: questions answered token by token over Server-Sent Events."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import PrincipalDep, RedisDep, SessionDep, SettingsDep, TemporalDep, db_session
from api.errors import problem_responses
from api.services import tutor as service
from api.tutor_relay import LeasedEventSourceResponse, relay
from domain.settings import Settings
from domain.tutor import TutorMessageCreate, TutorMessageOut, TutorMessagePage

router = APIRouter(tags=["tutor"])

# Streaming routes close their transaction when the route function returns, before the
# first event: a stream may last minutes and must not hold a database connection.
StreamSessionDep = Annotated[AsyncSession, Depends(db_session, scope="function")]

_SSE_DOC = (
    "`text/event-stream`. Events: `meta` (first; `message_id`, `hint_level` granted, "
    '`hint_level_requested`, `capped`), `token` (`{"text": ...}`, each with an `id:`), '
    'then `done` (`{"message_id", "chars"}`) or `error` (`{"code", "reason"}`); '
    "comment lines keep the connection alive. Reconnect with "
    "`GET /v1/tutor/messages/{id}/stream` and `Last-Event-ID` to resume. At most "
    "`CO_SSE_MAX_STREAMS` streams per user may be open at once (429 with `Retry-After`)."
)
_SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer as Server-Sent Events",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def _response(stream: service.OpenStream, redis: Redis, settings: Settings) -> Any:
    return LeasedEventSourceResponse(
        relay(
            redis,
            stream.meta,
            after=stream.after,
            idle_timeout=settings.tutor_idle_timeout_seconds,
        ),
        lease=stream.lease,
        ping=settings.sse_ping_seconds,
        send_timeout=settings.sse_send_timeout_seconds,
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/v1/tutor/messages",
    summary="Ask the tutor; the answer streams back as Server-Sent Events",
    description=(
        "Starts a tutor turn on a problem of one of the caller's sessions. The hint level "
        "follows the hint policy (failed attempts and earlier hints unlock levels 2 and 3); "
        "a higher `hint_level` than allowed is capped and `meta.capped` says so. With an "
        "`Idempotency-Key`, a retried POST streams the same turn again. " + _SSE_DOC
    ),
    response_class=LeasedEventSourceResponse,
    responses={**_SSE_RESPONSE, **problem_responses(401, 404, 410, 413, 422, 429, 503)},
)
async def ask_tutor(
    body: TutorMessageCreate,
    user: PrincipalDep,
    db: StreamSessionDep,
    redis: RedisDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    stream = await service.start_turn(
        db, redis, temporal, settings, user, body, idempotency_key=idempotency_key
    )
    return _response(stream, redis, settings)


@router.get(
    "/v1/tutor/messages/{message_id}/stream",
    summary="Resume a tutor answer's stream",
    description=(
        "Replays the turn's events after `Last-Event-ID` (from the start without it) and "
        "follows the turn until it ends. 410 once a finished turn's stream has expired "
        "(`CO_TUTOR_STREAM_TTL_SECONDS`): read the transcript instead. " + _SSE_DOC
    ),
    response_class=LeasedEventSourceResponse,
    responses={**_SSE_RESPONSE, **problem_responses(401, 404, 410, 422, 429)},
)
async def resume_stream(
    message_id: uuid.UUID,
    user: PrincipalDep,
    db: StreamSessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> Any:
    stream = await service.open_stream(
        db, redis, settings, user, message_id, last_event_id=last_event_id
    )
    return _response(stream, redis, settings)


@router.get(
    "/v1/tutor/messages/{message_id}",
    response_model=TutorMessageOut,
    summary="A tutor turn and its stored transcript",
    responses=problem_responses(401, 404, 422, 429),
)
async def get_message(message_id: uuid.UUID, user: PrincipalDep, db: SessionDep) -> TutorMessageOut:
    return await service.get(db, user, message_id)


@router.get(
    "/v1/sessions/{session_id}/tutor",
    response_model=TutorMessagePage,
    summary="A session's tutor turns, oldest first",
    responses=problem_responses(401, 404, 422, 429),
)
async def list_session_turns(
    session_id: uuid.UUID,
    user: PrincipalDep,
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> TutorMessagePage:
    return await service.list_for_session(db, user, session_id, limit=limit, cursor=cursor)
