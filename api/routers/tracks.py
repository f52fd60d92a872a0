"""Tracks and their published curricula."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import PrincipalDep, SessionDep
from api.errors import NotFound, problem_responses
from domain.tracks import ModuleOut, TrackDetail, TrackList, TrackSummary
from domain.upstream import Domain
from store import tracks as repo
from store.models import TrackVersion

router = APIRouter(prefix="/v1/tracks", tags=["tracks"])

SlugPath = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$")]


def _summary(version: TrackVersion) -> TrackSummary:
    track = version.track
    return TrackSummary(
        id=track.id,
        slug=track.slug,
        title=track.title,
        domain=Domain(track.domain),
        description=track.description,
        version=version.version,
        published_at=version.published_at,
        module_count=len(version.modules),
        problem_count=sum(len(m.items) for m in version.modules),
    )


@router.get(
    "",
    response_model=TrackList,
    summary="List published tracks",
    responses=problem_responses(401, 422, 429),
)
async def list_tracks(
    _user: PrincipalDep,
    db: SessionDep,
    domain: Annotated[Domain | None, Query(description="Only tracks of this domain.")] = None,
) -> TrackList:
    versions = await repo.list_published(db, domain=domain.value if domain else None)
    return TrackList(items=[_summary(v) for v in versions])


@router.get(
    "/{slug}",
    response_model=TrackDetail,
    summary="A published track with its curriculum, in order",
    responses=problem_responses(401, 404, 422, 429),
)
async def get_track(slug: SlugPath, _user: PrincipalDep, db: SessionDep) -> TrackDetail:
    version = await repo.get_published(db, slug)
    if version is None:
        raise NotFound(f"no published track '{slug}'")
    return TrackDetail(
        **_summary(version).model_dump(),
        modules=[ModuleOut.model_validate(m) for m in version.modules],
    )
