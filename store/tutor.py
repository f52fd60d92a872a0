"""Repository functions for tutor turns and the facts the hint policy counts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.hints import NOT_EVALUATED_VERDICTS, HintFacts
from domain.tutor import TurnStatus
from store.models import (
    CurriculumItem,
    LearningSession,
    Module,
    Result,
    Submission,
    TrackVersion,
    TutorMessage,
)


async def get_owned(db: AsyncSession, message_id: uuid.UUID, user_id: str) -> TutorMessage | None:
    return await db.scalar(
        select(TutorMessage).where(TutorMessage.id == message_id, TutorMessage.user_id == user_id)
    )


@dataclass(frozen=True)
class AskFacts:
    """Everything ``POST /v1/tutor/messages`` checks before it records a turn."""

    session_status: str
    published: bool  # the problem is in some published track version
    in_version: bool  # ... and in the session's version
    exists: bool  # a turn with this id is recorded already (a retried POST)
    hints: HintFacts


def _hint_counts(
    user_id: str, problem_id: str, *, exclude: uuid.UUID | None = None
) -> tuple[Any, Any, Any]:
    """Scalar subqueries: failed attempts, hints given, highest level given (the rules
    of ``hint_facts``)."""
    failed = (
        select(func.count())
        .select_from(Submission)
        .where(
            Submission.user_id == user_id,
            Submission.problem_id == problem_id,
            Submission.status == "completed",
            Submission.verdict != "accepted",
            # as domain.hints.counts_as_failed_attempt: only evaluated attempts count
            Submission.verdict.not_in(NOT_EVALUATED_VERDICTS),
        )
        .scalar_subquery()
    )
    given = TutorMessage.user_id == user_id, TutorMessage.problem_id == problem_id
    counted = [*given, TutorMessage.status != TurnStatus.failed.value]
    if exclude is not None:
        counted.append(TutorMessage.id != exclude)
    hints = select(func.count()).select_from(TutorMessage).where(*counted).scalar_subquery()
    highest = select(func.coalesce(func.max(TutorMessage.hint_level), 0)).where(*counted)
    return failed, hints, highest.scalar_subquery()


async def ask_facts(
    db: AsyncSession, user_id: str, session_id: uuid.UUID, problem_id: str, message_id: uuid.UUID
) -> AskFacts | None:
    """The caller's session, the problem's place in published tracks, an earlier turn
    with this id and the hint facts, in one round trip: a learner waits for the first
    token behind these checks. ``None`` when the session is not the caller's."""
    item_of = (
        select(CurriculumItem.id)
        .join(Module, Module.id == CurriculumItem.module_id)
        .where(CurriculumItem.problem_id == problem_id)
    )
    published = exists(
        item_of.join(TrackVersion, TrackVersion.id == Module.track_version_id).where(
            TrackVersion.status == "published"
        )
    )
    in_version = exists(item_of.where(Module.track_version_id == LearningSession.track_version_id))
    recorded = exists(
        select(TutorMessage.id).where(
            TutorMessage.id == message_id, TutorMessage.user_id == user_id
        )
    )
    failed, hints, highest = _hint_counts(user_id, problem_id)
    row = (
        await db.execute(
            select(
                LearningSession.status, published, in_version, recorded, failed, hints, highest
            ).where(LearningSession.id == session_id, LearningSession.user_id == user_id)
        )
    ).first()
    if row is None:
        return None
    status, is_published, is_in_version, is_recorded, n_failed, n_hints, top = row
    return AskFacts(
        session_status=status,
        published=bool(is_published),
        in_version=bool(is_in_version),
        exists=bool(is_recorded),
        hints=HintFacts(
            failed_attempts=int(n_failed or 0),
            prior_hints=int(n_hints or 0),
            highest_prior_level=min(int(top or 0), 3),
        ),
    )


async def hint_facts(
    db: AsyncSession, user_id: str, problem_id: str, *, exclude: uuid.UUID | None = None
) -> HintFacts:
    """Failed attempts (completed, not accepted) and hints already given on one problem.

    Turns still streaming count as given: a learner who fires several requests at once
    must not unlock levels faster than one who waits for each answer. Failed turns gave
    nothing and do not count.
    """
    failed, hints, highest = _hint_counts(user_id, problem_id, exclude=exclude)
    n_failed, n_hints, top = (await db.execute(select(failed, hints, highest))).one()
    return HintFacts(
        failed_attempts=int(n_failed or 0),
        prior_hints=int(n_hints or 0),
        highest_prior_level=min(int(top or 0), 3),
    )


async def turn_context(
    db: AsyncSession, message_id: uuid.UUID
) -> tuple[TutorMessage, Result | None] | None:
    """A turn and the learner's newest result on its problem (``last_result``), in one
    round trip: the stream activity needs both before it can call the Tutor."""
    last = (
        select(Result)
        .join(Submission, Submission.id == Result.submission_id)
        .where(
            Submission.user_id == TutorMessage.user_id,
            Submission.problem_id == TutorMessage.problem_id,
            Submission.status == "completed",
        )
        .order_by(Submission.completed_at.desc().nulls_last(), Submission.created_at.desc())
        .limit(1)
        .lateral()
    )
    row = (
        await db.execute(
            select(TutorMessage, aliased(Result, last))
            .outerjoin(last, true())
            .where(TutorMessage.id == message_id)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def insert_if_absent(db: AsyncSession, values: dict[str, Any]) -> TutorMessage:
    """Insert a turn unless its id exists (a retried POST with the same Idempotency-Key)."""
    inserted = (
        await db.scalars(
            insert(TutorMessage)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(TutorMessage)
            .execution_options(populate_existing=True)
        )
    ).first()
    if inserted is not None:
        return inserted
    row = await db.get(TutorMessage, values["id"], populate_existing=True)
    assert row is not None
    return row


async def delete_unstarted(db: AsyncSession, message_id: uuid.UUID) -> None:
    """Take back a turn whose workflow could not be started (still ``streaming``)."""
    await db.execute(
        delete(TutorMessage).where(
            TutorMessage.id == message_id, TutorMessage.status == TurnStatus.streaming.value
        )
    )


async def finish(
    db: AsyncSession,
    message_id: uuid.UUID,
    status: TurnStatus,
    response: str,
    *,
    error: str | None = None,
) -> bool:
    """Store the transcript and close the turn once; False when it was already closed."""
    result = await db.execute(
        update(TutorMessage)
        .where(TutorMessage.id == message_id, TutorMessage.status == TurnStatus.streaming.value)
        .values(
            status=status.value,
            response=response,
            error=error,
            completed_at=datetime.now(UTC),
        )
        .returning(TutorMessage.id)
    )
    return result.first() is not None


async def list_for_session(
    db: AsyncSession,
    session_id: uuid.UUID,
    user_id: str,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[TutorMessage]:
    """A session's turns in conversation order, keyset-paginated on (created_at, id)."""
    stmt = select(TutorMessage).where(
        TutorMessage.session_id == session_id, TutorMessage.user_id == user_id
    )
    if after is not None:
        created, mid = after
        stmt = stmt.where(
            or_(
                TutorMessage.created_at > created,
                and_(TutorMessage.created_at == created, TutorMessage.id > mid),
            )
        )
    stmt = stmt.order_by(TutorMessage.created_at, TutorMessage.id).limit(limit)
    return list((await db.scalars(stmt)).all())
