"""Walk EVERY route of the app (from ``app.routes``, so a new route is covered the day it is
added) and check the two rules of the edge:

(a) without a token, every route but the health probes and the docs answers 401 problem+json;
(b) a user-owned resource (``/v1/sessions/{…}``, ``/v1/submissions/{…}``,
    ``/v1/tutor/messages/{…}``, ``/v1/reviews/{…}``) asked for by somebody else answers 404
    problem+json: never 200, never 403 (that would confirm it exists), never 500.

For (b) the resource is made by user A with a factory from ``RESOURCE_FACTORIES`` and asked
for by user B. A route without a factory is still called by B with made-up ids and must
answer 404 too. To cover a new resource, register an async factory under the route's path
template; it gets a ``WalkContext`` and returns the path parameters of a resource that A
owns, e.g.::

    async def a_session(ctx: WalkContext) -> dict[str, str]:
        r = await ctx.client.post("/v1/sessions", json={...}, headers=ctx.owner_headers)
        assert r.status_code == 201, r.text
        return {"session_id": r.json()["id"]}

    RESOURCE_FACTORIES["/v1/sessions/{session_id}"] = a_session
    RESOURCE_FACTORIES["/v1/sessions/{session_id}/advance"] = a_session

Routes that take a request body are called with a body made from their schema (enough to get
past validation to the ownership check); ``REQUEST_BODIES[(method, path)]`` overrides it.
Every call uses a fresh user (and address), so the walk never meets the rate limit.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Stack
from tests.support import eventually
from tests.support.edge import assert_problem, client_of
from tests.support.route_walk import (
    bearer,
    call,
    endpoints,
    example_from_schema,
    public_paths,
)


@dataclass
class WalkContext:
    """What a factory may use: the app's client, and user A who will own the resource."""

    client: httpx.AsyncClient
    app: FastAPI
    owner: str
    owner_headers: dict[str, str]
    token_for: Callable[..., str]


Factory = Callable[[WalkContext], Awaitable[dict[str, str]]]


async def a_published_problem(ctx: WalkContext) -> dict[str, Any]:
    """Some problem of a published track (the demo tracks are loaded by ``stack``)."""
    tracks = await ctx.client.get("/v1/tracks", headers=ctx.owner_headers)
    assert tracks.status_code == 200, tracks.text
    assert tracks.json()["items"], "no published track: the demo tracks are not loaded"
    slug = tracks.json()["items"][0]["slug"]
    track = await ctx.client.get(f"/v1/tracks/{slug}", headers=ctx.owner_headers)
    items = [item for module in track.json()["modules"] for item in module["items"]]
    return dict(sorted(items, key=lambda item: item["kind"] == "python")[0])


async def a_submission(ctx: WalkContext) -> dict[str, str]:
    problem = await a_published_problem(ctx)
    body: dict[str, Any] = {"problem_id": problem["problem_id"]}
    if problem["kind"] == "python":
        body.update(language="python", code="def f():\n    return 1\n")
    else:
        body["answer"] = "1"
    response = await ctx.client.post("/v1/submissions", json=body, headers=ctx.owner_headers)
    assert response.status_code in (200, 202), response.text
    return {"submission_id": response.json()["id"]}


async def a_session(ctx: WalkContext) -> dict[str, str]:
    tracks = await ctx.client.get("/v1/tracks", headers=ctx.owner_headers)
    slug = tracks.json()["items"][0]["slug"]
    r = await ctx.client.post("/v1/sessions", json={"track_slug": slug}, headers=ctx.owner_headers)
    assert r.status_code in (200, 201), r.text
    return {"session_id": r.json()["id"]}


async def a_session_and_its_problem(ctx: WalkContext) -> dict[str, str]:
    params = await a_session(ctx)
    r = await ctx.client.get(f"/v1/sessions/{params['session_id']}", headers=ctx.owner_headers)
    assert r.status_code == 200, r.text
    current = r.json()["current"]
    assert current is not None, r.text
    return {**params, "problem_id": current["problem_id"]}


async def a_tutor_message(ctx: WalkContext) -> dict[str, str]:
    params = await a_session_and_its_problem(ctx)
    body = {**params, "message": "How do I start?"}
    r = await ctx.client.post("/v1/tutor/messages", json=body, headers=ctx.owner_headers)
    assert r.status_code == 200, r.text  # the whole stream, read to its end
    listed = await ctx.client.get(
        f"/v1/sessions/{params['session_id']}/tutor", headers=ctx.owner_headers
    )
    assert listed.status_code == 200, listed.text
    return {"message_id": listed.json()["items"][0]["id"]}


