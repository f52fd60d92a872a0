"""Learning sessions: start, read, advance, end.

**One writer per column, one owner per decision.** Starting a session, the API decides
two things before any workflow exists, and commits them in one insert: the row's
identity (id, learner, track, the version it follows, when it started) and the claim
"one active session per learner and track" (``status = 'active'``, decided by the
partial unique index, also between concurrent starts). Then it starts
``SessionWorkflow``. From then on the API never writes the row: the workflow owns the
state and its ``session.project`` activity alone writes the state columns (``state``,
``state_seq``, ``current_problem_id``, ``status`` as it moves on and releases the claim,
``ended_at``), its first projection right after it starts.

Why this and not "the workflow owns the whole row" (update-with-start, the API waiting
for the workflow's insert): the uniqueness decision then waits for a workflow task and
an activity on every start, and a lost race needs a workflow that ends itself; here
PostgreSQL decides it at once and the learner's ``201`` does not wait for the engine
beyond the start call.

- A read before the first projection arrives (``state`` is NULL, a few milliseconds)
  answers the state the workflow starts from: a pure function of the plan and the
  start time (``store.sessions.document_of``), never a guess.
- A start that fails after the commit (Temporal unreachable) deletes the fresh row and
  answers 503: no claim is left behind and a retry starts cleanly. A process that dies
  between the commit and the start leaves an active row that was never projected; the
  next ``POST /v1/sessions`` of that learner on that track finds it and starts its
  workflow (idempotent by workflow id), so the claim always gets its workflow.

Changes go through the workflow's updates; reads come from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal
from api.errors import NotFound, ServiceUnavailable
from api.pagination import decode_cursor, encode_cursor
from api.problem_types import AdvanceRefused, DependencyUnavailable, SessionClosed
from api.services import problems as problem_service
from api.temporal import start_workflow as temporal_start
from domain import progression
from domain.contracts import (
    CO_PROBLEM_ID,
    CO_SESSION_ID,
    CO_STATUS,
    CO_TRACK_SLUG,
    CO_USER_ID,
    FailureType,
    QueryName,
    UpdateName,
    WorkflowName,
    session_workflow_id,
)
from domain.progression import SessionStatus, SessionView
from domain.sessions import (
    AdvanceRequest,
    CurrentRef,
    EndRequest,
    SessionCreate,
    SessionDetail,
    SessionDocument,
    SessionInput,
    SessionList,
    SessionSummary,
)
from domain.settings import Settings
from store import sessions as repo
from store import tracks as track_repo
from store.models import LearningSession, Track, TrackVersion

# An update waits for the workflow (and its projection, about a second at most); a
# worker that is down must not hold the request forever.
UPDATE_TIMEOUT_SECONDS = 20.0


def links(session_id: uuid.UUID, current_problem_id: str | None) -> dict[str, str]:
    """Where a client goes from a session: itself, its moves, and where to submit, ask
    the tutor and read the current problem."""
    base = f"/v1/sessions/{session_id}"
    out = {
        "self": base,
        "advance": f"{base}/advance",
        "end": f"{base}/end",
        "submit": "/v1/submissions",
        "submissions": f"/v1/submissions?session_id={session_id}",
        "tutor": "/v1/tutor/messages",
    }
    if current_problem_id is not None:
        out["current_problem"] = f"/v1/problems/{current_problem_id}?session_id={session_id}"
    return out


async def _detail(
    db: AsyncSession,
    user_id: str,
    session_id: uuid.UUID,
    version: TrackVersion,
    view: SessionView,
) -> SessionDetail:
    """The learner's view with the titles the workflow does not carry and the current
    problem from its snapshot."""
    module_titles = {m.slug: m.title for m in version.modules}
    item_titles = {i.problem_id: i.title for m in version.modules for i in m.items}
    for module in view.modules:
        module.title = module_titles.get(module.slug)
        for item in module.items:
            item.title = item_titles.get(item.problem_id)
    if view.current is not None:
        view.current.title = item_titles.get(view.current.problem_id)
    track = version.track
    current_id = view.current.problem_id if view.current is not None else None
    problem = (
        await problem_service.in_version(db, user_id, version.id, current_id, session_id=session_id)
        if current_id is not None
        else None
    )
    return SessionDetail.model_validate(
        {
            **view.model_dump(),
            "id": session_id,
            "track_slug": track.slug,
            "track_title": track.title,
            "track_version": version.version,
            "current_problem": problem,
            "links": links(session_id, current_id),
        }
    )


async def _version(db: AsyncSession, row: LearningSession) -> TrackVersion:
    version = await repo.load_version(db, row.track_version_id)
    assert version is not None  # a foreign key
    return version


async def _stored_detail(db: AsyncSession, row: LearningSession) -> SessionDetail:
    version = await _version(db, row)
    plan = repo.plan_of(version)
    document = repo.document_of(row, plan)
    return await _detail(
        db, row.user_id, row.id, version, progression.view(plan, document.progress)
    )


async def _owned(db: AsyncSession, principal: Principal, session_id: uuid.UUID) -> LearningSession:
    row = await repo.get_owned(db, session_id, principal.user_id)
    if row is None:
        raise NotFound(f"no session {session_id}")
    return row


async def create(
    db: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    body: SessionCreate,
) -> tuple[SessionDetail, bool]:
    """Start a session on the newest published version, or return the learner's
    active session on the track. Returns ``(session, created)``."""
    version = await track_repo.get_published(db, body.track_slug)
    if version is None:
        raise NotFound(f"no published track '{body.track_slug}'")
    existing = await repo.active_for(db, principal.user_id, version.track_id)
    if existing is not None:
        return await _existing(db, temporal, settings, existing), False

    session_id = uuid.uuid4()
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        # Identity and the active claim only: the state columns are the workflow's.
        "id": session_id,
        "user_id": principal.user_id,
        "track_id": version.track_id,
        "track_version_id": version.id,
        "status": SessionStatus.active.value,
        "state_seq": -1,  # below any projection's (``state`` stays NULL until the first)
        "created_at": now,
        "updated_at": now,
    }
    inserted = await repo.insert_active(db, values)
    if not inserted:  # a concurrent request won
        existing = await repo.active_for(db, principal.user_id, version.track_id)
        assert existing is not None
        return await _existing(db, temporal, settings, existing), False
    # Committed before the start: the workflow's projection updates this row.
    await db.commit()
    row = LearningSession(**values)  # what was inserted (not added to the db session)
    try:
        await _start_workflow(temporal, settings, row, version)
    except Exception:
        # Temporal is unreachable (503) or refused the start: release the claim, so the
        # answer means "nothing happened" and a retry starts cleanly.
        await repo.delete_unstarted(db, session_id)
        await db.commit()
        raise
    plan = repo.plan_of(version)
    return (
        await _detail(
            db,
            principal.user_id,
            session_id,
            version,
            progression.view(plan, repo.document_of(row, plan).progress),
        ),
        True,
    )


async def _existing(
    db: AsyncSession, temporal: Client, settings: Settings, row: LearningSession
) -> SessionDetail:
    """The learner's active session on the track. One never projected may have lost its
    workflow's start (its POST died between commit and start): start it, idempotently."""
    if row.state is None:
        await _start_workflow(temporal, settings, row, await _version(db, row))
    return await _stored_detail(db, row)


