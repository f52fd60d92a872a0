"""Repository functions for submissions, results and mastery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.mastery import mastery_score
from domain.submissions import EvaluationOutcome, SubmissionStatus
from store.models import Result, Submission

# Statuses after which nothing is evaluated or written again.
TERMINAL = (SubmissionStatus.completed.value, SubmissionStatus.failed.value)

# A row the API recorded but could not hand to Temporal (the start failed after the
# commit): ``failed`` without a verdict. Only that state is provisional: a retried POST
# with the same Idempotency-Key queues it again, and a workflow that did start after all
# (an ambiguous start error) still evaluates it and its result replaces the mark.
_NOT_STARTED = and_(
    Submission.status == SubmissionStatus.failed.value, Submission.verdict.is_(None)
)
# Rows a result may still be written to: not finished, or only marked "not started".
_OPEN = or_(Submission.status.not_in(TERMINAL), _NOT_STARTED)


async def insert_if_absent(db: AsyncSession, values: dict[str, Any]) -> Submission:
    """Insert a submission unless its id (or user + idempotency key) exists; return the row."""
    stmt = insert(Submission).values(**values).on_conflict_do_nothing()
    await db.execute(stmt)
    row = await db.get(Submission, values["id"], populate_existing=True)
    if row is None and values.get("idempotency_key"):
        row = await db.scalar(
            select(Submission).where(
                Submission.user_id == values["user_id"],
                Submission.idempotency_key == values["idempotency_key"],
            )
        )
    assert row is not None  # either inserted now or present before
    return row


async def exists(db: AsyncSession, submission_id: uuid.UUID) -> bool:
    return await db.get(Submission, submission_id) is not None


async def count_in_flight_locked(db: AsyncSession, user_id: str) -> int:
    """The user's queued or running submissions, counted under a transaction-scoped
    advisory lock on the user, so concurrent POSTs of one user count one after another."""
    await db.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"co:submissions-in-flight:{user_id}"},
    )
    count = await db.scalar(
        select(func.count())
        .select_from(Submission)
        .where(Submission.user_id == user_id, Submission.status.not_in(TERMINAL))
    )
    return int(count or 0)


async def get_owned(db: AsyncSession, submission_id: uuid.UUID, user_id: str) -> Submission | None:
    return await db.scalar(
        select(Submission).where(Submission.id == submission_id, Submission.user_id == user_id)
    )


async def get_result(db: AsyncSession, submission_id: uuid.UUID) -> Result | None:
    return await db.scalar(select(Result).where(Result.submission_id == submission_id))


async def list_owned(
    db: AsyncSession,
    user_id: str,
    *,
    problem_id: str | None,
    session_id: uuid.UUID | None,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None,
) -> list[Submission]:
    """The user's submissions, newest first, keyset-paginated on (created_at, id)."""
    stmt = select(Submission).where(Submission.user_id == user_id)
    if problem_id is not None:
        stmt = stmt.where(Submission.problem_id == problem_id)
    if session_id is not None:
        stmt = stmt.where(Submission.session_id == session_id)
    if before is not None:
        created, sid = before
        stmt = stmt.where(
            or_(
                Submission.created_at < created,
                and_(Submission.created_at == created, Submission.id < sid),
            )
        )
    stmt = stmt.order_by(Submission.created_at.desc(), Submission.id.desc()).limit(limit)
    return list((await db.scalars(stmt)).all())


async def results_for(db: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, Result]:
    if not ids:
        return {}
    rows = await db.scalars(select(Result).where(Result.submission_id.in_(ids)))
    return {r.submission_id: r for r in rows}


async def set_status(
    db: AsyncSession,
    submission_id: uuid.UUID,
    status: SubmissionStatus,
    *,
    failure_reason: str | None = None,
) -> None:
    """Move a submission forward; a finished submission never moves back."""
    await db.execute(
        update(Submission)
        .where(Submission.id == submission_id, Submission.status.not_in(TERMINAL))
        .values(status=status.value, failure_reason=failure_reason, updated_at=func.now())
    )


async def claim(db: AsyncSession, submission_id: uuid.UUID) -> tuple[Submission | None, bool]:
    """Mark the submission ``running`` unless it is finished; returns the row and whether
    it was still open. The evaluation's first step: one statement, and no wait for
    anybody's commit. An open row has no result (the result and the row's final status
    are written in one transaction), so only a finished one needs its result read."""
    opened = await db.scalar(
        update(Submission)
        .where(Submission.id == submission_id, _OPEN)
        .values(status=SubmissionStatus.running.value, failure_reason=None, updated_at=func.now())
        .returning(Submission),
        execution_options={"populate_existing": True},
    )
    if opened is not None:
        return opened, True
    return await db.get(Submission, submission_id, populate_existing=True), False