async def a_review_card(ctx: WalkContext) -> dict[str, str]:
    """An accepted submission becomes a review card of its problem (for its owner only)."""
    problem = "py-sum-evens"
    body = {
        "problem_id": problem,
        "language": "python",
        "code": "def sum_evens(xs):\n    return sum(x for x in xs if x % 2 == 0)\n",
    }
    headers = {**ctx.owner_headers, "Prefer": "wait=30"}
    r = await ctx.client.post("/v1/submissions", json=body, headers=headers)
    assert r.json().get("verdict") == "accepted", r.text

    async def listed() -> bool:
        r = await ctx.client.get("/v1/reviews?status=all", headers=ctx.owner_headers)
        return any(i["problem_id"] == problem for i in r.json()["items"])

    await eventually(listed, timeout=30)
    return {"problem_id": problem}


#: path template -> factory of a resource owned by ``ctx.owner``; add yours here.
RESOURCE_FACTORIES: dict[str, Factory] = {
    "/v1/submissions/{submission_id}": a_submission,
    "/v1/sessions/{session_id}": a_session,
    "/v1/sessions/{session_id}/advance": a_session,
    "/v1/sessions/{session_id}/end": a_session,
    "/v1/sessions/{session_id}/tutor": a_session,
    "/v1/tutor/messages/{message_id}": a_tutor_message,
    "/v1/tutor/messages/{message_id}/stream": a_tutor_message,
    "/v1/reviews/{problem_id}/grade": a_review_card,
}

#: Routes whose owned resource is named in the query or the body rather than the path:
#: (method, path) -> factory returning (query parameters, body) that name A's resource.
QueryFactory = Callable[[WalkContext], Awaitable[tuple[dict[str, str], Any]]]


async def _problem_in_session(ctx: WalkContext) -> tuple[dict[str, str], Any]:
    params = await a_session_and_its_problem(ctx)
    return {"session_id": params["session_id"]}, None


async def _submissions_of_session(ctx: WalkContext) -> tuple[dict[str, str], Any]:
    """A's session with one submission of A's in it."""
    _, body = await _submission_in_session(ctx)
    r = await ctx.client.post("/v1/submissions", json=body, headers=ctx.owner_headers)
    assert r.status_code in (200, 202), r.text
    return {"session_id": body["session_id"]}, None


async def _submission_in_session(ctx: WalkContext) -> tuple[dict[str, str], Any]:
    params = await a_session_and_its_problem(ctx)
    problem = await ctx.client.get(
        f"/v1/problems/{params['problem_id']}", headers=ctx.owner_headers
    )
    assert problem.status_code == 200, problem.text
    if problem.json()["kind"] == "python":
        return {}, {**params, "language": "python", "code": "def f():\n    return 1\n"}
    return {}, {**params, "answer": "1"}


async def _tutor_turn_in_session(ctx: WalkContext) -> tuple[dict[str, str], Any]:
    params = await a_session_and_its_problem(ctx)
    return {}, {**params, "message": "Is this right?"}


OWNED_BY_REFERENCE: dict[tuple[str, str], QueryFactory] = {
    ("GET", "/v1/problems/{problem_id}"): _problem_in_session,
    ("GET", "/v1/submissions"): _submissions_of_session,
    ("POST", "/v1/submissions"): _submission_in_session,
    ("POST", "/v1/tutor/messages"): _tutor_turn_in_session,
}

#: (method, path template) -> a valid request body, when the one made from the schema is not.
REQUEST_BODIES: dict[tuple[str, str], Any] = {}


def test_the_walk_sees_the_routes_it_must(app: FastAPI) -> None:
    paths = {e.path for e in endpoints(app)}
    assert {"/healthz", "/v1/tracks", "/v1/submissions/{submission_id}"} <= paths
    stale = set(RESOURCE_FACTORIES) - paths
    assert not stale, f"factories registered for routes that no longer exist: {stale}"
    owned = {e.path for e in endpoints(app) if e.owned}
    assert owned <= set(RESOURCE_FACTORIES), f"owned routes without a factory: {owned}"
    pairs = {(e.method, e.path) for e in endpoints(app)}
    assert set(OWNED_BY_REFERENCE) <= pairs, set(OWNED_BY_REFERENCE) - pairs
    assert any(e.admin_only for e in endpoints(app)), "no admin route found"


async def test_every_route_needs_a_token(app: FastAPI) -> None:
    public = public_paths(app)
    failures: list[str] = []
    for endpoint in endpoints(app):
        if endpoint.path in public:
            continue
        async with client_of(app) as client:  # an address of its own: no shared quota
            response = await call(client, app, endpoint, endpoint.url({}), {}, with_body=False)
        if response.status_code != 401 or not response.headers.get("content-type", "").startswith(
            "application/problem+json"
        ):
            failures.append(f"{endpoint}: {response.status_code} {response.text[:200]}")
    assert not failures, "routes reachable without a token:\n" + "\n".join(failures)