async def _start_workflow(
    temporal: Client, settings: Settings, row: LearningSession, version: TrackVersion
) -> None:
    plan = repo.plan_of(version)
    progress = progression.start(plan, row.created_at)
    data = SessionInput(
        session_id=row.id,
        user_id=row.user_id,
        track_id=row.track_id,
        track_slug=version.track.slug,
        track_version_id=version.id,
        track_version=version.version,
        plan=plan,
        started_at=row.created_at,
        idle_timeout=timedelta(days=settings.session_idle_days),
    )
    attributes: list[SearchAttributePair[Any]] = [
        SearchAttributePair(CO_USER_ID, row.user_id),
        SearchAttributePair(CO_TRACK_SLUG, version.track.slug),
        SearchAttributePair(CO_SESSION_ID, str(row.id)),
        SearchAttributePair(CO_STATUS, progress.status.value),
    ]
    if progress.position is not None:
        attributes.append(SearchAttributePair(CO_PROBLEM_ID, progress.position.problem_id))
    # Unreachable: 503. Started already (a retried start): nothing to do.
    await temporal_start(
        temporal,
        WorkflowName.SESSION,
        data,
        id=session_workflow_id(row.id),
        task_queue=settings.temporal_task_queue,
        attributes=attributes,
        unavailable="sessions cannot be started right now",
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


async def get(db: AsyncSession, principal: Principal, session_id: uuid.UUID) -> SessionDetail:
    return await _stored_detail(db, await _owned(db, principal, session_id))


def _summary(
    row: LearningSession, track: Track, number: int, document: SessionDocument
) -> SessionSummary:
    progress = document.progress
    position = progress.position
    current = None
    if position is not None:  # an ended session keeps where the learner stopped, as the detail
        current = CurrentRef(module_slug=position.module_slug, problem_id=position.problem_id)
    return SessionSummary(
        id=row.id,
        track_slug=track.slug,
        track_title=track.title,
        track_version=number,
        status=progress.status,
        current=current,
        progress=document.summary,
        started_at=progress.started_at,
        last_activity_at=progress.last_activity_at,
        ended_at=progress.ended_at,
        links=links(row.id, current.problem_id if current is not None else None),
    )


async def list_(
    db: AsyncSession,
    principal: Principal,
    *,
    status: SessionStatus | None,
    limit: int,
    cursor: str | None = None,
) -> SessionList:
    rows = await repo.list_owned(
        db,
        principal.user_id,
        status=status.value if status else None,
        limit=limit + 1,
        before=decode_cursor(cursor) if cursor else None,
    )
    page, more = rows[:limit], len(rows) > limit
    # Titles of current items: one query per distinct version on the page.
    versions: dict[uuid.UUID, TrackVersion] = {}

    async def version_of(row: LearningSession) -> TrackVersion:
        if row.track_version_id not in versions:
            versions[row.track_version_id] = await _version(db, row)
        return versions[row.track_version_id]

    items = []
    for row, track, number in page:
        if row.state is not None:
            document = SessionDocument.model_validate(row.state)
        else:  # not projected yet: the state its workflow starts from
            document = repo.document_of(row, repo.plan_of(await version_of(row)))
        summary = _summary(row, track, number, document)
        if summary.current is not None:
            version = await version_of(row)
            titles = {i.problem_id: i.title for m in version.modules for i in m.items}
            summary.current.title = titles.get(summary.current.problem_id)
        items.append(summary)
    last = page[-1][0] if page else None
    return SessionList(
        items=items,
        next_cursor=encode_cursor(last.created_at, last.id) if more and last else None,
    )


async def _update(temporal: Client, session_id: uuid.UUID, name: str, arg: Any) -> SessionView:
    handle = temporal.get_workflow_handle(session_workflow_id(session_id))
    try:
        return await asyncio.wait_for(
            handle.execute_update(name, arg, result_type=SessionView), UPDATE_TIMEOUT_SECONDS
        )
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # The SDK answers the cancellation by ``wait_for`` (and its own RPC deadline) with
        # this error, not TimeoutError: both mean no worker took the update in time (one
        # was killed holding the session, say), which a retry fixes.
        raise ServiceUnavailable(
            "the session did not answer in time; retry (give from_problem_id to be safe)"
        ) from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # the workflow closed meanwhile
            raise SessionClosed(f"session {session_id} is no longer active") from err
        raise DependencyUnavailable("temporal: the session cannot be reached right now") from err


async def advance(
    db: AsyncSession,
    temporal: Client,
    principal: Principal,
    session_id: uuid.UUID,
    body: AdvanceRequest,
) -> SessionDetail:
    """Move past the current item, if the mastery rule allows (the workflow's update
    validator decides; a refusal is a 409 with the reason).

    A retried advance is harmless: when ``from_problem_id`` names an item the learner
    has already moved past (mastered or skipped), the answer is 200 with the current
    state, also when that advance completed the session. Any other advance of a
    session that is over is 409 ``session-closed``.
    """
    row = await _owned(db, principal, session_id)
    version = await _version(db, row)
    if row.status != SessionStatus.active.value:
        return await _closed(db, row, version, body)
    try:
        view = await _update(temporal, session_id, UpdateName.ADVANCE, body)
    except SessionClosed:
        await db.refresh(row)
        return await _closed(db, row, version, body)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == FailureType.ADVANCE_REFUSED:
            code = str(cause.details[0]) if cause.details else "refused"
            if code == "not_active":
                await db.refresh(row)
                return await _closed(db, row, version, body)
            if code == "stale" and body.from_problem_id is not None:
                current = await _query_state(temporal, session_id)
                if _behind_in_view(current, body.from_problem_id):
                    return await _detail(db, principal.user_id, session_id, version, current)
            raise AdvanceRefused(
                cause.message, errors=[{"loc": ["session"], "msg": cause.message, "type": code}]
            ) from None
        raise
    return await _detail(db, principal.user_id, session_id, version, view)


async def _closed(
    db: AsyncSession, row: LearningSession, version: TrackVersion, body: AdvanceRequest
) -> SessionDetail:
    """Advance on a session that is over: a retry of the advance that moved past
    ``from_problem_id`` gets the state; anything else is ``session-closed``."""
    plan = repo.plan_of(version)
    stored = repo.document_of(row, plan).progress
    if body.from_problem_id is not None and _behind(plan, stored, body.from_problem_id):
        return await _stored_detail(db, row)
    raise SessionClosed(f"session {row.id} is {stored.status.value}; start a new one")


def _behind(plan: progression.SessionPlan, progress: progression.Progress, problem_id: str) -> bool:
    """Whether the learner has moved past this item (it is mastered or skipped and no
    longer current)."""
    item = plan.item(problem_id)
    if item is None:
        return False
    position = progress.position
    here = position is not None and position.problem_id == problem_id and progress.active
    return not here and progression.is_done(item, progress)


def _behind_in_view(view: SessionView, problem_id: str) -> bool:
    here = view.current is not None and view.current.problem_id == problem_id
    for module in view.modules:
        for item in module.items:
            if item.problem_id == problem_id:
                return not here and (item.mastered or item.skipped)
    return False


async def _query_state(temporal: Client, session_id: uuid.UUID) -> SessionView:
    handle = temporal.get_workflow_handle(session_workflow_id(session_id))
    try:
        return await asyncio.wait_for(
            handle.query(QueryName.STATE, result_type=SessionView), UPDATE_TIMEOUT_SECONDS
        )
    except (TimeoutError, RPCError):
        raise ServiceUnavailable("the session cannot be reached right now; try again") from None


async def end(
    db: AsyncSession, temporal: Client, principal: Principal, session_id: uuid.UUID
) -> SessionDetail:
    """End the session; ending a session that is already over answers its state."""
    row = await _owned(db, principal, session_id)
    if row.status != SessionStatus.active.value:
        return await _stored_detail(db, row)
    try:
        view = await _update(temporal, session_id, UpdateName.END, EndRequest())
    except SessionClosed:
        await db.refresh(row)
        return await _stored_detail(db, row)
    return await _detail(db, principal.user_id, session_id, await _version(db, row), view)
