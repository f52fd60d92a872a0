"""Reviews through the real path: an accepted submission (API -> SubmissionWorkflow ->
reviews.tell_submission -> ReviewScheduleWorkflow -> projection) becomes a card; grades
go to the workflow; the notification stand-in is the dev main API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from domain.contracts import (
    reviews_workflow_id,
)
from store.models import ReviewLog
from tests.conftest import Stack
from tests.support import eventually, record_history

PROBLEM = "py-sum-evens"
SUM_OK = "def sum_evens(xs):\n    return sum(x for x in xs if x % 2 == 0)\n"


async def solve(stack: Stack, auth: dict[str, str]) -> dict[str, Any]:
    r = await stack.client.post(
        "/v1/submissions",
        json={"problem_id": PROBLEM, "language": "python", "code": SUM_OK},
        headers={**auth, "Prefer": "wait=30"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["verdict"] == "accepted"
    return dict(r.json())


async def card_of(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def listed() -> bool:
        r = await client.get("/v1/reviews?status=all", headers=auth)
        assert r.status_code == 200, r.text
        items = [i for i in r.json()["items"] if i["problem_id"] == PROBLEM]
        if items:
            found.update(items[0])
        return bool(items)

    await eventually(listed, timeout=30)
    return found


async def test_an_accepted_submission_becomes_a_card_due_in_the_future(
    stack: Stack, auth: dict[str, str], user_id: str
) -> None:
    submission = await solve(stack, auth)
    card = await card_of(stack.client, auth)
    assert datetime.fromisoformat(card["due_at"]) > datetime.now(UTC)
    assert card["reps"] == 1
    assert card["last_rating"] == "good"
    assert card["state"] == "review"
    upcoming = await stack.client.get("/v1/reviews?status=upcoming", headers=auth)
    assert [i["problem_id"] for i in upcoming.json()["items"]] == [PROBLEM]
    due = await stack.client.get("/v1/reviews?status=due", headers=auth)
    assert due.json()["items"] == []
    stats = await stack.client.get("/v1/reviews/stats", headers=auth)
    assert stats.status_code == 200
    assert stats.json()["total_cards"] == 1
    assert stats.json()["streak_days"] == 1
    await record_history(
        stack.temporal, f"submission-{submission['id']}", "submission_tells_reviews"
    )


async def test_a_grade_with_the_same_idempotency_key_twice_logs_one_review(
    stack: Stack, auth: dict[str, str], user_id: str
) -> None:
    await solve(stack, auth)
    await card_of(stack.client, auth)
    url = f"/v1/reviews/{PROBLEM}/grade"
    not_due = await stack.client.post(url, json={"rating": "good"}, headers=auth)
    assert not_due.status_code == 409
    assert not_due.headers["content-type"].startswith("application/problem+json")
    headers = {**auth, "Idempotency-Key": "grade-1"}
    first = await stack.client.post(url, json={"rating": "hard", "force": True}, headers=headers)
    second = await stack.client.post(url, json={"rating": "hard", "force": True}, headers=headers)
    assert first.status_code == second.status_code == 200, first.text
    assert first.json() == second.json()
    assert first.json()["reps"] == 2
    assert first.json()["last_rating"] == "hard"
    async with stack.app.state.resources.sessionmaker() as db:
        rows = await db.scalar(
            select(func.count()).select_from(ReviewLog).where(ReviewLog.user_id == user_id)
        )
    assert rows == 2  # the first review (solving) and one grade, not two
    bad = await stack.client.post(url, json={"rating": "perfect"}, headers=auth)
    assert bad.status_code == 422
    await record_history(stack.temporal, reviews_workflow_id(user_id), "review_schedule_graded")


async def test_another_users_card_is_404(
    stack: Stack, auth: dict[str, str], token_for: Callable[..., str]
) -> None:
    await solve(stack, auth)
    await card_of(stack.client, auth)
    other = {"Authorization": f"Bearer {token_for('someone-else')}"}
    r = await stack.client.post(
        f"/v1/reviews/{PROBLEM}/grade", json={"rating": "good", "force": True}, headers=other
    )
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    listed = await stack.client.get("/v1/reviews", headers=other)
    assert listed.json()["items"] == []


async def test_settings_accept_a_retention_in_range_only(
    stack: Stack, auth: dict[str, str]
) -> None:
    ok = await stack.client.put(
        "/v1/reviews/settings", json={"desired_retention": 0.85}, headers=auth
    )
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"desired_retention": 0.85}
    for bad in (0.5, 0.99, "x"):
        r = await stack.client.put(
            "/v1/reviews/settings", json={"desired_retention": bad}, headers=auth
        )
        assert r.status_code == 422


async def test_a_bad_cursor_or_status_is_422(stack: Stack, auth: dict[str, str]) -> None:
    assert (await stack.client.get("/v1/reviews?cursor=%%%", headers=auth)).status_code == 422
    assert (await stack.client.get("/v1/reviews?status=soon", headers=auth)).status_code == 422
