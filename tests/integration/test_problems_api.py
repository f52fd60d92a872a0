"""Reading problems through CO: snapshots of the published version, the hint ladder
cut at the learner's unlocked level, and the usual 401/404 rules."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import Stack

SYSTEMS_TRACK = "systems-fundamentals"
FIRST = "sys-cache-hit-rate"
HIDDEN_FIELDS = ("hidden_tests", "reference_solution", "expected_answer", "wrong_solution")

Headers = dict[str, str]


async def test_hints_open_up_as_the_learner_fails(
    stack: Stack, auth: Headers, bundle_of: Callable[[str], Awaitable[dict[str, Any]]]
) -> None:
    client = stack.client
    session = (
        await client.post("/v1/sessions", json={"track_slug": SYSTEMS_TRACK}, headers=auth)
    ).json()
    sid = session["id"]
    assert session["current"]["problem_id"] == FIRST
    problem = session["current_problem"]
    assert problem["id"] == FIRST
    assert problem["kind"] == "numeric"
    assert problem["statement"]
    assert problem["skills"]
    assert 1 <= problem["difficulty"] <= 5
    assert problem["limits"]["time_limit_ms"] > 0
    assert [h["level"] for h in problem["hints"]] == [1]
    access = problem["hint_access"]
    assert (access["unlocked_level"], access["max_level"], access["failed_attempts"]) == (1, 3, 0)
    assert "level 2" in access["next_unlock"]
    bundle = await bundle_of(FIRST)
    assert problem["hints"][0]["text"] == bundle["problem"]["hints"][0]

    wrong = await client.post(
        "/v1/submissions",
        json={"problem_id": FIRST, "session_id": sid, "answer": "12345"},
        headers={**auth, "Prefer": "wait=30"},
    )
    assert wrong.json()["verdict"] == "wrong_answer", wrong.text
    after = await client.get(f"/v1/problems/{FIRST}", params={"session_id": sid}, headers=auth)
    assert after.status_code == 200, after.text
    body = after.json()
    assert [h["name"] for h in body["hints"]] == ["nudge", "concept"]
    assert body["hint_access"]["failed_attempts"] == 1
    assert "level 3" in body["hint_access"]["next_unlock"]
    for field in HIDDEN_FIELDS:
        assert field not in after.text
    assert bundle["expected_answer"] not in {str(t.get("expected")) for t in body["public_tests"]}
    # The same learner outside the session reads the newest published version.
    outside = (await client.get(f"/v1/problems/{FIRST}", headers=auth)).json()
    assert outside["source"]["track_slug"] == SYSTEMS_TRACK
    assert outside["source"]["session_id"] is None
    assert outside["hints"] == body["hints"]
    await client.post(f"/v1/sessions/{sid}/end", headers=auth)


async def test_problems_are_404_outside_published_tracks_and_other_users_sessions(
    stack: Stack, auth: Headers, token_for: Callable[..., str]
) -> None:
    client = stack.client
    # In no published track (every Problem Bank problem is in a demo track).
    r = await client.get("/v1/problems/no-such-problem", headers=auth)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(f"/v1/problems/{FIRST}")).status_code == 401
    assert (await client.get("/v1/problems/" + "x" * 121, headers=auth)).status_code == 422
    sid = (
        await client.post("/v1/sessions", json={"track_slug": SYSTEMS_TRACK}, headers=auth)
    ).json()["id"]
    other = {"Authorization": f"Bearer {token_for(f'intruder-{uuid.uuid4().hex[:6]}')}"}
    foreign = await client.get(f"/v1/problems/{FIRST}", params={"session_id": sid}, headers=other)
    assert foreign.status_code == 404
    elsewhere = await client.get(
        "/v1/problems/py-two-sum", params={"session_id": sid}, headers=auth
    )
    assert elsewhere.status_code == 404
    assert "not part of the track version" in elsewhere.json()["detail"]
    await client.post(f"/v1/sessions/{sid}/end", headers=auth)
