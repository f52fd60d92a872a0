"""Repository functions for tracks and their published curricula."""

from __future__ import annotations

from sqlalchemy import Select, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import aggregate_order_by
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


async def list_published_summaries(
    db: AsyncSession,
    *,
    domain: str | None = None,
    limit: int | None = None,
    after: tuple[str, str] | None = None,
) -> list[dict[str, object]]:
    """The newest published version of each track, by (domain, slug) after a keyset, as
    plain rows with the counts a summary shows, in one query: no ORM objects (hydrating
    every module and item of every track was most of the cost of a track list, for counts
    that never change once a version is published)."""
    newest = _latest_published().subquery()
    items = (
        select(
            Module.track_version_id.label("tv"),
            func.count(func.distinct(Module.id)).label("module_count"),
            func.count(CurriculumItem.id).label("problem_count"),
            func.count(CurriculumItem.id).filter(CurriculumItem.required).label("items_total"),
        )
        .outerjoin(CurriculumItem, CurriculumItem.module_id == Module.id)
        .group_by(Module.track_version_id)
        .subquery()
    )
    stmt = (
        select(
            Track.id,
            Track.slug,
            Track.title,
            Track.domain,
            Track.description,
            newest.c.version,
            newest.c.published_at,
            func.coalesce(items.c.module_count, 0).label("module_count"),
            func.coalesce(items.c.problem_count, 0).label("problem_count"),
            func.coalesce(items.c.items_total, 0).label("items_total"),
        )
        .join(newest, newest.c.track_id == Track.id)
        .outerjoin(items, items.c.tv == newest.c.id)
        .order_by(Track.domain, Track.slug)
    )
    if domain is not None:
        stmt = stmt.where(Track.domain == domain)
    if after is not None:
        stmt = stmt.where(tuple_(Track.domain, Track.slug) > tuple_(*after))
    if limit is not None:
        stmt = stmt.limit(limit)
    return [dict(row._mapping) for row in (await db.execute(stmt)).all()]


# What a published track looks like from outside, as one fingerprint: the ids of the
# published versions (their curricula never change) and the mutable fields of their tracks
# (PATCH changes title and description). Any publication, archive, rename or deletion, by
# any writer (the publish activity, the demo loader, SQL by hand), changes it.
_FINGERPRINT = select(
    func.md5(
        func.coalesce(
            func.string_agg(
                func.concat_ws(
                    literal("\x1f"),
                    TrackVersion.id,
                    TrackVersion.version,
                    Track.slug,
                    Track.domain,
                    Track.title,
                    Track.description,
                ),
                aggregate_order_by(literal("\x1e"), TrackVersion.id),
            ),
            "",
        )
    )
).where(TrackVersion.status == "published", Track.id == TrackVersion.track_id)


async def published_fingerprint(db: AsyncSession) -> str:
    """A digest that changes whenever anything ``GET /v1/tracks[/{slug}]`` shows changes.

    One aggregate over the published versions (a few hundred rows: cheap next to the
    cache it validates, and read at most once per ``CO_CATALOG_RECHECK_SECONDS``)."""
    return str(await db.scalar(_FINGERPRINT))
