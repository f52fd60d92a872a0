"""Repository functions for review cards, review logs and schedules.

The ReviewScheduleWorkflow's activities are the only writers (upserts keyed by the
learner and problem, guarded by the workflow's ``seq``; log rows keyed by the review's
own id); the API only reads.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.reviews import ReviewProjection
from store.models import ReviewItem, ReviewLog, ReviewSchedule


async def save_projection(db: AsyncSession, data: ReviewProjection) -> None:
    """Upsert the changed cards, insert the new log rows (once), upsert the summary."""
    for card in data.cards:
        values: dict[str, Any] = {
            "user_id": data.user_id,
            "problem_id": card.problem_id,
            "track_slug": card.track_slug,
            "card": card.model_dump(mode="json"),
            "state": int(card.state),
            "stability": card.stability,
            "difficulty": card.difficulty,
            "due_at": card.due,
            "last_review_at": card.last_review,
            "last_rating": card.last_rating.value if card.last_rating else None,
            "reps": card.reps,
            "lapses": card.lapses,
            "status": "scheduled" if card.notified_due != card.due else "due",
            "seq": data.seq,
            "updated_at": func.now(),
        }
        stmt = insert(ReviewItem).values(id=uuid.uuid4(), **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[ReviewItem.user_id, ReviewItem.problem_id],
            set_={k: stmt.excluded[k] for k in values if k not in ("user_id", "problem_id")},
            where=ReviewItem.seq < stmt.excluded.seq,
        )
        await db.execute(stmt)
    for log in data.logs:
        row = log.model_dump()
        row["id"] = row.pop("review_id")
        row["rating"] = log.rating.value
        row["state_before"] = int(log.state_before)
        row["state_after"] = int(log.state_after)
        await db.execute(
            insert(ReviewLog)
            .values(user_id=data.user_id, **row)
            .on_conflict_do_nothing(index_elements=[ReviewLog.id])
        )
    summary: dict[str, Any] = {
        "desired_retention": data.desired_retention,
        "next_due_at": data.next_due_at,
        "card_count": data.card_count,
        "seq": data.seq,
        "updated_at": func.now(),
    }
    stmt2 = insert(ReviewSchedule).values(user_id=data.user_id, **summary)
    stmt2 = stmt2.on_conflict_do_update(
        index_elements=[ReviewSchedule.user_id],
        set_={k: stmt2.excluded[k] for k in summary},
        where=ReviewSchedule.seq < stmt2.excluded.seq,
    )
    await db.execute(stmt2)


async def mark_due(
    db: AsyncSession, user_id: str, batch_id: uuid.UUID, problem_ids: list[str]
) -> int:
    """Mark a due batch's cards (idempotent: the same batch marks the same rows)."""
    result = await db.execute(
        update(ReviewItem)
        .where(ReviewItem.user_id == user_id, ReviewItem.problem_id.in_(problem_ids))
        .values(
            status="due",
            notified_batch=batch_id,
            notified_at=func.coalesce(ReviewItem.notified_at, func.now()),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def get_owned(db: AsyncSession, user_id: str, problem_id: str) -> ReviewItem | None:
    return await db.scalar(
        select(ReviewItem).where(ReviewItem.user_id == user_id, ReviewItem.problem_id == problem_id)
    )


async def list_owned(
    db: AsyncSession,
    user_id: str,
    *,
    now: datetime,
    status: str,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[ReviewItem]:
    """Cards ordered by due time (most overdue first), keyset-paginated on (due_at, problem_id)."""
    query = select(ReviewItem).where(ReviewItem.user_id == user_id)
    if status == "due":
        query = query.where(ReviewItem.due_at <= now)
    elif status == "upcoming":
        query = query.where(ReviewItem.due_at > now)
    if after is not None:
        due, problem = after
        query = query.where(
            or_(
                ReviewItem.due_at > due,
                and_(ReviewItem.due_at == due, ReviewItem.problem_id > problem),
            )
        )
    query = query.order_by(ReviewItem.due_at, ReviewItem.problem_id).limit(limit)
    return list((await db.scalars(query)).all())


async def all_cards(db: AsyncSession, user_id: str) -> list[ReviewItem]:
    return list((await db.scalars(select(ReviewItem).where(ReviewItem.user_id == user_id))).all())


async def review_days(db: AsyncSession, user_id: str, since: datetime) -> list[datetime]:
    """The distinct UTC days with at least one review since ``since``, newest first."""
    day = func.date_trunc("day", func.timezone("UTC", ReviewLog.reviewed_at))
    rows = await db.execute(
        select(day)
        .where(ReviewLog.user_id == user_id, ReviewLog.reviewed_at >= since)
        .group_by(day)
        .order_by(day.desc())
    )
    return [r[0] for r in rows]


async def schedule_of(db: AsyncSession, user_id: str) -> ReviewSchedule | None:
    return await db.get(ReviewSchedule, user_id)


async def count_logs(db: AsyncSession, user_id: str, problem_id: str) -> int:
    return int(
        await db.scalar(
            select(func.count())
            .select_from(ReviewLog)
            .where(ReviewLog.user_id == user_id, ReviewLog.problem_id == problem_id)
        )
        or 0
    )


async def track_slug_of(db: AsyncSession, submission_id: uuid.UUID) -> str | None:
    """The slug of the track a submission was made in (through its session), if any."""
    from store.models import LearningSession, Submission, Track

    return await db.scalar(
        select(Track.slug)
        .join(LearningSession, LearningSession.track_id == Track.id)
        .join(Submission, Submission.session_id == LearningSession.id)
        .where(Submission.id == submission_id)
    )
