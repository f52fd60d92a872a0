"""Reviews: the learner's cards (read from PostgreSQL), grades and settings (sent to the
learner's ReviewScheduleWorkflow, which owns every review row).

One owner per row: ``review_items``, ``review_logs`` and ``review_schedules`` are written
only by the workflow's activities. A grade is the workflow's ``grade`` update, which
answers once the new state is projected, so a read that follows sees it.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import SearchAttributePair
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal
from api.errors import NotFound, ServiceUnavailable, Unprocessable
from api.idempotency import check_idempotency_key
from api.problem_types import DependencyUnavailable, ReviewNotDue
from api.temporal import start_workflow as temporal_start
from domain import reviews
from domain.contracts import (
    CO_USER_ID,
    FailureType,
    SignalName,
    UpdateName,
    WorkflowName,
    reviews_workflow_id,
)
from domain.reviews import (
    Card,
    CardState,
    GradeBody,
    GradeRequest,
    ReviewInput,
    ReviewItemOut,
    ReviewPage,
    ReviewSettings,
    ReviewSettingsOut,
    ReviewStats,
    ReviewStatus,
)
from domain.settings import Settings
from store import reviews as repo
from store.models import ReviewItem

UPDATE_TIMEOUT_SECONDS = 20.0


def encode_cursor(due_at: datetime, problem_id: str) -> str:
    raw = f"{due_at.isoformat()}|{problem_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (due_at, problem_id) a cursor stands for, or 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        due, sep, problem = raw.partition("|")
        if not sep or not problem:
            raise ValueError(raw)
        return datetime.fromisoformat(due), problem
    except (ValueError, UnicodeDecodeError):
        raise Unprocessable("cursor is not valid; use the next_cursor of a previous page") from None


def _out(row: ReviewItem, now: datetime) -> ReviewItemOut:
    return ReviewItemOut(
        problem_id=row.problem_id,
        track_slug=row.track_slug,
        due_at=row.due_at,
        overdue_seconds=max(0, int((now - row.due_at).total_seconds())),
        state=CardState(row.state).name,
        stability=row.stability,
        difficulty=row.difficulty,
        last_rating=reviews.Rating(row.last_rating) if row.last_rating else None,
        last_review_at=row.last_review_at,
        reps=row.reps,
        lapses=row.lapses,
        links={"grade": f"/v1/reviews/{row.problem_id}/grade"},
    )


async def list_(
    db: AsyncSession,
    principal: Principal,
    *,
    status: ReviewStatus,
    limit: int,
    cursor: str | None,
) -> ReviewPage:
    """Due first and most overdue first: ordering by due time does both."""
    now = datetime.now(UTC)
    after = decode_cursor(cursor) if cursor else None
    rows = await repo.list_owned(
        db, principal.user_id, now=now, status=status.value, limit=limit + 1, after=after
    )
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(last.due_at, last.problem_id)
    return ReviewPage(items=[_out(r, now) for r in page], next_cursor=next_cursor)


async def grade(
    db: AsyncSession,
    temporal: Client,
    principal: Principal,
    problem_id: str,
    body: GradeBody,
    *,
    idempotency_key: str | None,
) -> ReviewItemOut:
    key = check_idempotency_key(idempotency_key)
    if await repo.get_owned(db, principal.user_id, problem_id) is None:
        raise NotFound(f"you have no review card for problem {problem_id}")
    review_id = reviews.review_id_for(principal.user_id, key) if key is not None else uuid.uuid4()
    request = GradeRequest(
        review_id=review_id, problem_id=problem_id, rating=body.rating, force=body.force
    )
    handle = temporal.get_workflow_handle(reviews_workflow_id(principal.user_id))
    try:
        await asyncio.wait_for(
            # The update id makes Temporal itself drop a retried grade within a run; the
            # workflow also remembers recent review ids across runs.
            handle.execute_update(
                UpdateName.GRADE, request, id=f"grade-{review_id}", result_type=reviews.CardView
            ),
            UPDATE_TIMEOUT_SECONDS,
        )
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # What the SDK raises when ``wait_for`` cancels it (see sessions._update).
        raise ServiceUnavailable(
            "the review schedule did not answer in time; retry with the same Idempotency-Key"
        ) from None
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == FailureType.REVIEW_NOT_DUE:
            raise ReviewNotDue(cause.message) from None
        if isinstance(cause, ApplicationError) and cause.type == FailureType.REVIEW_CARD_NOT_FOUND:
            raise NotFound(f"you have no review card for problem {problem_id}") from None
        raise
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"you have no review card for problem {problem_id}") from err
        raise DependencyUnavailable("temporal: the review schedule cannot be reached") from err
    row = await repo.get_owned(db, principal.user_id, problem_id)
    assert row is not None
    await db.refresh(row)
    return _out(row, datetime.now(UTC))


def _card_of(row: ReviewItem) -> Card:
    return Card.model_validate(row.card)


async def stats(db: AsyncSession, principal: Principal) -> ReviewStats:
    now = datetime.now(UTC)
    rows = await repo.all_cards(db, principal.user_id)
    schedule = await repo.schedule_of(db, principal.user_id)
    retention = schedule.desired_retention if schedule else reviews.DEFAULT_RETENTION
    end_of_today = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    reviewed = [_card_of(r) for r in rows if r.last_review_at is not None]
    estimate = (
        round(sum(reviews.retrievability(c, now, retention) for c in reviewed) / len(reviewed), 4)
        if reviewed
        else None
    )
    days = await repo.review_days(db, principal.user_id, now - timedelta(days=400))
    streak = 0
    expected = end_of_today - timedelta(days=1)
    for day in days:
        day = day.replace(tzinfo=UTC) if day.tzinfo is None else day
        if day == expected or (streak == 0 and day == expected - timedelta(days=1)):
            # A streak still counts today until the day is over.
            streak += 1
            expected = day - timedelta(days=1)
        else:
            break
    return ReviewStats(
        due_now=sum(1 for r in rows if r.due_at <= now),
        due_today=sum(1 for r in rows if r.due_at < end_of_today),
        due_this_week=sum(1 for r in rows if r.due_at <= now + timedelta(days=7)),
        total_cards=len(rows),
        retention_estimate=estimate,
        desired_retention=retention,
        streak_days=streak,
    )


async def put_settings(
    temporal: Client, settings: Settings, principal: Principal, body: ReviewSettings
) -> ReviewSettingsOut:
    """Signal-with-start: a learner may choose a retention before their first card."""
    await temporal_start(
        temporal,
        WorkflowName.REVIEW_SCHEDULE,
        ReviewInput(user_id=principal.user_id, settings=body),
        id=reviews_workflow_id(principal.user_id),
        task_queue=settings.temporal_task_queue,
        attributes=[SearchAttributePair(CO_USER_ID, principal.user_id)],
        unavailable="the review schedule cannot be reached",
        start_signal=SignalName.REVIEW_SETTINGS,
        start_signal_args=[body],
    )
    return ReviewSettingsOut(desired_retention=body.desired_retention)
