"""Helpers of the edge tests (``test_edge_*.py`` and others): apps with settings of their
own, clients from addresses of their own.

Every unauthenticated request is rate limited by client address, and the limiter's counters
live in Redis, shared by every app of the run: each client here gets a random address so
that these tests neither spend nor depend on the quota of ``127.0.0.1`` (httpx's default).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from domain.settings import Settings

PROBLEM_JSON = "application/problem+json"


def random_ip() -> str:
    return "10." + ".".join(str(random.randint(0, 254)) for _ in range(3))


def new_app(settings: Settings) -> FastAPI:
    from api.app import create_app

    return create_app(settings)


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[FastAPI]:
    """``app`` with its lifespan running (resources made, limiter closed at the end)."""
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def client_of(
    app: FastAPI, *, ip: str | None = None, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(
        app=app, client=(ip or random_ip(), 40000), raise_app_exceptions=raise_app_exceptions
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://co.test") as client:
        yield client


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    """``response`` is an RFC 9457 problem of ``status`` carrying the request id."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert body["status"] == status
    assert str(body["type"]).startswith("https://co.scimigo.com/problems/")
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return dict(body)
