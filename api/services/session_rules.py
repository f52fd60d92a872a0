"""The session rules the gateway enforces on writes that name a session.

- A session that is over (completed, ended, abandoned) takes no more writes:
  409 ``session-closed``, the same for a submission, a tutor message and an advance.
- A submission with ``session_id`` must be for the session's current item (the one
  the learner is working on): 409 ``item-not-available`` otherwise, with a reason code
  in ``errors[0].type``: ``not_in_track`` (not in the session's track version),
  ``module_locked`` (its module's prerequisites are not complete) or ``not_current``.
  Practice submissions without a session are free.

The session's projection is the source: it is written before an advance answers, so
a client that submits after its advance returned sees the new current item.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import NotFound
from api.problem_types import ItemNotAvailable, SessionClosed
from domain import progression
from domain.progression import SessionStatus
from store import sessions as repo
from store.models import LearningSession


async def open_session(db: AsyncSession, user_id: str, session_id: uuid.UUID) -> LearningSession:
    """The caller's session if it still takes writes; 404 or 409 ``session-closed``."""
    row = await repo.get_owned(db, session_id, user_id)
    if row is None:
        raise NotFound(f"no session {session_id}")
    if row.status != SessionStatus.active.value:
        raise SessionClosed(f"session {session_id} is {row.status}; start a new one")
    return row


def _refuse(code: str, message: str) -> ItemNotAvailable:
    return ItemNotAvailable(
        message, errors=[{"loc": ["body", "problem_id"], "msg": message, "type": code}]
    )


async def check_submission(
    db: AsyncSession, user_id: str, session_id: uuid.UUID, problem_id: str
) -> None:
    row = await open_session(db, user_id, session_id)
    version = await repo.load_version(db, row.track_version_id)
    assert version is not None  # a foreign key
    plan = repo.plan_of(version)
    progress = repo.document_of(row, plan).progress
    if plan.item(problem_id) is None:
        raise _refuse(
            "not_in_track",
            f"problem '{problem_id}' is not part of the track version of session {session_id}",
        )
    position = progress.position
    if position is not None and position.problem_id == problem_id:
        return
    modules = [m for m in plan.modules if any(i.problem_id == problem_id for i in m.items)]
    if modules and not any(progression.module_unlocked(m, plan, progress) for m in modules):
        raise _refuse(
            "module_locked",
            f"problem '{problem_id}' is in module '{modules[0].slug}', which is locked until "
            f"{', '.join(modules[0].prerequisites)} is complete",
        )
    current = position.problem_id if position is not None else None
    raise _refuse(
        "not_current",
        f"problem '{problem_id}' is not the current item of session {session_id} "
        f"(the current one is '{current}'); advance first, or submit without session_id "
        "to practise",
    )
