"""Writing curricula: tracks, versions, modules and items."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.curriculum import CurriculumSpec, TrackSpec
from domain.upstream import ProblemPublic
from store.models import CurriculumItem, Module, Track, TrackVersion


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


def build_modules(spec: CurriculumSpec, problems: Mapping[str, ProblemPublic]) -> list[Module]:
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
    problems: Mapping[str, ProblemPublic],
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
