"""Writing curricula: tracks, versions, modules and items."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, selectinload

from domain.curriculum import CurriculumSpec, TrackSpec
from domain.upstream import EvalKind
from store.models import CurriculumItem, Module, Track, TrackVersion


class ProblemFactsLike(Protocol):
    """What an item copies from a problem (``ProblemPublic`` or ``ProblemFacts``)."""

    @property
    def title(self) -> str: ...

    @property
    def kind(self) -> EvalKind: ...

    @property
    def skills(self) -> list[str]: ...

    @property
    def difficulty(self) -> int: ...


def curriculum_of(version: TrackVersion) -> CurriculumSpec:
    """The spec a stored version was built from (modules and items loaded)."""
    return CurriculumSpec.model_validate(
        {
            "modules": [
                {
                    "slug": m.slug,
                    "title": m.title,
                    "prerequisites": list(m.prerequisites),
                    "items": [
                        {
                            "problem_id": i.problem_id,
                            "mastery_threshold": i.mastery_threshold,
                            "required": i.required,
                            "skippable": i.skippable,
                        }
                        for i in m.items
                    ],
                }
                for m in version.modules
            ]
        }
    )


def build_modules(spec: CurriculumSpec, problems: Mapping[str, ProblemFactsLike]) -> list[Module]:
    """Module rows for a spec, with each item's facts copied from Problem Bank so the
    request path never has to call it."""
    modules = []
    for position, m in enumerate(spec.modules):
        items = []
        for item_pos, item in enumerate(m.items):
            problem = problems[item.problem_id]
            items.append(
                CurriculumItem(
                    position=item_pos,
                    problem_id=item.problem_id,
                    title=problem.title,
                    kind=problem.kind.value,
                    skills=list(problem.skills),
                    difficulty=problem.difficulty,
                    mastery_threshold=item.mastery_threshold,
                    required=item.required,
                    skippable=item.skippable,
                )
            )
        modules.append(
            Module(
                slug=m.slug,
                title=m.title,
                position=position,
                prerequisites=list(m.prerequisites),
                items=items,
            )
        )
    return modules


async def next_version_number(db: AsyncSession, track_id: Any) -> int:
    current = await db.scalar(
        select(func.max(TrackVersion.version)).where(TrackVersion.track_id == track_id)
    )
    return int(current or 0) + 1


async def insert_track(db: AsyncSession, spec: TrackSpec, *, created_by: str) -> Track:
    """A new track; ``IntegrityError`` if the slug is taken (also by a concurrent create)."""
    track = Track(
        slug=spec.slug,
        title=spec.title,
        domain=spec.domain.value,
        description=spec.description,
        created_by=created_by,
    )
    db.add(track)
    await db.flush()
    return track


async def upsert_track(db: AsyncSession, spec: TrackSpec, *, created_by: str = "system") -> Track:
    track = await db.scalar(select(Track).where(Track.slug == spec.slug))
    if track is None:
        track = Track(
            slug=spec.slug,
            title=spec.title,
            domain=spec.domain.value,
            description=spec.description,
            created_by=created_by,
        )
        db.add(track)
        await db.flush()
    else:
        track.title, track.description = spec.title, spec.description
    return track


async def publish_new_version(
    db: AsyncSession,
    track: Track,
    spec: CurriculumSpec,
    problems: Mapping[str, ProblemFactsLike],
) -> TrackVersion:
    version = TrackVersion(
        track_id=track.id,
        version=await next_version_number(db, track.id),
        status="published",
        published_at=datetime.now(UTC),
        modules=build_modules(spec, problems),
    )
    db.add(version)
    await db.flush()
    return version


# --------------------------------------------------------------------------- drafts


async def get_track(db: AsyncSession, slug: str, *, for_update: bool = False) -> Track | None:
    stmt = select(Track).where(Track.slug == slug)
    if for_update:
        stmt = stmt.with_for_update()
    return await db.scalar(stmt)


async def get_draft(db: AsyncSession, track_id: uuid.UUID) -> TrackVersion | None:
    """The track's draft with its modules and items, if it has one."""
    return await db.scalar(
        select(TrackVersion)
        .where(TrackVersion.track_id == track_id, TrackVersion.status == "draft")
        .options(selectinload(TrackVersion.modules).selectinload(Module.items))
        .execution_options(populate_existing=True)
    )


