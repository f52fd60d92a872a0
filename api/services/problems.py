"""Reading a problem as a learner: from the snapshot of a published version, with the
hint ladder cut at the level the learner has unlocked. Plain SQL, no Problem Bank call.

Which version: inside a session, the session's own track version (what the learner
is graded against). Outside any session, the most recently published version that
contains the problem; a problem in no published version does not exist (404).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal
from api.errors import NotFound
from domain.problems import ProblemSource, ProblemView, render
from store import problems as repo
from store import sessions as session_repo
from store import tutor as tutor_repo


async def in_version(
    db: AsyncSession,
    user_id: str,
    version_id: uuid.UUID,
    problem_id: str,
    *,
    session_id: uuid.UUID | None = None,
) -> ProblemView | None:
    found = await repo.snapshot_in(db, version_id, problem_id)
    if found is None:
        return None
    snapshot, version, slug = found
    facts = await tutor_repo.hint_facts(db, user_id, problem_id)
    source = ProblemSource(
        track_slug=slug,
        track_version=version.version,
        track_version_id=version.id,
        session_id=session_id,
    )
    view = render(snapshot, facts, source)
    if session_id is not None:
        view.links["self"] += f"?session_id={session_id}"
        view.links["session"] = f"/v1/sessions/{session_id}"
        view.links["tutor"] = "/v1/tutor/messages"
    return view


async def get(
    db: AsyncSession, principal: Principal, problem_id: str, session_id: uuid.UUID | None
) -> ProblemView:
    if session_id is not None:
        session = await session_repo.get_owned(db, session_id, principal.user_id)
        if session is None:
            raise NotFound(f"no session {session_id}")
        view = await in_version(
            db, principal.user_id, session.track_version_id, problem_id, session_id=session_id
        )
        if view is None:
            raise NotFound(
                f"problem '{problem_id}' is not part of the track version of session {session_id}"
            )
        return view
    found = await repo.newest_snapshot(db, problem_id)
    if found is None:
        raise NotFound(f"problem '{problem_id}' is not part of any published track")
    snapshot, version, slug = found
    facts = await tutor_repo.hint_facts(db, principal.user_id, problem_id)
    return render(
        snapshot,
        facts,
        ProblemSource(track_slug=slug, track_version=version.version, track_version_id=version.id),
    )
