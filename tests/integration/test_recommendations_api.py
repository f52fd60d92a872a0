"""GET /v1/recommendations over the real projections: overdue reviews, then the weakest
skill, then the active session, each with its reason."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from store.models import Mastery, ReviewItem
from tests.conftest import Stack


async def test_empty_history_gets_the_demo_tracks_first_items(
    stack: Stack, auth: dict[str, str]
) -> None:
    r = await stack.client.get("/v1/recommendations", headers=auth)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items
    assert {i["kind"] for i in items} == {"start_track"}
    assert all(i["reason"].startswith("start ") for i in items)


async def test_overdue_reviews_then_weak_skill_then_session_with_reasons(
    stack: Stack, auth: dict[str, str], user_id: str, token_for: Callable[..., str]
) -> None:
    session = await stack.client.post(
        "/v1/sessions", json={"track_slug": "python-foundations"}, headers=auth
    )
    assert session.status_code == 201, session.text
    now = datetime.now(UTC)
    # The review schedule's and mastery's projections, as their workflows would write them.
    async with stack.app.state.resources.sessionmaker() as db, db.begin():
        for problem, days in (("math-solve-linear", 1), ("sys-littles-law", 4)):
            await db.execute(
                insert(ReviewItem).values(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    problem_id=problem,
                    card={},
                    due_at=now - timedelta(days=days),
                    reps=1,
                )
            )
        await db.execute(
            insert(Mastery).values(
                user_id=user_id, skill="recursion", score=0.2, attempts=4, accepted=1
            )
        )
    r = await stack.client.get("/v1/recommendations?limit=10", headers=auth)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    kinds = [i["kind"] for i in items]
    assert kinds[:4] == ["review", "review", "practice_skill", "continue_session"]
    assert [i["target"] for i in items[:2]] == ["sys-littles-law", "math-solve-linear"]
    assert items[0]["reason"] == "2 reviews are overdue; this one has been due for 4 days"
    assert "your mastery of recursion is 0.20, the lowest of your skills" in items[2]["reason"]
    assert items[3]["target"] == session.json()["id"]
    assert items[3]["reason"].startswith("next in ")
    # Another learner sees none of it.
    other = {"Authorization": f"Bearer {token_for('reco-' + uuid.uuid4().hex[:6])}"}
    theirs = (await stack.client.get("/v1/recommendations", headers=other)).json()["items"]
    assert {i["kind"] for i in theirs} == {"start_track"}
    assert (await stack.client.get("/v1/recommendations?limit=0", headers=auth)).status_code == 422