async def test_public_routes_answer_without_a_token(app: FastAPI) -> None:
    async with client_of(app) as client:
        for path in sorted(public_paths(app)):
            response = await client.get(path)
            assert response.status_code == 200, f"{path}: {response.status_code}"


async def test_nobody_sees_somebody_elses_resources(
    stack: Stack, token_for: Callable[..., str]
) -> None:
    app = stack.app
    owned = [e for e in endpoints(app) if e.owned]
    assert owned, "no user-owned routes found: has the prefix list gone stale?"
    failures: list[str] = []
    for endpoint in owned:
        owner, intruder = f"walk-a-{uuid.uuid4().hex[:8]}", f"walk-b-{uuid.uuid4().hex[:8]}"
        async with client_of(app) as client:
            params: dict[str, str] = {}
            factory = RESOURCE_FACTORIES.get(endpoint.path)
            if factory is not None:
                ctx = WalkContext(client, app, owner, bearer(token_for, owner), token_for)
                params = await factory(ctx)
                if endpoint.method == "GET":  # the factory made something A can read
                    mine = await call(
                        client,
                        app,
                        endpoint,
                        endpoint.url(params),
                        ctx.owner_headers,
                        bodies=REQUEST_BODIES,
                    )
                    assert mine.status_code == 200, f"{endpoint} as its owner: {mine.text[:300]}"
            url = endpoint.url(params)
            response = await call(
                client, app, endpoint, url, bearer(token_for, intruder), bodies=REQUEST_BODIES
            )
        assert factory is not None, f"{endpoint}: no factory in RESOURCE_FACTORIES"
        origin = "A's resource"
        if response.status_code != 404:
            failures.append(
                f"{endpoint} ({origin}) as another user: {response.status_code} "
                f"{response.text[:200]}"
            )
        else:
            assert_problem(response, 404)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}},
            {"a": "x"},
        ),
        ({"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 3}]}, 3),
        ({"type": "array", "items": {"type": "boolean"}, "minItems": 2}, [False, False]),
        ({"type": "string", "enum": ["b", "c"]}, "b"),
    ],
)
def test_example_bodies_follow_the_schema(schema: dict[str, Any], expected: Any) -> None:
    assert example_from_schema(schema, {"components": {"schemas": {}}}) == expected


async def test_nobody_names_somebody_elses_session_in_a_query_or_body(
    stack: Stack, token_for: Callable[..., str]
) -> None:
    """A's session named by B in ``?session_id=`` or a body's ``session_id``: 404."""
    app = stack.app
    failures: list[str] = []
    for (method, path), factory in OWNED_BY_REFERENCE.items():
        owner, intruder = f"walk-a-{uuid.uuid4().hex[:8]}", f"walk-b-{uuid.uuid4().hex[:8]}"
        async with client_of(app) as client:
            ctx = WalkContext(client, app, owner, bearer(token_for, owner), token_for)
            query, body = await factory(ctx)
            url = path
            if "{problem_id}" in path:
                problem = await a_session_and_its_problem(ctx)
                url = path.format(problem_id=problem["problem_id"])
                query = {"session_id": problem["session_id"]}
            kwargs: dict[str, Any] = {"headers": bearer(token_for, intruder), "params": query}
            if body is not None:
                kwargs["json"] = body
            response = await client.request(method, url, **kwargs)
        if method == "GET" and response.status_code == 200 and "items" in response.json():
            # A list filtered by A's session shows B nothing (a filter, not a lookup).
            if response.json()["items"]:
                failures.append(f"{method} {path} lists A's resources to B: {response.text}")
        elif response.status_code != 404:
            failures.append(
                f"{method} {path} naming A's session as B: {response.status_code} "
                f"{response.text[:200]}"
            )
        else:
            assert_problem(response, 404)
    assert not failures, "\n".join(failures)


async def test_a_learner_cannot_call_admin_routes(
    app: FastAPI, token_for: Callable[..., str]
) -> None:
    admin_routes = [e for e in endpoints(app) if e.admin_only]
    assert len(admin_routes) >= 5, [str(e) for e in admin_routes]
    failures: list[str] = []
    for endpoint in admin_routes:
        learner = f"walk-learner-{uuid.uuid4().hex[:8]}"
        async with client_of(app) as client:
            headers = bearer(token_for, learner)
            response = await call(client, app, endpoint, endpoint.url({"slug": "x"}), headers)
        if response.status_code != 403:
            failures.append(f"{endpoint} as a learner: {response.status_code}")
        else:
            assert_problem(response, 403)
    assert not failures, "\n".join(failures)
