"""Problem snapshots: the public part of each problem of a published track version."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.problems import snapshot_of
from domain.upstream import ProblemPublic
from store.models import ProblemSnapshot, Track, TrackVersion


async def write_snapshots(
    db: AsyncSession, version_id: uuid.UUID, problems: Iterable[ProblemPublic]
) -> None:
    """Snapshot the problems of a version; a retried publication writes nothing twice
    (a published version is immutable, so the first snapshot stays)."""
    rows = [
        {"track_version_id": version_id, "problem_id": p.id, "problem": snapshot_of(p)}
        for p in problems
    ]
    if rows:
        await db.execute(insert(ProblemSnapshot).values(rows).on_conflict_do_nothing())


async def snapshot_in(
    db: AsyncSession, version_id: uuid.UUID, problem_id: str
) -> tuple[dict[str, Any], TrackVersion, str] | None:
    """The problem as snapshotted for one version, with the version and its track slug."""
    row = (
        await db.execute(
            select(ProblemSnapshot.problem, TrackVersion, Track.slug)
            .join(TrackVersion, TrackVersion.id == ProblemSnapshot.track_version_id)
            .join(Track, Track.id == TrackVersion.track_id)
            .where(
                ProblemSnapshot.track_version_id == version_id,
                ProblemSnapshot.problem_id == problem_id,
            )
        )
    ).first()
    return (row[0], row[1], row[2]) if row is not None else None


async def newest_snapshot(
    db: AsyncSession, problem_id: str
) -> tuple[dict[str, Any], TrackVersion, str] | None:
    """Outside a session: the problem as the most recently published version that
    contains it snapshotted it (ties broken by version number, then track slug)."""
    row = (
        await db.execute(
            select(ProblemSnapshot.problem, TrackVersion, Track.slug)
            .join(TrackVersion, TrackVersion.id == ProblemSnapshot.track_version_id)
            .join(Track, Track.id == TrackVersion.track_id)
            .where(
                ProblemSnapshot.problem_id == problem_id,
                TrackVersion.status == "published",
            )
            .order_by(TrackVersion.published_at.desc(), TrackVersion.version.desc(), Track.slug)
            .limit(1)
        )
    ).first()
    return (row[0], row[1], row[2]) if row is not None else None
