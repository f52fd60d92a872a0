"""Tutor turns: starting one, resuming its stream, reading transcripts.

The POST checks the session (the caller's) and the problem (in a published track),
decides the hint level with the pure policy, takes an SSE slot, **commits** the turn's
row and then starts ``TutorTurnWorkflow`` (ids and the decision only). The row is the
API's (what the learner asked and the level granted, decided before any workflow
exists); the workflow only closes it with the transcript. Because the row is committed
first, the workflow never waits for it and streams at once.

A start that fails after the commit (Temporal unreachable) deletes the fresh row again
and answers 503: nothing happened, and a retry starts cleanly. A process that dies
between the commit and the start leaves a ``streaming`` row without a workflow; a
retried POST with the same ``Idempotency-Key`` starts it (the start is idempotent by
workflow id), so a client that retries as told never waits on a turn nobody answers.
An ``Idempotency-Key`` maps a retried POST onto the same turn, which is streamed again
from the start instead of being asked twice.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from api.auth import Principal
from api.errors import ApiError, NotFound, TooManyRequests, Unprocessable
from api.idempotency import check_idempotency_key
from api.pagination import decode_cursor, encode_cursor
from api.problem_types import IdempotencyKeyReused, SessionClosed
from api.sse_slots import Lease, Refusal, SseSlots
from api.temporal import start_workflow as temporal_start
from api.tutor_relay import valid_entry_id
from domain.contracts import (
    CO_PROBLEM_ID,
    CO_SESSION_ID,
    CO_STATUS,
    CO_USER_ID,
    WorkflowName,
    tutor_workflow_id,
)
from domain.hints import HintDecision, decide
from domain.settings import Settings
from domain.tutor import (
    MetaEvent,
    TurnStatus,
    TutorMessageCreate,
    TutorMessageOut,
    TutorMessagePage,
    TutorTurnInput,
    message_id_for_key,
    stream_key,
)
from store import sessions as session_repo
from store import tutor as repo
from store.models import TutorMessage

log = logging.getLogger("co.api.tutor")


class Gone(ApiError):
    status, slug, title = 410, "gone", "Gone"


@dataclass(frozen=True)
class OpenStream:
    """What the relay needs: the first event, where to start, and the slot it holds."""

    meta: MetaEvent
    lease: Lease
    after: str | None = None


def slots_for(redis: Redis, settings: Settings) -> SseSlots:
    return SseSlots(
        redis, max_streams=settings.sse_max_streams, ttl_seconds=settings.sse_slot_ttl_seconds
    )


async def _acquire(slots: SseSlots, user_id: str) -> Lease:
    got = await slots.acquire(user_id)
    if isinstance(got, Refusal):
        raise TooManyRequests(
            f"at most {slots.max_streams} tutor streams may be open at once; "
            "close one or retry shortly",
            headers={"Retry-After": str(got.retry_after)},
        )
    return got


def _capped(row: TutorMessage) -> bool:
    return row.hint_level_requested is not None and row.hint_level_requested > row.hint_level


def meta_of(row: TutorMessage, *, resumed: bool) -> MetaEvent:
    return MetaEvent(
        message_id=row.id,
        session_id=row.session_id,
        problem_id=row.problem_id,
        hint_level=row.hint_level,
        hint_level_requested=row.hint_level_requested,
        capped=_capped(row),
        status=TurnStatus(row.status),
        resumed=resumed,
    )


async def _ensure_streamable(redis: Redis, row: TutorMessage) -> None:
    if row.status != TurnStatus.streaming and not await redis.exists(stream_key(row.id)):
        raise Gone(
            "this answer is no longer available as a stream; "
            f"read it at /v1/tutor/messages/{row.id}"
        )


async def start_workflow(temporal: Client, settings: Settings, data: TutorTurnInput) -> None:
    # A turn that already ran is no error: its stream (or transcript) is the answer.
    # Not an eager start: with a workflow worker inside the API process the first
    # workflow task skipped its dispatch but ran 15-25 ms slower there, beside the
    # request it serves, and the first token came no sooner (bench/results/tutor-*).
    await temporal_start(
        temporal,
        WorkflowName.TUTOR_TURN,
        data,
        id=tutor_workflow_id(data.message_id),
        task_queue=settings.temporal_task_queue,
        attributes=[
            SearchAttributePair(CO_USER_ID, data.user_id),
            SearchAttributePair(CO_PROBLEM_ID, data.problem_id),
            SearchAttributePair(CO_SESSION_ID, str(data.session_id)),
            SearchAttributePair(CO_STATUS, TurnStatus.streaming.value),
        ],
        unavailable="the tutor cannot take questions right now; retry shortly",
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


def _input(row: TutorMessage, decision: HintDecision) -> TutorTurnInput:
    return TutorTurnInput(
        message_id=row.id,
        user_id=row.user_id,
        session_id=row.session_id,
        problem_id=row.problem_id,
        decision=decision,
    )


async def _ensure_started(
    db: AsyncSession, temporal: Client, settings: Settings, row: TutorMessage
) -> None:
    """A retried POST of a turn still ``streaming``: make sure its workflow exists (the
    first POST may have died between its commit and its start). The row's level was
    announced already, so the workflow gets that level whatever the facts say now."""
    facts = await repo.hint_facts(db, row.user_id, row.problem_id, exclude=row.id)
    decision = decide(facts, row.hint_level_requested).model_copy(
        update={"granted": row.hint_level, "capped": _capped(row)}
    )
    await start_workflow(temporal, settings, _input(row, decision))


async def start_turn(
    db: AsyncSession,
    redis: Redis,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    body: TutorMessageCreate,
    *,
    idempotency_key: str | None,
) -> OpenStream:
    if len(body.message) > settings.tutor_max_message_chars:
        raise Unprocessable(f"message is longer than {settings.tutor_max_message_chars} characters")
    user_id = principal.user_id
    key = check_idempotency_key(idempotency_key)
    message_id = message_id_for_key(user_id, key) if key is not None else uuid.uuid4()
    facts = await repo.ask_facts(db, user_id, body.session_id, body.problem_id, message_id)
    if facts is None:
        raise NotFound(f"no session {body.session_id}")
    if not facts.published:
        raise NotFound(f"problem '{body.problem_id}' is not part of any published track")
    if not facts.in_version:
        raise Unprocessable(
            f"problem '{body.problem_id}' is not part of the track version of "
            f"session {body.session_id}"
        )
    slots = slots_for(redis, settings)

    if facts.exists:  # a retried POST
        existing = await repo.get_owned(db, message_id, user_id)
        assert existing is not None
        same = (
            existing.session_id == body.session_id
            and existing.problem_id == body.problem_id
            and existing.message == body.message
            and existing.hint_level_requested == body.hint_level
        )
        if not same:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request"
            )
        await _ensure_streamable(redis, existing)
        if existing.status == TurnStatus.streaming:
            await _ensure_started(db, temporal, settings, existing)
        return OpenStream(meta_of(existing, resumed=False), await _acquire(slots, user_id))

    if facts.session_status != "active":  # a retry of an earlier turn was answered above
        raise SessionClosed(f"session {body.session_id} is {facts.session_status}; start a new one")
    decision = decide(facts.hints, body.hint_level)
    lease = await _acquire(slots, user_id)
    try:
        row = await repo.insert_if_absent(
            db,
            {
                "id": message_id,
                "user_id": user_id,
                "session_id": body.session_id,
                "problem_id": body.problem_id,
                "message": body.message,
                "hint_level_requested": body.hint_level,
                "hint_level": decision.granted,
                "status": TurnStatus.streaming.value,
            },
        )
        # Committed before the start: the workflow reads this row and never waits for it.
        await db.commit()
        try:
            await start_workflow(temporal, settings, _input(row, decision))
        except Exception:
            # Temporal is unreachable (503) or refused the start: take the turn back so
            # the answer means "nothing happened" and a retry starts cleanly.
            await repo.delete_unstarted(db, message_id)
            await db.commit()
            raise
    except BaseException:
        await lease.release()
        raise
    return OpenStream(meta_of(row, resumed=False), lease)


async def open_stream(
    db: AsyncSession,
    redis: Redis,
    settings: Settings,
    principal: Principal,
    message_id: uuid.UUID,
    *,
    last_event_id: str | None,
) -> OpenStream:
    row = await repo.get_owned(db, message_id, principal.user_id)
    if row is None:
        raise NotFound(f"no tutor message {message_id}")
    after = last_event_id.strip() if last_event_id else None
    if after is not None and not valid_entry_id(after):
        raise Unprocessable("Last-Event-ID must be the id of an event of this stream")
    await _ensure_streamable(redis, row)
    lease = await _acquire(slots_for(redis, settings), principal.user_id)
    return OpenStream(meta_of(row, resumed=after is not None), lease, after)


def to_out(row: TutorMessage) -> TutorMessageOut:
    return TutorMessageOut(
        id=row.id,
        session_id=row.session_id,
        problem_id=row.problem_id,
        message=row.message,
        hint_level=row.hint_level,
        hint_level_requested=row.hint_level_requested,
        capped=_capped(row),
        status=TurnStatus(row.status),
        response=row.response,
        error=row.error,
        created_at=row.created_at,
        completed_at=row.completed_at,
        links={
            "self": f"/v1/tutor/messages/{row.id}",
            "stream": f"/v1/tutor/messages/{row.id}/stream",
        },
    )


async def get(db: AsyncSession, principal: Principal, message_id: uuid.UUID) -> TutorMessageOut:
    row = await repo.get_owned(db, message_id, principal.user_id)
    if row is None:
        raise NotFound(f"no tutor message {message_id}")
    return to_out(row)


async def list_for_session(
    db: AsyncSession,
    principal: Principal,
    session_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> TutorMessagePage:
    if await session_repo.get_owned(db, session_id, principal.user_id) is None:
        raise NotFound(f"no session {session_id}")
    after = decode_cursor(cursor) if cursor else None
    rows = await repo.list_for_session(
        db, session_id, principal.user_id, limit=limit + 1, after=after
    )
    page, more = rows[:limit], len(rows) > limit
    return TutorMessagePage(
        items=[to_out(r) for r in page],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more and page else None,
    )
