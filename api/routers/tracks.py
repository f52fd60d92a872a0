"""Tracks and their published curricula."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import PrincipalDep, SessionDep
from api.errors import NotFound, problem_responses
from api.pagination import decode_key_cursor, encode_key_cursor
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
        items_total=sum(1 for m in version.modules for i in m.items if i.required),
    )


@router.get(
    "",
    response_model=TrackList,
    summary="List published tracks",
    description=(
        "Each track's newest published version, ordered by `domain` then `slug`. Pages: "
        "pass the previous page's `next_cursor` as `cursor`; it is null on the last page."
    ),
    responses=problem_responses(401, 422, 429),
)
async def list_tracks(
    _user: PrincipalDep,
    db: SessionDep,
    domain: Annotated[Domain | None, Query(description="Only tracks of this domain.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> TrackList:
    after = decode_key_cursor(cursor, 2) if cursor else None
    versions = await repo.list_published(
        db,
        domain=domain.value if domain else None,
        limit=limit + 1,
        after=(after[0], after[1]) if after else None,
    )
    page, more = versions[:limit], len(versions) > limit
    last = page[-1].track if page else None
    return TrackList(
        items=[_summary(v) for v in page],
        next_cursor=encode_key_cursor(last.domain, last.slug) if more and last else None,
    )


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
