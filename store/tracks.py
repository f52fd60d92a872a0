"""Repository functions for tracks and their published curricula."""

from __future__ import annotations

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from store.models import CurriculumItem, Module, Track, TrackVersion


def _latest_published() -> Select[TrackVersion]:
    """Each track's newest published version."""
    newest = (
        select(TrackVersion.track_id, func.max(TrackVersion.version).label("version"))
        .where(TrackVersion.status == "published")
        .group_by(TrackVersion.track_id)
        .subquery()
    )
    return select(TrackVersion).join(
        newest,
        (TrackVersion.track_id == newest.c.track_id) & (TrackVersion.version == newest.c.version),
    )


async def list_published(
    db: AsyncSession,
    *,
    domain: str | None = None,
    limit: int | None = None,
    after: tuple[str, str] | None = None,
) -> list[TrackVersion]:
    """Newest published version of each track, by (domain, slug), after a keyset."""
    stmt = (
        _latest_published()
        .join(Track, Track.id == TrackVersion.track_id)
        .options(
            selectinload(TrackVersion.track),
            selectinload(TrackVersion.modules).selectinload(Module.items),
        )
        .order_by(Track.domain, Track.slug)
    )
    if domain is not None:
        stmt = stmt.where(Track.domain == domain)
    if after is not None:
        stmt = stmt.where(tuple_(Track.domain, Track.slug) > tuple_(*after))
    if limit is not None:
        stmt = stmt.limit(limit)
    return list((await db.scalars(stmt)).all())


async def get_published(db: AsyncSession, slug: str) -> TrackVersion | None:
    stmt = (
        _latest_published()
        .join(Track, Track.id == TrackVersion.track_id)
        .where(Track.slug == slug)
        .options(
            selectinload(TrackVersion.track),
            selectinload(TrackVersion.modules).selectinload(Module.items),
        )
    )
    return (await db.scalars(stmt)).first()


async def published_item(db: AsyncSession, problem_id: str) -> CurriculumItem | None:
    """A curriculum item of any published version that uses this problem."""
    stmt = (
        select(CurriculumItem)
        .join(Module, Module.id == CurriculumItem.module_id)
        .join(TrackVersion, TrackVersion.id == Module.track_version_id)
        .where(CurriculumItem.problem_id == problem_id, TrackVersion.status == "published")
        .order_by(TrackVersion.published_at.desc())
        .limit(1)
    )
    return (await db.scalars(stmt)).first()
