"""Tracks and their published curricula.

Both reads are answered by ``api.services.tracks.TrackCatalog`` (finished answers kept in
memory until something is published); the token and the rate limit are checked before, on
every request, by the edge middleware and ``PrincipalDep``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import CatalogDep, PrincipalDep
from api.errors import NotFound, problem_responses
from api.pagination import decode_key_cursor
from api.services.tracks import Body
from domain.tracks import TrackDetail, TrackList
from domain.upstream import Domain

router = APIRouter(prefix="/v1/tracks", tags=["tracks"])

SlugPath = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$")]

_CONDITIONAL = (
    "Answers carry an `ETag`: send it back as `If-None-Match` to get a `304` when the "
    "answer has not changed."
)
_NOT_MODIFIED = {"description": "Not modified: the answer is the one `If-None-Match` names"}


@router.get(
    "",
    response_model=TrackList,
    summary="List published tracks",
    description=(
        "Each track's newest published version, ordered by `domain` then `slug`. Pages: "
        "pass the previous page's `next_cursor` as `cursor`; it is null on the last page. "
        + _CONDITIONAL
    ),
    responses={304: _NOT_MODIFIED, **problem_responses(401, 422, 429)},
)
async def list_tracks(
    request: Request,
    _user: PrincipalDep,
    catalog: CatalogDep,
    domain: Annotated[Domain | None, Query(description="Only tracks of this domain.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    after = decode_key_cursor(cursor, 2) if cursor else None
    body = await catalog.track_list(domain, limit, (after[0], after[1]) if after else None)
    return conditional_json(request, body)


def conditional_json(request: Request, body: Body) -> Response:
    """``body`` with its strong ``ETag``; ``304`` when the client already has it.

    ``private, no-cache``: the answer needs a token, and a publication changes it, so a
    client keeps it but revalidates each time (a ``304`` costs no body)."""
    headers = {"ETag": body.etag, "Cache-Control": "private, no-cache"}
    wanted = request.headers.get("if-none-match")
    if wanted and (
        wanted.strip() == "*"
        or body.etag in {t.strip().removeprefix("W/") for t in wanted.split(",")}
    ):
        return Response(status_code=304, headers=headers)
    return Response(body.raw, media_type="application/json", headers=headers)


@router.get(
    "/{slug}",
    response_model=TrackDetail,
    summary="A published track with its curriculum, in order",
    description="The track's newest published version. " + _CONDITIONAL,
    responses={304: _NOT_MODIFIED, **problem_responses(401, 404, 422, 429)},
)
async def get_track(
    request: Request, slug: SlugPath, _user: PrincipalDep, catalog: CatalogDep
) -> Response:
    body = await catalog.track_detail(slug)
    if body is None:
        raise NotFound(f"no published track '{slug}'")
    return conditional_json(request, body)
