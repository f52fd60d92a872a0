"""Every route, while PostgreSQL, Redis or Temporal is down: a quick ``503
dependency-unavailable`` naming what is down (with ``Retry-After``), or a 4xx that needs
nothing that is down — never a 500, never a hang.

The walk takes its routes from ``app.routes`` (tests/support/route_walk.py), so a route
added tomorrow is walked tomorrow. The app reaches PostgreSQL and Temporal through TCP
proxies the test cuts, and a ``redis-server`` of its own that the test stops. Resources of
the walking learner (a session, a submission, a tutor turn) exist before each outage, so
the routes that take their ids get past the ownership check to the dependency.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from temporalio.client import Client

from api.problem_types import type_uri
from domain.settings import Settings
from tests.conftest import DevServices, Stack
from tests.support import RedisServer, TcpProxy, eventually
from tests.support.edge import client_of, new_app, running_app
from tests.support.route_walk import Endpoint, bearer, endpoints, public_paths, request_body

DEPENDENCY = type_uri("dependency-unavailable")
# Bounded timeouts: every answer during an outage comes well within this.
NO_HANG_SECONDS = 25


@dataclass
class Outcome:
    endpoint: Endpoint
    status: int
    body: str

    def __str__(self) -> str:
        return f"{self.endpoint}: {self.status} {self.body[:160]}"


@dataclass
class World:
    app: FastAPI
    client: httpx.AsyncClient
    pg: TcpProxy
    temporal: TcpProxy
    redis: RedisServer
    user: str
    headers: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    bodies: dict[tuple[str, str], Any] = field(default_factory=dict)

    async def walk(self) -> list[Outcome]:
        """Call every route but the public ones as the learner, with their resources."""
        public = public_paths(self.app)
        out: list[Outcome] = []
        # Ending the session last: the routes before it still find it open.
        for endpoint in sorted(endpoints(self.app), key=lambda e: e.path.endswith("/end")):
            if endpoint.path in public:
                continue
            kwargs: dict[str, Any] = {"headers": self.headers}
            body = request_body(self.app, endpoint, self.bodies)
            if body is not None:
                kwargs["json"] = body
            try:
                r = await asyncio.wait_for(
                    self.client.request(endpoint.method, endpoint.url(self.params), **kwargs),
                    NO_HANG_SECONDS,
                )
            except TimeoutError:
                out.append(Outcome(endpoint, 0, f"no answer within {NO_HANG_SECONDS} s"))
                continue
            out.append(Outcome(endpoint, r.status_code, r.text))
            if r.status_code == 503:
                assert int(r.headers.get("retry-after", "0")) > 0, f"{endpoint}: no Retry-After"
        return out


def check(outcomes: list[Outcome], dependency: str) -> list[Outcome]:
    """Fail on a 500, a hang, a 5xx that is not ``dependency-unavailable`` naming
    ``dependency``, or an error that is not problem+json; return the 503s."""
    bad = []
    for o in outcomes:
        if o.status == 0 or o.status >= 500 and o.status != 503:
            bad.append(o)
        elif o.status == 503 and (DEPENDENCY not in o.body or dependency not in o.body):
            bad.append(o)
        elif o.status >= 400 and '"type"' not in o.body:
            bad.append(o)
    assert not bad, f"while {dependency} is down:\n" + "\n".join(map(str, bad))
    return [o for o in outcomes if o.status == 503]


@pytest.fixture
async def world(
    stack: Stack,
    make_settings: Callable[..., Settings],
    database_url: str,
    temporal_client: Client,
    devservices: DevServices,
    token_for: Callable[..., str],
) -> AsyncIterator[World]:
    from worker.__main__ import build_worker, close_deps, make_deps

    url = make_url(database_url)
    target_host, target_port = temporal_client.service_client.config.target_host.rsplit(":", 1)
    async with AsyncExitStack() as es:
        pg = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
        temporal = TcpProxy(target_host, int(target_port))
        for proxy in (pg, temporal):
            await proxy.start()
            es.push_async_callback(proxy.cut)
        redis = RedisServer()
        await redis.start()
        es.callback(redis.stop)
        queue = f"co-outage-{uuid.uuid4().hex[:8]}"
        settings = make_settings(
            db_url=url.set(host="127.0.0.1", port=pg.port).render_as_string(hide_password=False),
            redis_url=redis.url,
            temporal_address=f"127.0.0.1:{temporal.port}",
            temporal_task_queue=queue,
        )
        app = await es.enter_async_context(running_app(new_app(settings)))
        client = await es.enter_async_context(client_of(app, raise_app_exceptions=False))
        # The worker reaches everything directly: only the API sees the outages.
        deps = make_deps(make_settings(redis_url=redis.url, temporal_task_queue=queue))
        es.push_async_callback(close_deps, deps)
        await es.enter_async_context(build_worker(temporal_client, deps))
        user = f"outage-{uuid.uuid4().hex[:8]}"
        w = World(app, client, pg, temporal, redis, user, bearer(token_for, user))
        await _resources(w)
        yield w


async def _resources(w: World) -> None:
    """A session in a demo track, a submission to its current problem, a tutor turn."""
    tracks = (await w.client.get("/v1/tracks", headers=w.headers)).json()["items"]
    slug = next(t["slug"] for t in tracks if t["domain"] == "math")
    r = await w.client.post("/v1/sessions", json={"track_slug": slug}, headers=w.headers)
    assert r.status_code == 201, r.text
    session = r.json()
    problem_id = session["current"]["problem_id"]
    submission = {"problem_id": problem_id, "answer": "0", "session_id": session["id"]}
    r = await w.client.post(
        "/v1/submissions",
        json=submission,
        headers={**w.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code in (200, 201, 202), r.text
    turn = {"session_id": session["id"], "problem_id": problem_id, "message": "a hint?"}
    r = await w.client.post("/v1/tutor/messages", json=turn, headers=w.headers)
    assert r.status_code == 200, r.text
    # The answer streams back as SSE; its first event, ``meta``, names the message.
    meta = next(line for line in r.text.splitlines() if line.startswith("data: "))
    message_id = json.loads(meta.removeprefix("data: "))["message_id"]
    w.params = {
        "slug": slug,
        "session_id": session["id"],
        "submission_id": (await _first(w, "/v1/submissions")),
        "message_id": message_id,
        "problem_id": problem_id,
    }
    other = next(t["slug"] for t in tracks if t["slug"] != slug)
    w.bodies = {
        ("POST", "/v1/sessions"): {"track_slug": other},
        ("POST", "/v1/submissions"): submission,
        ("POST", "/v1/tutor/messages"): turn,
        ("POST", "/v1/sessions/{session_id}/advance"): {"from_problem_id": problem_id},
    }


async def _first(w: World, path: str) -> str:
    r = await w.client.get(path, headers=w.headers)
    assert r.status_code == 200, r.text
    return str(r.json()["items"][0]["id"])


async def _ready(w: World) -> None:
    async def up() -> bool:
        return (await w.client.get("/readyz")).status_code == 200

    await eventually(up, timeout=20)


async def test_postgres_down_every_route_answers_503_or_a_4xx(world: World) -> None:
    await world.pg.cut()
    try:
        unavailable = check(await world.walk(), "postgres")
        # Everything a learner reads comes from PostgreSQL.
        reads = {str(o.endpoint) for o in unavailable if o.endpoint.method == "GET"}
        for needed in ("GET /v1/tracks", "GET /v1/sessions/{session_id}", "GET /v1/reviews"):
            assert needed in reads, sorted(reads)
    finally:
        await world.pg.start()
    await _ready(world)


async def test_redis_down_every_route_answers_503_or_works(world: World) -> None:
    world.redis.stop()
    try:
        unavailable = check(await world.walk(), "redis")
        # Only what lives in Redis is refused (the limit falls back in process).
        assert "POST /v1/tutor/messages" in {str(o.endpoint) for o in unavailable}
        assert all("tutor" in o.endpoint.path for o in unavailable), list(map(str, unavailable))
    finally:
        await world.redis.start()
    await _ready(world)


async def test_temporal_down_every_route_answers_503_or_works(world: World) -> None:
    await world.temporal.cut()
    try:
        unavailable = {str(o.endpoint) for o in check(await world.walk(), "temporal")}
        # What starts, signals or updates a workflow is refused; reads keep working.
        for needed in (
            "POST /v1/sessions",
            "POST /v1/sessions/{session_id}/advance",
            "POST /v1/sessions/{session_id}/end",
            "PUT /v1/reviews/settings",
        ):
            assert needed in unavailable, sorted(unavailable)
        assert not any(e.startswith("GET /v1/tracks") for e in unavailable), unavailable
    finally:
        await world.temporal.start()
    await _ready(world)
