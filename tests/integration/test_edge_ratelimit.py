"""The per-user rate limit: shared through Redis, exact at window boundaries, headers on every
answer, 429 problems with Retry-After, health probes exempt, in-memory fallback without Redis."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from api.ratelimit import RateLimiter
from domain.settings import Settings
from tests.conftest import REDIS_URL
from tests.support import RedisServer, eventually
from tests.support.edge import assert_problem, client_of, new_app, running_app

LIMIT = 10
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/15"  # nothing listens on port 1


@pytest.fixture(scope="module")
async def limited_app(make_settings: Callable[..., Settings]) -> AsyncIterator[FastAPI]:
    async with running_app(new_app(make_settings(rate_limit_per_minute=LIMIT))) as app:
        yield app


@pytest.fixture
async def client(limited_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(limited_app) as c:
        yield c


def bearer(token_for: Callable[..., str], user: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user or f'rl-{uuid.uuid4().hex[:8]}')}"}


async def burst(client: httpx.AsyncClient, n: int, **kwargs: object) -> list[httpx.Response]:
    return list(await asyncio.gather(*(client.get("/v1/tracks", **kwargs) for _ in range(n))))  # type: ignore[arg-type]


async def test_every_answer_reports_the_quota(app: FastAPI, token_for: Callable[..., str]) -> None:
    async with client_of(app) as client:
        headers = bearer(token_for)
        first, second = [await client.get("/v1/tracks", headers=headers) for _ in range(2)]
    assert first.status_code == 200, first.text
    limit = app.state.rate_limiter.limit
    assert first.headers["ratelimit-policy"] == f'"default";q={limit};w=60'
    assert first.headers["ratelimit"].startswith(f'"default";r={limit - 1};t=')
    assert second.headers["x-ratelimit-limit"] == str(limit)
    assert second.headers["x-ratelimit-remaining"] == str(limit - 2)
    reset = int(second.headers["x-ratelimit-reset"])
    assert time.time() < reset <= time.time() + 61


async def test_burst_of_twice_the_limit_lets_exactly_the_limit_through(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    responses = await burst(client, 2 * LIMIT, headers=bearer(token_for))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * LIMIT + [429] * LIMIT
    refused = next(r for r in responses if r.status_code == 429)
    body = assert_problem(refused, 429)
    assert body["type"] == "https://co.scimigo.com/problems/too-many-requests"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit"].startswith('"default";r=0;t=')


async def test_limits_are_per_user(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    await burst(client, LIMIT + 1, headers=bearer(token_for, "greedy-user"))
    assert (await client.get("/v1/tracks", headers=bearer(token_for))).status_code == 200
    assert (
        await client.get("/v1/tracks", headers=bearer(token_for, "greedy-user"))
    ).status_code == 429


async def test_without_a_token_the_client_address_is_limited(limited_app: FastAPI) -> None:
    async with client_of(limited_app) as noisy, client_of(limited_app) as quiet:
        statuses = sorted(r.status_code for r in await burst(noisy, LIMIT + 5))
        assert statuses == [401] * LIMIT + [429] * 5
        assert (await quiet.get("/v1/tracks")).status_code == 401


async def test_bad_tokens_count_against_the_address(
    limited_app: FastAPI, other_key_pair: tuple[str, str]
) -> None:
    from tools.devkeys import make_token

    async with client_of(limited_app) as client:
        for i in range(LIMIT + 1):  # a new forged identity each time does not help
            forged = {"Authorization": f"Bearer {make_token(other_key_pair[0], f'x{i}')}"}
            response = await client.get("/v1/tracks", headers=forged)
        assert response.status_code == 429


async def test_health_probes_are_not_limited(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz"):
        for _ in range(LIMIT + 5):
            response = await client.get(path)
            assert response.status_code == 200, response.text
            assert "ratelimit" not in response.headers


async def test_no_window_boundary_lets_twice_the_limit_through() -> None:
    """A fixed window would admit LIMIT just before a boundary and LIMIT just after it."""
    limiter = RateLimiter(REDIS_URL, limit=LIMIT, window_seconds=2)
    key = f"boundary-{uuid.uuid4().hex}"
    try:
        start = time.monotonic()
        first = [await limiter.hit(key) for _ in range(LIMIT)]
        assert all(d.allowed and d.shared for d in first)
        await asyncio.sleep(max(0.0, start + 1.2 - time.monotonic()))  # past any 1 s boundary
        late = await asyncio.gather(*(limiter.hit(key) for _ in range(2 * LIMIT)))
        assert not any(d.allowed for d in late)
        assert all(1 <= d.reset_after <= 2 for d in late)
        await asyncio.sleep(max(0.0, start + 2.3 - time.monotonic()))  # the first ones left
        later = await asyncio.gather(*(limiter.hit(key) for _ in range(2 * LIMIT)))
        assert sum(d.allowed for d in later) == LIMIT
    finally:
        await limiter.aclose()


async def test_replicas_share_one_limit_atomically() -> None:
    """120 requests at once, through two limiters (two API replicas): exactly 60 pass."""
    replicas = [RateLimiter(REDIS_URL, limit=60) for _ in range(2)]
    key = f"replicas-{uuid.uuid4().hex}"
    try:
        decisions = await asyncio.gather(*(replicas[i % 2].hit(key) for i in range(120)))
        assert sum(d.allowed for d in decisions) == 60
        assert all(d.shared for d in decisions)
    finally:
        for limiter in replicas:
            await limiter.aclose()


async def test_without_redis_the_limit_falls_back_to_process_memory(
    make_settings: Callable[..., Settings],
    token_for: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(rate_limit_per_minute=LIMIT, redis_url=CLOSED_PORT_REDIS)
    with caplog.at_level(logging.WARNING, logger="co.api.ratelimit"):
        async with running_app(new_app(settings)) as app, client_of(app) as client:
            started = time.monotonic()
            responses = await burst(client, 2 * LIMIT, headers=bearer(token_for))
            elapsed = time.monotonic() - started
            assert app.state.rate_limiter.degraded
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * LIMIT + [429] * LIMIT
    assert elapsed < 5  # one failed connection, then memory: Redis is not retried per request
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once per request


async def test_after_a_redis_restart_the_replicas_share_one_limit_again() -> None:
    """Redis dies: each replica limits in its own memory. Redis comes back (empty, as a
    restarted server is): both hand back to it, and the shared limit is exact again."""
    redis = RedisServer()
    await redis.start()
    replicas = [RateLimiter(redis.url, limit=60, retry_shared_after=0.2) for _ in range(2)]
    try:
        assert all([(await r.hit("warm-up")).shared for r in replicas])
        redis.stop()
        down = await asyncio.gather(*(r.hit(f"down-{uuid.uuid4().hex}") for r in replicas))
        assert not any(d.shared for d in down)
        assert all(r.degraded for r in replicas)

        await redis.start()

        async def both_shared() -> bool:
            return all([(await r.hit("probe")).shared for r in replicas])

        await eventually(both_shared, timeout=10)
        assert not any(r.degraded for r in replicas)
        key = f"back-{uuid.uuid4().hex}"
        decisions = await asyncio.gather(*(replicas[i % 2].hit(key) for i in range(120)))
        assert sum(d.allowed for d in decisions) == 60
        assert all(d.shared for d in decisions)
    finally:
        for limiter in replicas:
            await limiter.aclose()
        redis.stop()


async def test_concurrent_hits_share_round_trips_and_stay_exact() -> None:
    """Hits waiting at the same moment go to Redis in one pipeline, each still its own
    atomic script: 90 at once for a limit of 30 admit exactly 30, in fewer round trips than
    hits; a Redis that lost its scripts (new, restarted, flushed) is taught them again."""
    redis = RedisServer()  # of its own: SCRIPT FLUSH is server-wide
    await redis.start()
    limiter = RateLimiter(redis.url, limit=30)
    batches: list[int] = []
    send = limiter._hits._pipeline

    async def counted(keys: list[str]) -> list[object]:
        batches.append(len(keys))
        return await send(keys)

    limiter._hits._pipeline = counted  # type: ignore[method-assign]
    try:
        key = f"batched-{uuid.uuid4().hex}"
        decisions = await asyncio.gather(*(limiter.hit(key) for _ in range(90)))
        assert all(d.shared for d in decisions)
        assert sum(d.allowed for d in decisions) == 30
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(30))
        assert sum(batches) >= 90  # every hit was sent (the first batch twice: NOSCRIPT)
        assert len(batches) < 90
        assert max(batches) > 1

        await limiter._redis.script_flush()
        after = await asyncio.gather(*(limiter.hit(f"flushed-{i}") for i in range(5)))
        assert all(d.allowed and d.shared for d in after)
        assert not limiter.degraded
    finally:
        await limiter.aclose()
        redis.stop()
