"""Authoring tracks through the real path: the API checks problem ids through
PublishTrackWorkflow (Problem Bank behind an activity) and publishes versions that
running sessions never see."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.support import record_history

Headers = dict[str, str]


@pytest.fixture
def admin(token_for: Callable[..., str]) -> Headers:
    return {"Authorization": f"Bearer {token_for(f'author-{uuid.uuid4().hex[:6]}', ['admin'])}"}


def new_slug() -> str:
    return f"authored-{uuid.uuid4().hex[:8]}"


def module(slug: str, *problems: str, prerequisites: list[str] | None = None) -> dict[str, Any]:
    return {
        "slug": slug,
        "title": slug.title(),
        "prerequisites": prerequisites or [],
        "items": [{"problem_id": p} for p in problems],
    }


def track(slug: str, modules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "slug": slug,
        "title": "Authored",
        "domain": "math",
        "description": "made by a test",
        "modules": modules,
    }


V1 = [
    module("first", "math-derivative-power", "math-solve-linear"),
    module("second", "math-expand-binomial", prerequisites=["first"]),
]
V2 = [
    module("warmup", "math-limit-sine-ratio"),
    module("first", "math-derivative-power", prerequisites=["warmup"]),
]


def problem_types(response: httpx.Response) -> list[tuple[str, list[str]]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [(e["type"], e["loc"]) for e in response.json()["errors"]]


async def test_learners_get_403_on_author_endpoints(stack: Stack, auth: Headers) -> None:
    client = stack.client
    slug = "calculus-and-algebra"
    calls = [
        client.post("/v1/tracks", json=track(new_slug(), V1), headers=auth),
        client.get(f"/v1/tracks/{slug}/draft", headers=auth),
        client.put(f"/v1/tracks/{slug}/draft", json={"modules": V1}, headers=auth),
        client.patch(f"/v1/tracks/{slug}", json={"title": "Mine now"}, headers=auth),
        client.post(f"/v1/tracks/{slug}/publish", headers=auth),
        client.get("/v1/authoring/tracks", headers=auth),
    ]
    for response in [await c for c in calls]:
        assert response.status_code == 403, (response.request.url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(f"/v1/tracks/{slug}", headers=auth)).json()["title"] != "Mine now"


async def test_an_invalid_curriculum_is_refused_with_every_issue(
    stack: Stack, admin: Headers
) -> None:
    client = stack.client
    # Unknown problems: found by asking Problem Bank through the workflow.
    unknown = await client.post(
        "/v1/tracks",
        json=track(new_slug(), [module("m", "math-solve-linear", "no-such-problem")]),
        headers=admin,
    )
    assert problem_types(unknown) == [
        ("unknown_problem", ["modules", "0", "items", "1", "problem_id"])
    ]
    assert "unknown problem id 'no-such-problem'" in unknown.json()["detail"]
    # Structure, unknown ids and problems of another domain: all in one answer.
    broken = await client.post(
        "/v1/tracks",
        json=track(
            new_slug(),
            [
                module("a", "math-solve-linear", "nope-missing", prerequisites=["b"]),
                module("b", "py-two-sum", prerequisites=["a"]),
                module("c"),
            ],
        ),
        headers=admin,
    )
    assert sorted(problem_types(broken)) == [
        ("cycle", ["modules"]),
        ("domain_mismatch", ["modules", "1", "items", "0", "problem_id"]),
        ("empty_module", ["modules", "2", "items"]),
        ("unknown_problem", ["modules", "0", "items", "1", "problem_id"]),
    ]
    assert broken.json()["type"].endswith("/invalid-curriculum")
    assert "a -> b -> a" in str(broken.json()["errors"])
    assert "py-two-sum' is a coding problem; this is a math track" in str(broken.json())
    # Nothing was created by refused requests.
    slug = new_slug()
    await client.post("/v1/tracks", json=track(slug, [module("m")]), headers=admin)
    assert (await client.get(f"/v1/tracks/{slug}/draft", headers=admin)).status_code == 404

    created = await client.post("/v1/tracks", json=track(slug, V1), headers=admin)
    assert created.status_code == 201, created.text
    put = await client.put(
        f"/v1/tracks/{slug}/draft",
        json={"modules": [module("m", "math-solve-linear", "math-solve-linear")]},
        headers=admin,
    )
    assert problem_types(put) == [("duplicate_item", ["modules", "0", "items", "1", "problem_id"])]
    assert (await client.post("/v1/tracks", json=track(slug, V1), headers=admin)).status_code == 409


async def test_publishing_a_new_version_keeps_running_sessions_on_theirs(
    stack: Stack, admin: Headers, auth: Headers, token_for: Callable[..., str]
) -> None:
    client = stack.client
    slug = new_slug()
    created = await client.post("/v1/tracks", json=track(slug, V1), headers=admin)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/v1/tracks/{slug}/draft"
    draft = created.json()
    assert draft["published_version"] is None
    first_item = draft["draft"]["modules"][0]["items"][0]
    assert first_item["title"] == "Derivative of a polynomial"  # facts from Problem Bank
    assert first_item["kind"] == "math_expr"
    # Learners see only published versions.
    assert (await client.get(f"/v1/tracks/{slug}", headers=auth)).status_code == 404
    assert (
        await client.post("/v1/sessions", json={"track_slug": slug}, headers=auth)
    ).status_code == 404

    v1 = await client.post(f"/v1/tracks/{slug}/publish", headers=admin)
    assert v1.status_code == 200, v1.text
    assert v1.json()["version"] == 1
    assert [m["slug"] for m in v1.json()["modules"]] == ["first", "second"]
    assert (await client.post(f"/v1/tracks/{slug}/publish", headers=admin)).status_code == 409

    old = await client.post("/v1/sessions", json={"track_slug": slug}, headers=auth)
    assert old.status_code == 201
    old_id = old.json()["id"]
    assert old.json()["track_version"] == 1

    put = await client.put(f"/v1/tracks/{slug}/draft", json={"modules": V2}, headers=admin)
    assert put.status_code == 200, put.text
    assert put.json()["draft"]["version"] == 2
    assert put.json()["published_version"] == 1
    patched = await client.patch(
        f"/v1/tracks/{slug}", json={"title": "Authored, revised"}, headers=admin
    )
    assert patched.json()["title"] == "Authored, revised"
    v2 = await client.post(f"/v1/tracks/{slug}/publish", headers=admin)
    assert v2.status_code == 200, v2.text
    assert v2.json()["version"] == 2
    assert (await client.get(f"/v1/tracks/{slug}", headers=auth)).json()["version"] == 2
    query = f"WorkflowType = 'PublishTrackWorkflow' AND CoTrackSlug = '{slug}'"
    published = [w.id async for w in stack.temporal.list_workflows(query)]
    if published:
        await record_history(stack.temporal, published[0], "publish_track_version")

    # The running session stays on version 1 and keeps working on it.
    mine = (await client.get(f"/v1/sessions/{old_id}", headers=auth)).json()
    assert mine["track_version"] == 1
    assert [m["slug"] for m in mine["modules"]] == ["first", "second"]
    # ...and reads its problems as version 1 snapshotted them.
    assert mine["current_problem"]["source"]["track_version"] == 1
    assert mine["current_problem"]["id"] == mine["current"]["problem_id"]
    r = await client.post(
        "/v1/submissions",
        json={"problem_id": mine["current"]["problem_id"], "session_id": old_id, "answer": "5"},
        headers={**auth, "Prefer": "wait=30"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"
    only_in_v2 = await client.post(
        "/v1/submissions",
        json={"problem_id": "math-limit-sine-ratio", "session_id": old_id, "answer": "3"},
        headers=auth,
    )
    assert only_in_v2.status_code == 409
    assert only_in_v2.json()["errors"][0]["type"] == "not_in_track"
    # Outside a session, a problem reads as the newest published version holding it.
    outside = await client.get("/v1/problems/math-limit-sine-ratio", headers=auth)
    assert outside.status_code == 200, outside.text
    assert outside.json()["source"]["track_slug"] == slug
    assert outside.json()["source"]["track_version"] == 2
    # Starting again returns the running session, still on version 1.
    again = await client.post("/v1/sessions", json={"track_slug": slug}, headers=auth)
    assert (again.status_code, again.json()["track_version"]) == (200, 1)

    # A new learner gets version 2.
    other = {"Authorization": f"Bearer {token_for(f'learner-{uuid.uuid4().hex[:6]}')}"}
    new = await client.post("/v1/sessions", json={"track_slug": slug}, headers=other)
    assert new.status_code == 201
    assert new.json()["track_version"] == 2
    assert new.json()["track_title"] == "Authored, revised"
    assert new.json()["current"]["problem_id"] == "math-limit-sine-ratio"
    assert [m["slug"] for m in new.json()["modules"]] == ["warmup", "first"]
    for sid, headers in ((old_id, auth), (new.json()["id"], other)):
        await client.post(f"/v1/sessions/{sid}/end", headers=headers)


async def test_drafts_are_listed_versioned_and_published_only_as_last_read(
    stack: Stack, admin: Headers
) -> None:
    client = stack.client
    slug = new_slug()
    created = await client.post("/v1/tracks", json=track(slug, V1), headers=admin)
    assert created.status_code == 201, created.text
    first = created.json()["draft"]
    assert created.headers["etag"] == first["etag"]
    assert first["updated_at"] == first["created_at"]

    listed = await client.get("/v1/authoring/tracks", params={"has_draft": "true"}, headers=admin)
    mine = [t for t in listed.json()["items"] if t["slug"] == slug]
    assert len(mine) == 1
    assert mine[0]["draft"]["etag"] == first["etag"]
    assert mine[0]["published_version"] is None
    slugs = [t["slug"] for t in listed.json()["items"]]
    assert slugs == sorted(slugs)
    page = await client.get("/v1/authoring/tracks", params={"limit": 1}, headers=admin)
    following = await client.get(
        "/v1/authoring/tracks",
        params={"limit": 1, "cursor": page.json()["next_cursor"]},
        headers=admin,
    )
    assert following.json()["items"][0]["slug"] > page.json()["items"][0]["slug"]

    put = await client.put(
        f"/v1/tracks/{slug}/draft",
        json={"modules": V2},
        headers={**admin, "If-Match": first["etag"]},
    )
    assert put.status_code == 200, put.text
    second = put.json()["draft"]
    assert second["etag"] != first["etag"]
    assert put.headers["etag"] == second["etag"]
    assert second["updated_at"] > first["updated_at"]
    assert second["created_at"] == first["created_at"]
    assert second["version"] == 1

    stale = await client.post(
        f"/v1/tracks/{slug}/publish", headers={**admin, "If-Match": first["etag"]}
    )
    assert stale.status_code == 412, stale.text
    assert stale.json()["type"].endswith("/precondition-failed")
    stale_put = await client.put(
        f"/v1/tracks/{slug}/draft",
        json={"modules": V1},
        headers={**admin, "If-Match": first["etag"]},
    )
    assert stale_put.status_code == 412
    published = await client.post(
        f"/v1/tracks/{slug}/publish", headers={**admin, "If-Match": second["etag"]}
    )
    assert published.status_code == 200, published.text
    assert published.json()["version"] == 1
    assert published.json()["items_total"] == 2
    after = await client.get(f"/v1/tracks/{slug}/draft", headers=admin)
    assert after.json()["draft"] is None
    assert "etag" not in after.headers
    # The next draft is numbered after the published version.
    again = await client.put(f"/v1/tracks/{slug}/draft", json={"modules": V1}, headers=admin)
    assert again.json()["draft"]["version"] == 2
