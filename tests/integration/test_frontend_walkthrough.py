"""A frontend's walk through CO alone, against the real stack (API served by uvicorn,
Temporal, worker, dev services, PostgreSQL, Redis):

- a learner goes through a whole demo track, reading every problem only through CO;
- an author creates a track, breaks it, fixes it and publishes it;
- all along, a second client retries every write the first one made, and gets the same
  answer without a second effect.

Answers come from Problem Bank's internal bundle (the test's oracle), never from CO.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from api.problem_types import CATALOGUE, type_uri
from tests.conftest import Stack
from tests.support import eventually
from tests.support.tutor import read_stream, serve_started

MATH_TRACK = "calculus-and-algebra"
WAIT = {"Prefer": "wait=30"}
WRONG = "12345"
Headers = dict[str, str]
Bundle = Callable[[str], Awaitable[dict[str, Any]]]
CATALOGUED = {type_uri(slug) for slug in CATALOGUE}


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["type"] == type_uri(slug), body
    assert body["type"] in CATALOGUED
    return body


async def _twice(
    first: httpx.AsyncClient, second: httpx.AsyncClient, method: str, url: str, **kw: Any
) -> tuple[httpx.Response, httpx.Response]:
    """The write by the first client, then the same write retried by the second."""
    a = await first.request(method, url, **kw)
    b = await second.request(method, url, **kw)
    return a, b


async def _session_until(
    client: httpx.AsyncClient, headers: Headers, sid: str, pid: str
) -> dict[str, Any]:
    body: dict[str, Any] = {}

    async def mastered() -> bool:
        body.clear()
        body.update((await client.get(f"/v1/sessions/{sid}", headers=headers)).json())
        items = {i["problem_id"]: i for m in body["modules"] for i in m["items"]}
        return bool(items[pid]["mastered"] or body["status"] != "active")

    await eventually(mastered, timeout=10, failure=lambda: f"{pid} never mastered: {body}")
    return body


async def test_a_learner_walks_a_whole_track_through_co_with_a_retrying_second_client(
    stack: Stack, auth: Headers, bundle_of: Bundle
) -> None:
    async with (
        serve_started(stack.app) as base,
        httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as first,
        httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as second,
    ):
        tracks = (await first.get("/v1/tracks")).json()["items"]
        track = next(t for t in tracks if t["slug"] == MATH_TRACK)

        started, again = await _twice(
            first, second, "POST", "/v1/sessions", json={"track_slug": MATH_TRACK}
        )
        assert (started.status_code, again.status_code) == (201, 200)
        session = started.json()
        sid = session["id"]
        assert again.json()["id"] == sid
        assert session["progress"]["items_total"] == track["items_total"]
        assert track["problem_count"] > track["items_total"]  # optional items exist

        seen: list[str] = []
        while session["status"] == "active":
            current = session["current"]
            pid = current["problem_id"]
            seen.append(pid)
            # The problem, read through CO only: embedded, and on its own link.
            read = await first.get(session["links"]["current_problem"])
            assert read.status_code == 200, read.text
            problem = read.json()
            assert problem == session["current_problem"]
            assert problem["statement"]
            assert problem["kind"] in ("math_expr", "numeric")
            assert problem["hints"]
            for hidden in ("expected_answer", "hidden_tests", "reference_solution"):
                assert hidden not in read.text

            if current["required"]:
                answer = (await bundle_of(pid))["expected_answer"]
                if len(seen) == 1:  # fail once first: the next hint opens
                    key = {"Idempotency-Key": f"wrong-{uuid.uuid4().hex}", **WAIT}
                    wrong_body = {"problem_id": pid, "session_id": sid, "answer": WRONG}
                    a, b = await _twice(
                        first, second, "POST", "/v1/submissions", json=wrong_body, headers=key
                    )
                    assert a.json()["verdict"] == "wrong_answer", a.text
                    assert b.json()["id"] == a.json()["id"]
                    reread = (await first.get(session["links"]["current_problem"])).json()
                    assert len(reread["hints"]) == len(problem["hints"]) + 1 == 2
                    # A tutor turn, retried by the second client: the same turn again.
                    body = {"session_id": sid, "problem_id": pid, "message": "What next?"}
                    key = {"Idempotency-Key": f"tutor-{uuid.uuid4().hex}"}
                    turn = await read_stream(
                        first, "POST", "/v1/tutor/messages", headers=key, json_body=body
                    )
                    retry = await read_stream(
                        second, "POST", "/v1/tutor/messages", headers=key, json_body=body
                    )
                    assert turn.status == retry.status == 200, (turn.raw, retry.raw)
                    assert turn.meta["message_id"] == retry.meta["message_id"]
                    assert turn.meta["hint_level"] == 2
                    assert turn.events[-1].event == retry.events[-1].event == "done"
                    # A level-2 hint after a failed attempt opens the approach.
                    reread = (await first.get(session["links"]["current_problem"])).json()
                    assert reread["hint_access"]["unlocked_level"] == 3
                    assert reread["hint_access"]["next_unlock"] is None
                key = {"Idempotency-Key": f"right-{uuid.uuid4().hex}", **WAIT}
                right_body = {"problem_id": pid, "session_id": sid, "answer": answer}
                a, b = await _twice(
                    first, second, "POST", "/v1/submissions", json=right_body, headers=key
                )
                assert a.status_code == b.status_code == 200, (a.text, b.text)
                assert a.json()["id"] == b.json()["id"]
                result = a.json()["result"]
                assert (result["verdict"], result["passed"], result["total"]) == (
                    "accepted",
                    None,
                    None,
                )
                assert a.json()["links"]["session"] == f"/v1/sessions/{sid}"
                reused = await second.post(
                    "/v1/submissions", json={**right_body, "answer": WRONG}, headers=key
                )
                _problem(reused, 422, "idempotency-key-reused")
                after = await _session_until(first, auth, sid, pid)
                if after["status"] != "active":
                    session = after
                    break

            moved, retried = await _twice(
                first,
                second,
                "POST",
                f"/v1/sessions/{sid}/advance",
                json={"from_problem_id": pid},
            )
            assert moved.status_code == retried.status_code == 200, (moved.text, retried.text)
            session = moved.json()
            assert retried.json()["seq"] == session["seq"]
            assert retried.json()["current"] == session["current"]

        assert session["status"] == "completed"
        # Every required item, and the optional ones met before the last required one.
        assert track["items_total"] <= len(seen) <= track["problem_count"]
        assert session["progress"]["percent"] == 100

        ended, ended_again = await _twice(first, second, "POST", f"/v1/sessions/{sid}/end")
        assert ended.status_code == ended_again.status_code == 200
        assert ended.json()["status"] == ended_again.json()["status"] == "completed"
        late = await first.post(
            "/v1/submissions",
            json={"problem_id": seen[0], "session_id": sid, "answer": "1"},
        )
        _problem(late, 409, "session-closed")
        _problem(
            await second.post(
                "/v1/tutor/messages",
                json={"session_id": sid, "problem_id": seen[0], "message": "still there?"},
            ),
            409,
            "session-closed",
        )

        # The list shows the session under the detail's names, with the same values.
        listed = (await first.get("/v1/sessions", params={"limit": 1})).json()["items"][0]
        detail = (await first.get(f"/v1/sessions/{sid}")).json()
        assert listed["id"] == sid
        for name, value in listed.items():
            if name == "current":
                assert value is None
                assert detail["current"] is None
            elif name == "links":
                assert value.items() <= detail["links"].items()
            else:
                assert detail[name] == value, name


def _module(slug: str, *problems: str, prerequisites: list[str] | None = None) -> dict[str, Any]:
    return {
        "slug": slug,
        "title": slug.title(),
        "prerequisites": prerequisites or [],
        "items": [{"problem_id": p} for p in problems],
    }


async def test_an_author_creates_breaks_fixes_and_publishes_with_a_retrying_second_client(
    stack: Stack, token_for: Callable[..., str], auth: Headers
) -> None:
    admin = {"Authorization": f"Bearer {token_for(f'author-{uuid.uuid4().hex[:6]}', ['admin'])}"}
    slug = f"walk-{uuid.uuid4().hex[:8]}"
    good = [
        _module("basics", "math-derivative-power"),
        _module("more", "math-solve-linear", prerequisites=["basics"]),
    ]
    broken = [
        _module("basics", "math-derivative-power", "no-such-problem", prerequisites=["more"]),
        _module("more", "py-two-sum", prerequisites=["basics"]),
    ]
    track = {"slug": slug, "title": "Walk", "domain": "math", "modules": good}
    async with (
        serve_started(stack.app) as base,
        httpx.AsyncClient(base_url=base, headers=admin, timeout=60) as first,
        httpx.AsyncClient(base_url=base, headers=admin, timeout=60) as second,
    ):
        created, again = await _twice(first, second, "POST", "/v1/tracks", json=track)
        assert created.status_code == 201, created.text
        _problem(again, 409, "track-exists")  # nothing created twice
        etag = created.headers["etag"]

        # Broken: every issue in one answer, and the draft is untouched.
        a, b = await _twice(
            first, second, "PUT", f"/v1/tracks/{slug}/draft", json={"modules": broken}
        )
        issues = {e["type"] for e in _problem(a, 422, "invalid-curriculum")["errors"]}
        assert issues == {"cycle", "unknown_problem", "domain_mismatch"}
        assert b.json()["errors"] == a.json()["errors"]
        unchanged = await first.get(f"/v1/tracks/{slug}/draft")
        assert unchanged.headers["etag"] == etag

        # Fixed: a retried PUT without If-Match saves the same draft again; with the
        # stale tag it is refused.
        fixed = {"modules": list(reversed(good[:1])) + good[1:]}
        a = await first.put(f"/v1/tracks/{slug}/draft", json=fixed, headers={"If-Match": etag})
        assert a.status_code == 200, a.text
        b = await second.put(f"/v1/tracks/{slug}/draft", json=fixed, headers={"If-Match": etag})
        _problem(b, 412, "precondition-failed")
        etag = a.headers["etag"]

        listed = (
            await first.get("/v1/authoring/tracks", params={"has_draft": "true", "limit": 100})
        ).json()
        assert any(t["slug"] == slug and t["draft"]["etag"] == etag for t in listed["items"])

        published, republished = await _twice(
            first, second, "POST", f"/v1/tracks/{slug}/publish", headers={"If-Match": etag}
        )
        assert published.status_code == republished.status_code == 200, republished.text
        assert published.json()["version"] == republished.json()["version"] == 1

        # A learner now reads the published problems through CO.
        learner = await first.post("/v1/sessions", json={"track_slug": slug}, headers=auth)
        assert learner.status_code == 201, learner.text
        assert learner.json()["current_problem"]["source"]["track_slug"] == slug
        await first.post(f"/v1/sessions/{learner.json()['id']}/end", headers=auth)
