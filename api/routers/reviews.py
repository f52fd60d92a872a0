"""Spaced-repetition reviews: the caller's cards, grades, stats and settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query

from api.deps import PrincipalDep, SessionDep, SettingsDep, TemporalDep
from api.errors import problem_responses
from api.services import reviews as service
from domain.reviews import (
    GradeBody,
    ReviewItemOut,
    ReviewPage,
    ReviewSettings,
    ReviewSettingsOut,
    ReviewStats,
    ReviewStatus,
)

router = APIRouter(prefix="/v1/reviews", tags=["reviews"])

ProblemId = Annotated[str, Path(min_length=1, max_length=120)]


@router.get(
    "",
    response_model=ReviewPage,
    summary="The caller's review cards: due first, most overdue first",
    description=(
        "Every solved problem is a card scheduled by FSRS. `status=due` lists the cards "
        "due now, `upcoming` the others, `all` both; ordered by due time, keyset-paginated."
    ),
    responses=problem_responses(401, 422, 429),
)
async def list_reviews(
    user: PrincipalDep,
    db: SessionDep,
    status: ReviewStatus = ReviewStatus.all,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ReviewPage:
    return await service.list_(db, user, status=status, limit=limit, cursor=cursor)


@router.get(
    "/stats",
    response_model=ReviewStats,
    summary="Due today and this week, retention estimate, streak",
    responses=problem_responses(401, 429),
)
async def review_stats(user: PrincipalDep, db: SessionDep) -> ReviewStats:
    return await service.stats(db, user)


@router.put(
    "/settings",
    response_model=ReviewSettingsOut,
    summary="Set the desired retention (0.70 to 0.97)",
    description="Applies to the next reviews; cards already scheduled keep their due times.",
    responses=problem_responses(401, 422, 429, 503),
)
async def put_review_settings(
    body: ReviewSettings,
    user: PrincipalDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> ReviewSettingsOut:
    return await service.put_settings(temporal, settings, user, body)


@router.post(
    "/{problem_id}/grade",
    response_model=ReviewItemOut,
    summary="Grade a review by self-rating (again, hard, good, easy)",
    description=(
        "Reschedules the card by FSRS. 409 if the card is not due, unless `force: true`. "
        "With an `Idempotency-Key`, a retried grade answers the card again and never "
        "reschedules twice."
    ),
    responses=problem_responses(401, 404, 409, 422, 429, 503),
)
async def grade_review(
    problem_id: ProblemId,
    body: GradeBody,
    user: PrincipalDep,
    db: SessionDep,
    temporal: TemporalDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ReviewItemOut:
    return await service.grade(
        db, temporal, user, problem_id, body, idempotency_key=idempotency_key
    )
