"""Recommendations: what to do next, ranked, each with a reason in words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, SessionDep
from api.errors import problem_responses
from domain.recommendations import RecommendationList, rank
from store import recommendations as repo

router = APIRouter(prefix="/v1/recommendations", tags=["recommendations"])


@router.get(
    "",
    response_model=RecommendationList,
    summary="What to do next: overdue reviews, weak skills, sessions, tracks",
    description=(
        "Ranked from PostgreSQL only: overdue reviews (most overdue first), then problems "
        "not yet solved that practise the weakest skills, then the next item of active "
        "sessions, then tracks that build on mastered skills. A learner with no history "
        "gets the first item of each track. Nothing appears twice."
    ),
    responses=problem_responses(401, 422, 429),
)
async def recommendations(
    user: PrincipalDep,
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> RecommendationList:
    data = await repo.inputs(db, user.user_id, datetime.now(UTC))
    return RecommendationList(items=rank(data, limit))
