"""Tracks and their published curricula."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

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
        "pass the previous page's `next_cursor` as `cursor`; it is null on the last page. "
        "Answers carry an `ETag`: send it back as `If-None-Match` to get a `304` when the "
        "list has not changed."
    ),
    responses={
        304: {"description": "Not modified: the list is the one the `If-None-Match` names"},
        **problem_responses(401, 422, 429),
    },
)
async def list_tracks(
    request: Request,
    _user: PrincipalDep,
    db: SessionDep,
    domain: Annotated[Domain | None, Query(description="Only tracks of this domain.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    after = decode_key_cursor(cursor, 2) if cursor else None
    rows = await repo.list_published_summaries(
        db,
        domain=domain.value if domain else None,
        limit=limit + 1,
        after=(after[0], after[1]) if after else None,
    )
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if page else None
    body = TrackList(
        items=[TrackSummary.model_validate(r) for r in page],
        next_cursor=(
            encode_key_cursor(str(last["domain"]), str(last["slug"])) if more and last else None
        ),
    ).model_dump_json()
    return conditional_json(request, body)


def conditional_json(request: Request, body: str) -> Response:
    """``body`` with a strong ``ETag`` of its bytes; ``304`` when the client already has it.

    ``private, no-cache``: the answer needs a token, and a publication changes it, so a
    client keeps it but revalidates each time (a ``304`` costs no body)."""
    raw = body.encode()
    etag = '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    wanted = request.headers.get("if-none-match", "")
    if wanted.strip() == "*" or etag in {t.strip().removeprefix("W/") for t in wanted.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(raw, media_type="application/json", headers=headers)


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