async def newest_published_number(db: AsyncSession, track_id: uuid.UUID) -> int | None:
    return await db.scalar(
        select(func.max(TrackVersion.version)).where(
            TrackVersion.track_id == track_id, TrackVersion.status == "published"
        )
    )


async def _replace_modules(
    db: AsyncSession,
    version: TrackVersion,
    spec: CurriculumSpec,
    problems: Mapping[str, ProblemFactsLike],
) -> None:
    # Explicit delete first: the unit of work would insert the new rows before deleting
    # the orphans and trip the (version, position) unique keys.
    await db.execute(delete(Module).where(Module.track_version_id == version.id))
    for module in build_modules(spec, problems):
        module.track_version_id = version.id
        db.add(module)
    await db.flush()


async def save_draft(
    db: AsyncSession,
    track: Track,
    spec: CurriculumSpec,
    problems: Mapping[str, ProblemFactsLike],
) -> TrackVersion:
    """Replace the track's draft curriculum, creating the draft when there is none.

    The draft's ``updated_at`` moves (its ETag with it), and its number moves past a
    version published meanwhile (by the demo loader), so it always says what it will
    be published as."""
    draft = await get_draft(db, track.id)
    now = datetime.now(UTC)
    if draft is None:
        draft = TrackVersion(
            track_id=track.id,
            version=await next_version_number(db, track.id),
            status="draft",
            created_at=now,
            updated_at=now,
        )
        db.add(draft)
        await db.flush()
    else:
        draft.version = max(draft.version, (await newest_published_number(db, track.id) or 0) + 1)
        draft.updated_at = now
    await _replace_modules(db, draft, spec, problems)
    reloaded = await get_draft(db, track.id)
    assert reloaded is not None
    return reloaded


def draft_etag(draft: TrackVersion) -> str:
    """A strong entity tag of the draft's current state (it changes with every save)."""
    return f'"{draft.id.hex}.{int(draft.updated_at.timestamp() * 1_000_000)}"'


async def list_for_authors(
    db: AsyncSession, *, has_draft: bool | None, limit: int, after: str | None
) -> list[tuple[Track, int | None, TrackVersion | None]]:
    """Every track by slug, with its newest published number and its draft."""
    published = (
        select(func.max(TrackVersion.version))
        .where(TrackVersion.track_id == Track.id, TrackVersion.status == "published")
        .correlate(Track)
        .scalar_subquery()
    )
    draft = aliased(TrackVersion)
    stmt = (
        select(Track, published, draft)
        .outerjoin(draft, (draft.track_id == Track.id) & (draft.status == "draft"))
        .order_by(Track.slug)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(Track.slug > after)
    if has_draft is True:
        stmt = stmt.where(draft.id.is_not(None))
    elif has_draft is False:
        stmt = stmt.where(draft.id.is_(None))
    return [(row[0], row[1], row[2]) for row in (await db.execute(stmt)).all()]


class DraftChanged(Exception):
    """The draft is gone or no longer equals the curriculum that was checked."""


async def publish_draft(
    db: AsyncSession,
    version_id: uuid.UUID,
    spec: CurriculumSpec,
    problems: Mapping[str, ProblemFactsLike],
) -> TrackVersion:
    """Publish the draft with fresh problem facts. Idempotent: a version already
    published is returned as it is."""
    version = await db.scalar(
        select(TrackVersion)
        .where(TrackVersion.id == version_id)
        .options(selectinload(TrackVersion.modules).selectinload(Module.items))
        .with_for_update()
    )
    if version is None:
        raise DraftChanged(f"version {version_id} does not exist")
    if version.status == "published":
        return version
    if version.status != "draft" or curriculum_of(version) != spec:
        raise DraftChanged("the draft was edited while it was being published")
    await _replace_modules(db, version, spec, problems)
    # A version published by other means meanwhile (the demo loader) keeps its number.
    version.version = max(
        version.version, (await newest_published_number(db, version.track_id) or 0) + 1
    )
    version.status = "published"
    version.published_at = datetime.now(UTC)
    await db.flush()
    return version
