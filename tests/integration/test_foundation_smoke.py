from __future__ import annotations

import httpx


async def test_healthz_needs_no_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {}}


async def test_readyz_reports_every_dependency(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"postgres": "ok", "redis": "ok", "temporal": "ok"}


async def test_tracks_without_token_is_401_problem(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/tracks")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["request_id"] == r.headers["x-request-id"]


async def test_tracks_with_token(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.get("/v1/tracks", headers=auth)
    assert r.status_code == 200, r.text
