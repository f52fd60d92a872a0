"""Authoring tracks (admin role): create, edit the draft curriculum, publish."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from api.deps import AdminDep, CatalogDep, SessionDep, SettingsDep, TemporalDep
from api.errors import problem_responses
from api.services import authoring as service
from domain.authoring import AuthorTrack, AuthorTrackList, TrackPatch
from domain.curriculum import CurriculumSpec, TrackSpec
from domain.tracks import TrackDetail

router = APIRouter(prefix="/v1/tracks", tags=["authoring"])
# Lists for authors live apart from /v1/tracks/{slug}, which a slug like "drafts" owns.
listing = APIRouter(prefix="/v1/authoring", tags=["authoring"])

IfMatch = Annotated[
    str | None,
    Header(
        max_length=200,
        description="The draft's `ETag` as last read: the request applies only to that "
        "draft (412 `precondition-failed` if it has changed since).",
    ),
]
_ETAG_HEADER = {"ETag": {"description": "The draft's entity tag.", "schema": {"type": "string"}}}


def _etag(response: Response, out: AuthorTrack) -> AuthorTrack:
    if out.draft is not None:
        response.headers["ETag"] = out.draft.etag
    return out


SlugPath = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$")]

_INVALID = (
    "An invalid curriculum (unknown problem ids, cycles among prerequisites, empty or "
    "duplicate modules, a problem listed twice, a problem of another domain than the "
    "track's) is refused with one 422 `invalid-curriculum` listing every issue in `errors`."
)


@router.post(
    "",
    response_model=AuthorTrack,
    status_code=201,
    summary="Create a track and its first draft",
    description=_INVALID,
    responses=problem_responses(401, 403, 409, 422, 429, 503),
)
async def create_track(
    body: TrackSpec,
    response: Response,
    user: AdminDep,
    db: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> AuthorTrack:
    out = await service.create_track(db, temporal, settings, user, body)
    response.headers["Location"] = f"/v1/tracks/{out.slug}/draft"
    return _etag(response, out)


@router.get(
    "/{slug}/draft",
    response_model=AuthorTrack,
    summary="A track as its authors see it, with its draft",
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def get_draft(
    slug: SlugPath, response: Response, _user: AdminDep, db: SessionDep
) -> AuthorTrack:
    return _etag(response, await service.get_draft(db, slug))


@router.put(
    "/{slug}/draft",
    response_model=AuthorTrack,
    summary="Replace the draft curriculum (creating the draft if there is none)",
    description=(
        "The draft's `updated_at` and `ETag` move; its `version` is the number it will be "
        "published as. " + _INVALID
    ),
    responses={
        200: {"description": "The saved draft", "headers": _ETAG_HEADER},
        **problem_responses(401, 403, 404, 409, 412, 422, 429, 503),
    },
)
async def replace_draft(
    slug: SlugPath,
    body: CurriculumSpec,
    response: Response,
    user: AdminDep,
    db: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    if_match: IfMatch = None,
) -> AuthorTrack:
    out = await service.replace_draft(db, temporal, settings, user, slug, body, if_match=if_match)
    return _etag(response, out)


@router.patch(
    "/{slug}",
    response_model=AuthorTrack,
    summary="Change a track's title or description",
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def patch_track(
    slug: SlugPath, body: TrackPatch, _user: AdminDep, db: SessionDep, catalog: CatalogDep
) -> AuthorTrack:
    catalog.invalidate_after_commit(db)  # the author reads the new title at once
    return await service.patch_track(db, slug, body)


@router.post(
    "/{slug}/publish",
    response_model=TrackDetail,
    summary="Publish the draft as the newest version",
    description=(
        "Problem facts are copied from Problem Bank into the items. Running sessions keep "
        "the version they started on; new sessions get this one. Give the draft's `ETag` "
        "as `If-Match` to publish exactly the draft you reviewed (412 when it changed). " + _INVALID
    ),
    responses=problem_responses(401, 403, 404, 409, 412, 422, 429, 503),
)
async def publish_track(
    slug: SlugPath,
    user: AdminDep,
    db: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    catalog: CatalogDep,
    if_match: IfMatch = None,
) -> TrackDetail:
    # The activity has committed the version when this returns; the listing in this process
    # shows it at once, other replicas within CO_CATALOG_RECHECK_SECONDS.
    catalog.invalidate_after_commit(db)
    return await service.publish(db, temporal, settings, user, slug, if_match=if_match)


@listing.get(
    "/tracks",
    response_model=AuthorTrackList,
    summary="(admin) Every track, published or not, with its draft if it has one",
    description=(
        "Ordered by `slug`. `has_draft=true` lists only tracks with a draft. Pages: pass "
        "the previous page's `next_cursor` as `cursor`; it is null on the last page."
    ),
    responses=problem_responses(401, 403, 422, 429),
)
async def list_author_tracks(
    _user: AdminDep,
    db: SessionDep,
    has_draft: Annotated[bool | None, Query(description="Only tracks with(out) a draft.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AuthorTrackList:
    return await service.list_for_authors(db, has_draft=has_draft, limit=limit, cursor=cursor)
