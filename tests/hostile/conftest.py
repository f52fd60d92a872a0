"""The Eval app in-process, twice: as deployed (audit hook on) and with the audit hook off,
which is what a submission that got past the hook faces (the hook is not the boundary)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI

from devservices.eval import EvalSettings, MathWorkerPool, SandboxSettings
from devservices.eval import create_app as create_eval_app

TOKEN = "hostile-test-internal-token"
UID_RANGE = (
    600_000 + (os.getpid() % 1000) * 1000,
    600_000 + (os.getpid() % 1000) * 1000 + 999,
)


@pytest.fixture(scope="session")
def hostile_math_pool() -> Iterator[MathWorkerPool]:
    pool = MathWorkerPool(1)
    yield pool
    pool.close()


def eval_app(pool: MathWorkerPool, *, audit: bool, **sandbox: object) -> FastAPI:
    return create_eval_app(
        EvalSettings(
            internal_token=TOKEN,
            warm_up_math=False,
            math_timeout_s=2.0,
            sandbox=SandboxSettings(audit=audit, uid_range=UID_RANGE, **sandbox),  # type: ignore[arg-type]
        ),
        math_pool=pool,
    )


@pytest.fixture(scope="session", params=[True, False], ids=["audit-on", "audit-off"])
def hostile_eval_app(
    request: pytest.FixtureRequest, hostile_math_pool: MathWorkerPool, unaudited_eval_app: FastAPI
) -> FastAPI:
    return eval_app(hostile_math_pool, audit=True) if request.param else unaudited_eval_app


@pytest.fixture(scope="session")
def unaudited_eval_app(hostile_math_pool: MathWorkerPool) -> FastAPI:
    return eval_app(hostile_math_pool, audit=False)


def _client(app: FastAPI) -> httpx.AsyncClient:
    # raise_app_exceptions=False: a crash must show up as the 500 the caller would see.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(
        transport=transport, base_url="http://eval", timeout=60, headers={"X-Internal-Token": TOKEN}
    )


@pytest.fixture
async def eval_http(hostile_eval_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Both apps, one after the other."""
    async with _client(hostile_eval_app) as client:
        yield client


@pytest.fixture
async def unaudited_http(unaudited_eval_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Only the app without the audit hook (for what does not depend on it)."""
    async with _client(unaudited_eval_app) as client:
        yield client
