"""Authoring tracks: create, edit the draft, publish.

Checking problem ids needs Problem Bank, which the API must not call on a user's
behalf; it runs ``PublishTrackWorkflow`` and waits for its answer instead (a dry
run when a draft is saved, a real run to publish). One 422 lists every issue at
once: the workflow checks the structure (empty modules, cycles, duplicates) and the
problem ids together, and the API adds the problems of another domain than the
track's from the facts the workflow returned. Drafts are always valid when saved;
publishing checks again, because Problem Bank may have changed since.

A draft has an ``ETag`` (it changes with every save); ``If-Match`` on publish or on a
replacement makes the request apply only to the draft the author last saw (412
otherwise).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import (
    SearchAttributePair,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError

from api.auth import Principal
from api.errors import NotFound, ServiceUnavailable, Unprocessable
from api.pagination import decode_key_cursor, encode_key_cursor
from api.problem_types import (
    DraftChanged,
    InvalidCurriculum,
    NoDraft,
    PreconditionFailed,
    TrackExists,
)
from api.services.tracks import detail_of
from api.temporal import start_workflow as temporal_start
from domain.authoring import (
    AuthorTrack,
    AuthorTrackList,
    AuthorTrackSummary,
    DraftOut,
    DraftRef,
    PublishOutcome,
    PublishStatus,
    PublishTrackInput,
    TrackPatch,
)
from domain.contracts import (
    CO_TRACK_SLUG,
    CO_USER_ID,
    WorkflowName,
    curriculum_check_workflow_id,
    publish_workflow_id,
)
from domain.curriculum import CurriculumIssue, CurriculumSpec, TrackSpec, domain_mismatches
from domain.settings import Settings
from domain.tracks import ModuleOut, TrackDetail
from domain.upstream import Domain
from store import curricula as repo
from store import tracks as track_repo
from store.models import Track, TrackVersion

# The workflow needs a few seconds at most; past this the author is told to retry.
CHECK_TIMEOUT_SECONDS = 30.0


def _refuse(issues: list[CurriculumIssue]) -> Unprocessable:
    first = issues[0].msg
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return InvalidCurriculum(
        f"the curriculum cannot be used: {first}{more}",
        errors=[i.model_dump() for i in issues],
    )


def _check_if_match(draft: TrackVersion | None, if_match: str | None) -> None:
    if if_match is None or if_match.strip() == "*" and draft is not None:
        return
    current = repo.draft_etag(draft) if draft is not None else None
    tags = [t.strip().removeprefix("W/") for t in if_match.split(",")]
    if current is None or current not in tags:
        raise PreconditionFailed(
            "the draft has changed since you read it (If-Match does not match its ETag); "
            "read it again"
        )


async def _run_check(
    temporal: Client,
    settings: Settings,
    principal: Principal,
    slug: str,
    spec: CurriculumSpec,
    *,
    track_domain: Domain,
    version_id: uuid.UUID | None = None,
) -> PublishOutcome:
    """Run PublishTrackWorkflow (a dry run without ``version_id``) and raise the API
    error its outcome stands for. A curriculum with problems of another domain is
    refused before anything is published (a dry run first)."""
    if version_id is not None:
        await _run_check(temporal, settings, principal, slug, spec, track_domain=track_domain)
    dry_run = version_id is None
    workflow_id = (
        curriculum_check_workflow_id(uuid.uuid4()) if dry_run else publish_workflow_id(version_id)
    )
    handle = await temporal_start(
        temporal,
        WorkflowName.PUBLISH_TRACK,
        PublishTrackInput(
            track_slug=slug,
            version_id=version_id,
            spec=spec,
            dry_run=dry_run,
            requested_by=principal.user_id,
        ),
        id=workflow_id,
        task_queue=settings.temporal_task_queue,
        attributes=[
            SearchAttributePair(CO_TRACK_SLUG, slug),
            SearchAttributePair(CO_USER_ID, principal.user_id),
        ],
        unavailable="the curriculum cannot be checked right now",
        result_type=PublishOutcome,
        # Two authors publishing the same draft at once share one run.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        execution_timeout=timedelta(minutes=5),
    )
    assert handle is not None  # duplicates are allowed: a start is never refused
    try:
        outcome: PublishOutcome = await asyncio.wait_for(handle.result(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        raise ServiceUnavailable(
            "checking the curriculum takes longer than expected; try again shortly"
        ) from None
    except (RPCError, WorkflowFailureError) as err:
        raise ServiceUnavailable("the curriculum cannot be checked right now") from err
    mismatches = domain_mismatches(spec, track_domain, {p.id: p.domain for p in outcome.problems})
    if outcome.status == PublishStatus.invalid or mismatches:
        raise _refuse([*outcome.issues, *mismatches])
    if outcome.status == PublishStatus.unavailable:
        raise ServiceUnavailable(outcome.message or "Problem Bank is unavailable")
    if outcome.status == PublishStatus.draft_changed:
        raise DraftChanged("the draft was edited while it was being published; publish again")
    return outcome


async def _author_view(db: AsyncSession, track: Track) -> AuthorTrack:
    draft = await repo.get_draft(db, track.id)
    return AuthorTrack(
        id=track.id,
        slug=track.slug,
        title=track.title,
        domain=Domain(track.domain),
        description=track.description,
        published_version=await repo.newest_published_number(db, track.id),
        draft=(
            DraftOut(
                version=draft.version,
                created_at=draft.created_at,
                updated_at=draft.updated_at,
                etag=repo.draft_etag(draft),
                modules=[ModuleOut.model_validate(m) for m in draft.modules],
            )
            if draft is not None
            else None
        ),
    )


async def _track(db: AsyncSession, slug: str, *, for_update: bool = False) -> Track:
    track = await repo.get_track(db, slug, for_update=for_update)
    if track is None:
        raise NotFound(f"no track '{slug}'")
    return track


async def create_track(
    db: AsyncSession, temporal: Client, settings: Settings, principal: Principal, body: TrackSpec
) -> AuthorTrack:
    if await repo.get_track(db, body.slug) is not None:
        raise TrackExists(f"a track '{body.slug}' exists already")
    spec = body.curriculum()
    outcome = await _run_check(
        temporal, settings, principal, body.slug, spec, track_domain=body.domain
    )
    try:
        # Insert, never update: a create that raced another past the check above must
        # answer 409, not take over the other's track.
        track = await repo.insert_track(db, body, created_by=principal.user_id)
    except IntegrityError:
        raise TrackExists(f"a track '{body.slug}' exists already") from None
    await repo.save_draft(db, track, spec, {p.id: p for p in outcome.problems})
    return await _author_view(db, track)


async def get_draft(db: AsyncSession, slug: str) -> AuthorTrack:
    return await _author_view(db, await _track(db, slug))


async def replace_draft(
    db: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    slug: str,
    spec: CurriculumSpec,
    *,
    if_match: str | None = None,
) -> AuthorTrack:
    track = await _track(db, slug)
    outcome = await _run_check(
        temporal, settings, principal, slug, spec, track_domain=Domain(track.domain)
    )
    # Lock only now, not across the check: concurrent saves of one draft take turns.
    track = await _track(db, slug, for_update=True)
    if if_match is not None:
        _check_if_match(await repo.get_draft(db, track.id), if_match)
    try:
        await repo.save_draft(db, track, spec, {p.id: p for p in outcome.problems})
    except IntegrityError:
        raise DraftChanged("the draft is being created by another request; try again") from None
    return await _author_view(db, track)


async def patch_track(db: AsyncSession, slug: str, body: TrackPatch) -> AuthorTrack:
    track = await _track(db, slug, for_update=True)
    if body.title is not None:
        track.title = body.title
    if body.description is not None:
        track.description = body.description
    await db.flush()
    return await _author_view(db, track)


async def publish(
    db: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    slug: str,
    *,
    if_match: str | None = None,
) -> TrackDetail:
    """Publish the draft as the track's newest version. Running sessions keep the
    version they started on; new sessions get this one."""
    track = await _track(db, slug)
    draft = await repo.get_draft(db, track.id)
    if draft is None:
        if if_match is not None and await _already_published(db, track, if_match):
            return await _published_detail(db, slug)  # a retry of a publication that worked
        raise NoDraft(f"track '{slug}' has no draft to publish")
    _check_if_match(draft, if_match)
    await _run_check(
        temporal,
        settings,
        principal,
        slug,
        repo.curriculum_of(draft),
        track_domain=Domain(track.domain),
        version_id=draft.id,
    )
    db.expunge_all()  # the activity rewrote the rows this session has loaded
    return await _published_detail(db, slug)


async def _already_published(db: AsyncSession, track: Track, if_match: str) -> bool:
    """Whether ``If-Match`` names the draft that became the newest published version."""
    newest = await track_repo.get_published(db, track.slug)
    tags = [t.strip().removeprefix("W/") for t in if_match.split(",")]
    return newest is not None and repo.draft_etag(newest) in tags


async def _published_detail(db: AsyncSession, slug: str) -> TrackDetail:
    version = await track_repo.get_published(db, slug)
    assert version is not None
    return detail_of(version)


async def list_for_authors(
    db: AsyncSession, *, has_draft: bool | None, limit: int, cursor: str | None
) -> AuthorTrackList:
    after = decode_key_cursor(cursor, 1)[0] if cursor else None
    rows = await repo.list_for_authors(db, has_draft=has_draft, limit=limit + 1, after=after)
    page, more = rows[:limit], len(rows) > limit
    return AuthorTrackList(
        items=[
            AuthorTrackSummary(
                id=track.id,
                slug=track.slug,
                title=track.title,
                domain=Domain(track.domain),
                published_version=published,
                draft=(
                    DraftRef(
                        version=draft.version,
                        created_at=draft.created_at,
                        updated_at=draft.updated_at,
                        etag=repo.draft_etag(draft),
                    )
                    if draft is not None
                    else None
                ),
            )
            for track, published, draft in page
        ],
        next_cursor=encode_key_cursor(page[-1][0].slug) if more and page else None,
    )
