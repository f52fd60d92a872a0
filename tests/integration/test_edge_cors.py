"""CORS: approved origins (CO_CORS_ORIGINS) get the headers, with credentials; others none."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from tests.support.edge import assert_problem, client_of

APPROVED = "http://localhost:3000"  # the test settings' CO_CORS_ORIGINS
STRANGER = "https://evil.example"


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(app) as c:
        yield c


def preflight(origin: str, headers: str = "authorization,idempotency-key") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers,
    }


async def test_preflight_from_an_approved_origin_gets_the_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/v1/submissions",
        headers=preflight(
            APPROVED, "authorization,content-type,idempotency-key,last-event-id,prefer"
        ),
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APPROVED
    assert response.headers["access-control-allow-credentials"] == "true"
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "idempotency-key", "last-event-id", "prefer"} <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]


async def test_preflight_from_another_origin_gets_no_cors_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options("/v1/submissions", headers=preflight(STRANGER))
    assert_problem(response, 400)
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


async def test_preflight_asking_for_an_unlisted_header_is_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options("/v1/tracks", headers=preflight(APPROVED, "x-evil"))
    assert_problem(response, 400)
    assert "access-control-allow-origin" not in response.headers


async def test_simple_request_from_an_approved_origin_is_readable(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    response = await client.get(
        "/v1/tracks", headers={"Origin": APPROVED, "Authorization": f"Bearer {token_for('c-1')}"}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APPROVED
    assert response.headers["access-control-allow-credentials"] == "true"
    exposed = response.headers["access-control-expose-headers"].lower()
    for name in ("x-request-id", "retry-after", "ratelimit", "x-ratelimit-remaining"):
        assert name in exposed


async def test_errors_to_an_approved_origin_are_readable(client: httpx.AsyncClient) -> None:
    # A browser app must be able to read a 401 (or 429) to react to it.
    response = await client.get("/v1/tracks", headers={"Origin": APPROVED})
    assert_problem(response, 401)
    assert response.headers["access-control-allow-origin"] == APPROVED


async def test_simple_request_from_another_origin_gets_no_cors_headers(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    response = await client.get(
        "/v1/tracks", headers={"Origin": STRANGER, "Authorization": f"Bearer {token_for('c-2')}"}
    )
    assert response.status_code == 200  # CORS is the browser's to enforce; we just say nothing
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers


async def test_wildcard_origin_is_never_sent(client: httpx.AsyncClient) -> None:
    for origin in (APPROVED, STRANGER, "null"):
        response = await client.options("/v1/tracks", headers=preflight(origin, "authorization"))
        assert response.headers.get("access-control-allow-origin") != "*"
