"""Authoring tracks (admin role): create, edit the draft curriculum, publish."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import AdminDep, SessionDep, SettingsDep, TemporalDep
from api.errors import problem_responses
from api.services import authoring as service
from domain.authoring import AuthorTrack, TrackPatch
from domain.curriculum import CurriculumSpec, TrackSpec
from domain.tracks import TrackDetail

router = APIRouter(prefix="/v1/tracks", tags=["authoring"])

SlugPath = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$")]

_INVALID = (
    "An invalid curriculum (unknown problem ids, cycles among prerequisites, empty or "
    "duplicate modules, a problem listed twice) is refused with 422 listing every issue "
    "in `errors`."
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
    return out


@router.get(
    "/{slug}/draft",
    response_model=AuthorTrack,
    summary="A track as its authors see it, with its draft",
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def get_draft(slug: SlugPath, _user: AdminDep, db: SessionDep) -> AuthorTrack:
    return await service.get_draft(db, slug)


@router.put(
    "/{slug}/draft",
    response_model=AuthorTrack,
    summary="Replace the draft curriculum (creating the draft if there is none)",
    description=_INVALID,
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
)
async def replace_draft(
    slug: SlugPath,
    body: CurriculumSpec,
    user: AdminDep,
    db: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> AuthorTrack:
    return await service.replace_draft(db, temporal, settings, user, slug, body)


@router.patch(
    "/{slug}",
    response_model=AuthorTrack,
    summary="Change a track's title or description",
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def patch_track(
    slug: SlugPath, body: TrackPatch, _user: AdminDep, db: SessionDep
) -> AuthorTrack:
    return await service.patch_track(db, slug, body)


@router.post(
    "/{slug}/publish",
    response_model=TrackDetail,
    summary="Publish the draft as the newest version",
    description=(
        "Problem facts are copied from Problem Bank into the items. Running sessions keep "
        "the version they started on; new sessions get this one. " + _INVALID
    ),
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
)
async def publish_track(
    slug: SlugPath, user: AdminDep, db: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> TrackDetail:
    return await service.publish(db, temporal, settings, user, slug)
