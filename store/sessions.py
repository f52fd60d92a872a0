"""Repository functions for learning sessions and their projection."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from domain import progression
from domain.progression import ItemPlan, ModulePlan, SessionPlan, SessionStatus
from domain.sessions import SessionDocument, SessionProjection
from store.models import LearningSession, Module, Track, TrackVersion

_ACTIVE = text("status = 'active'")


def plan_of(version: TrackVersion) -> SessionPlan:
    """The plan a session of this version follows (modules and items loaded)."""
    return SessionPlan(
        modules=[
            ModulePlan(
                slug=m.slug,
                prerequisites=list(m.prerequisites),
                items=[
                    ItemPlan(
                        problem_id=i.problem_id,
                        mastery_threshold=i.mastery_threshold,
                        required=i.required,
                        skippable=i.skippable,
                        skills=list(i.skills),
                    )
                    for i in m.items
                ],
            )
            for m in version.modules
        ]
    )


async def load_version(db: AsyncSession, version_id: uuid.UUID) -> TrackVersion | None:
    return await db.scalar(
        select(TrackVersion)
        .where(TrackVersion.id == version_id)
        .options(
            selectinload(TrackVersion.track),
            selectinload(TrackVersion.modules).selectinload(Module.items),
        )
    )


async def get_owned(
    db: AsyncSession, session_id: uuid.UUID, user_id: str
) -> LearningSession | None:
    """The session if it belongs to the user; another user's session does not exist."""
    return await db.scalar(
        select(LearningSession).where(
            LearningSession.id == session_id, LearningSession.user_id == user_id
        )
    )


async def active_for(db: AsyncSession, user_id: str, track_id: uuid.UUID) -> LearningSession | None:
    return await db.scalar(
        select(LearningSession).where(
            LearningSession.user_id == user_id,
            LearningSession.track_id == track_id,
            LearningSession.status == SessionStatus.active.value,
        )
    )


async def insert_active(db: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert an active session unless the user already has one on the track (the
    partial unique index decides, also between concurrent requests)."""
    stmt = (
        insert(LearningSession)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["user_id", "track_id"], index_where=_ACTIVE)
        .returning(LearningSession.id)
    )
    return (await db.execute(stmt)).first() is not None


async def list_owned(
    db: AsyncSession,
    user_id: str,
    *,
    status: str | None,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[tuple[LearningSession, Track, int]]:
    """The user's sessions, newest first (started_at, then id), keyset-paginated, with
    their track and version number."""
    stmt = (
        select(LearningSession, Track, TrackVersion.version)
        .join(Track, Track.id == LearningSession.track_id)
        .join(TrackVersion, TrackVersion.id == LearningSession.track_version_id)
        .where(LearningSession.user_id == user_id)
        .order_by(LearningSession.created_at.desc(), LearningSession.id.desc())
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(LearningSession.status == status)
    if before is not None:
        created, sid = before
        stmt = stmt.where(
            or_(
                LearningSession.created_at < created,
                and_(LearningSession.created_at == created, LearningSession.id < sid),
            )
        )
    return [(row[0], row[1], row[2]) for row in (await db.execute(stmt)).all()]


def document_of(row: LearningSession, plan: SessionPlan) -> SessionDocument:
    """The session's state as last projected by its workflow; before the first
    projection arrives, the state the workflow starts from (the same pure function of
    the plan and the start time), so a read never waits for the workflow."""
    if row.state is not None:
        return SessionDocument.model_validate(row.state)
    progress = progression.start(plan, row.created_at)
    return SessionDocument(progress=progress, summary=progression.summary(plan, progress))


async def write_projection(db: AsyncSession, data: SessionProjection) -> bool:
    """Write a session's state columns unless a newer state is stored (``state_seq``),
    so a late or retried write never overwrites a newer one. Returns whether it was
    written. Only SessionWorkflow calls this: the row itself (identity and the active
    claim) is the API's, inserted before the workflow started, so this never inserts."""
    progress = data.document.progress
    stmt = (
        update(LearningSession)
        .where(
            LearningSession.id == data.session_id,
            LearningSession.state_seq < progress.seq,
        )
        .values(
            status=progress.status.value,
            current_problem_id=progress.position.problem_id if progress.position else None,
            state=data.document.model_dump(mode="json"),
            state_seq=progress.seq,
            ended_at=progress.ended_at,
            updated_at=func.now(),
        )
        .returning(LearningSession.id)
    )
    return (await db.execute(stmt)).first() is not None


async def delete_unstarted(db: AsyncSession, session_id: uuid.UUID) -> None:
    """Take back a session whose workflow could not be started (never projected: the
    API inserts ``state_seq`` -1, every projection writes 0 or more)."""
    await db.execute(
        delete(LearningSession).where(
            LearningSession.id == session_id, LearningSession.state_seq < 0
        )
    )
