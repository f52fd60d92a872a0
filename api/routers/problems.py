"""Problems, as a learner may read them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import PrincipalDep, SessionDep
from api.errors import problem_responses
from api.services import problems as service
from domain.problems import ProblemView

router = APIRouter(prefix="/v1/problems", tags=["problems"])


@router.get(
    "/{problem_id}",
    response_model=ProblemView,
    summary="A problem: statement, starter code, public tests and the hints unlocked so far",
    description=(
        "Read from the snapshot taken when a track version was published (never a live "
        "Problem Bank call). With `session_id`, the problem as in that session's track "
        "version; without, as in the most recently published version containing it (404 "
        "when none does). `hints` holds the ladder up to `hint_access.unlocked_level` "
        "(see the hint policy in the README); `hint_access.next_unlock` says what opens "
        "the next level. Hidden tests and solutions are never part of it."
    ),
    responses=problem_responses(401, 404, 422, 429),
)
async def get_problem(
    problem_id: Annotated[str, Path(min_length=1, max_length=120)],
    user: PrincipalDep,
    db: SessionDep,
    session_id: Annotated[
        uuid.UUID | None, Query(description="Read the problem as in this session's version.")
    ] = None,
) -> ProblemView:
    return await service.get(db, user, problem_id, session_id)
