"""What a learner sees while PostgreSQL, Redis or Temporal is down: a quick ``503``
``dependency-unavailable`` naming it, with ``Retry-After`` — never a 500 or a hang.

The app runs against a PostgreSQL behind a TCP proxy that the test cuts (as when the
server stops) and a ``redis-server`` of its own that the test kills and restarts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from api.problem_types import type_uri
from domain.settings import Settings
from tests.conftest import DevServices
from tests.support import RedisServer, TcpProxy, eventually
from tests.support.edge import assert_problem, client_of, new_app, running_app
from tests.support.tutor import SECRET_PROBLEM, new_session, publish_tutor_track

DEPENDENCY = type_uri("dependency-unavailable")
# Each request during an outage must answer well within this (bounded timeouts).
NO_HANG_SECONDS = 20


def assert_outage(r: httpx.Response, dependency: str) -> None:
    body = assert_problem(r, 503)
    assert body["type"] == DEPENDENCY, body
    assert dependency in str(body["detail"]), body
    assert int(r.headers["retry-after"]) > 0


class World:
    def __init__(
        self, app: FastAPI, client: httpx.AsyncClient, pg: TcpProxy, redis: RedisServer
    ) -> None:
        self.app, self.client, self.pg, self.redis = app, client, pg, redis

    async def call(self, method: str, path: str, **kw: object) -> httpx.Response:
        return await asyncio.wait_for(
            self.client.request(method, path, **kw), NO_HANG_SECONDS  # type: ignore[arg-type]
        )


@pytest.fixture
async def world(
    make_settings: Callable[..., Settings],
    database_url: str,
    task_queue: str,
    devservices: DevServices,
) -> AsyncIterator[World]:
    url = make_url(database_url)
    async with AsyncExitStack() as es:
        pg = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
        await pg.start()
        es.push_async_callback(pg.cut)
        redis = RedisServer()
        await redis.start()
        es.callback(redis.stop)
        settings = make_settings(
            db_url=url.set(host="127.0.0.1", port=pg.port).render_as_string(hide_password=False),
            redis_url=redis.url,
            temporal_task_queue=task_queue,
        )
        app = await es.enter_async_context(running_app(new_app(settings)))
        client = await es.enter_async_context(client_of(app, raise_app_exceptions=False))
        await publish_tutor_track(app, devservices.problem_bank)
        yield World(app, client, pg, redis)


async def test_postgres_down_is_a_503_naming_it_and_back_when_it_returns(
    world: World, auth: dict[str, str]
) -> None:
    assert (await world.call("GET", "/v1/tracks", headers=auth)).status_code == 200
    await world.pg.cut()

    assert_outage(await world.call("GET", "/v1/tracks", headers=auth), "postgres")
    body = {"problem_id": "math-derivative-power", "answer": "0"}
    key = {"Idempotency-Key": f"outage-{uuid.uuid4().hex}"}
    r = await world.call("POST", "/v1/submissions", json=body, headers={**auth, **key})
    assert_outage(r, "postgres")
    r = await world.call("GET", f"/v1/sessions/{uuid.uuid4()}", headers=auth)
    assert_outage(r, "postgres")
    ready = await world.call("GET", "/readyz")
    assert_outage(ready, "postgres")
    assert ready.json()["detail"] == "not reachable: postgres"

    await world.pg.start()

    async def tracks_answer() -> bool:
        return (await world.call("GET", "/v1/tracks", headers=auth)).status_code == 200

    await eventually(tracks_answer, timeout=15)
    assert (await world.call("GET", "/readyz")).status_code == 200


async def test_redis_down_is_a_503_naming_it_and_back_when_it_returns(
    world: World, auth: dict[str, str], user_id: str
) -> None:
    session_id = await new_session(world.app.state.resources.sessionmaker, user_id)
    turn = {"session_id": str(session_id), "problem_id": SECRET_PROBLEM, "message": "hello?"}
    world.redis.stop()

    r = await world.call("POST", "/v1/tutor/messages", json=turn, headers=auth)
    assert_outage(r, "redis")
    # Reads that need only PostgreSQL keep working (the rate limit falls back in process).
    assert (await world.call("GET", "/v1/tracks", headers=auth)).status_code == 200
    ready = await world.call("GET", "/readyz")
    assert_outage(ready, "redis")
    assert ready.json()["detail"] == "not reachable: redis"

    await world.redis.start()

    async def ready() -> bool:
        return (await world.call("GET", "/readyz")).status_code == 200

    await eventually(ready, timeout=15)