def is_not_started(row: Submission) -> bool:
    return row.status == SubmissionStatus.failed.value and row.verdict is None


async def mark_not_started(db: AsyncSession, submission_id: uuid.UUID, reason: str) -> None:
    """The API could not start the submission's workflow: take the queued row out of the
    in-flight count with a reason. A workflow that started after all overrides it."""
    await db.execute(
        update(Submission)
        .where(Submission.id == submission_id, Submission.status == SubmissionStatus.queued.value)
        .values(status=SubmissionStatus.failed.value, failure_reason=reason, updated_at=func.now())
    )


async def requeue_not_started(db: AsyncSession, submission_id: uuid.UUID) -> None:
    """A retried POST (same Idempotency-Key) of a submission that was never started."""
    await db.execute(
        update(Submission)
        .where(Submission.id == submission_id, _NOT_STARTED)
        .values(status=SubmissionStatus.queued.value, failure_reason=None, updated_at=func.now())
    )


async def save_result(
    db: AsyncSession, submission_id: uuid.UUID, outcome: EvaluationOutcome, *, failed: bool
) -> bool:
    """Write the result once (unique on submission_id) and close the submission.
    Returns False when a result was already stored (a retried activity)."""
    inserted = await db.execute(
        insert(Result)
        .values(
            id=uuid.uuid4(),
            submission_id=submission_id,
            verdict=outcome.verdict.value,
            message=outcome.message,
            tests=[t.model_dump(mode="json") for t in outcome.tests],
            passed=outcome.passed,
            total=len(outcome.tests),
            time_ms=outcome.time_ms,
            memory_kb=outcome.memory_kb,
        )
        .on_conflict_do_nothing(index_elements=[Result.submission_id])
        .returning(Result.id)
    )
    created = inserted.first() is not None
    status = SubmissionStatus.failed if failed else SubmissionStatus.completed
    await db.execute(
        update(Submission)
        .where(Submission.id == submission_id, _OPEN)
        .values(
            status=status.value,
            verdict=outcome.verdict.value,
            failure_reason=outcome.message if failed else None,
            completed_at=datetime.now(UTC),
            updated_at=func.now(),
        )
    )
    return created


_MASTERY_SQL = text("""
    WITH skills AS (
        SELECT DISTINCT unnest(ci.skills) AS skill
        FROM curriculum_items ci WHERE ci.problem_id = :problem_id
    ),
    problem_skills AS (
        SELECT DISTINCT ci.problem_id, unnest(ci.skills) AS skill FROM curriculum_items ci
    ),
    counts AS (
        SELECT ps.skill,
               count(*) AS attempts,
               count(*) FILTER (WHERE s.verdict = 'accepted') AS accepted
        FROM submissions s
        JOIN problem_skills ps ON ps.problem_id = s.problem_id
        WHERE s.user_id = :user_id AND s.status = 'completed'
          AND ps.skill IN (SELECT skill FROM skills)
        GROUP BY ps.skill
    )
    SELECT skill, attempts, accepted FROM counts
    """)


async def recompute_mastery(db: AsyncSession, user_id: str, problem_id: str) -> dict[str, float]:
    """Recompute (not increment) mastery of the problem's skills: idempotent by construction."""
    rows = (await db.execute(_MASTERY_SQL, {"user_id": user_id, "problem_id": problem_id})).all()
    scores: dict[str, float] = {}
    for skill, attempts, accepted in rows:
        score = mastery_score(int(attempts), int(accepted))
        scores[skill] = score
        await db.execute(
            text("""
                INSERT INTO mastery (user_id, skill, score, attempts, accepted, updated_at)
                VALUES (:user_id, :skill, :score, :attempts, :accepted, now())
                ON CONFLICT (user_id, skill) DO UPDATE SET
                    score = EXCLUDED.score, attempts = EXCLUDED.attempts,
                    accepted = EXCLUDED.accepted, updated_at = now()
                """),
            {
                "user_id": user_id,
                "skill": skill,
                "score": score,
                "attempts": int(attempts),
                "accepted": int(accepted),
            },
        )
    return scores


async def note_evaluation_attempt(
    db: AsyncSession, submission_id: uuid.UUID, attempt: int, retry_reason: str | None
) -> None:
    """Record which evaluation attempt runs and why the last one failed, while the
    submission is still running (a finished one is never touched)."""
    values: dict[str, object] = {"evaluation_attempt": attempt, "updated_at": func.now()}
    if retry_reason is not None:
        values["retry_reason"] = retry_reason
    await db.execute(
        update(Submission)
        .where(Submission.id == submission_id, Submission.status.not_in(TERMINAL))
        .values(**values)
    )
