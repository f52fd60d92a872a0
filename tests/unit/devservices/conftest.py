"""Fixtures for the dev services: the apps in-process (httpx ASGITransport), one shared
sympy worker for the whole session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devservices.eval import EvalSettings, MathWorkerPool, SandboxSettings
from devservices.eval import create_app as create_eval_app
from devservices.problem_bank import ProblemBankSettings
from devservices.problem_bank import create_app as create_bank_app

TOKEN = "unit-test-internal-token"
# A uid range of this test run's own, so that leak checks never see other runs' sandboxes.
TEST_UID_RANGE = (
    500_000 + (os.getpid() % 1000) * 1000,
    500_000 + (os.getpid() % 1000) * 1000 + 999,
)

Evaluate = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture(scope="session")
def math_pool() -> Iterator[MathWorkerPool]:
    pool = MathWorkerPool(1)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def eval_app(math_pool: MathWorkerPool) -> FastAPI:
    return create_eval_app(
        EvalSettings(
            internal_token=TOKEN,
            warm_up_math=False,
            sandbox=SandboxSettings(uid_range=TEST_UID_RANGE),
        ),
        math_pool=math_pool,
    )


@pytest.fixture(scope="session")
def bank_app() -> FastAPI:
    return create_bank_app(ProblemBankSettings(internal_token=TOKEN))


@pytest.fixture
async def eval_client(eval_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=eval_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://eval", timeout=60) as c:
        yield c


@pytest.fixture
async def bank_client(bank_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=bank_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bank", timeout=30) as c:
        yield c


@pytest.fixture
def evaluate(eval_client: httpx.AsyncClient) -> Evaluate:
    """POST an EvalRequest (as keyword arguments) and return the raw response JSON."""

    async def _evaluate(**request: Any) -> dict[str, Any]:
        response = await eval_client.post(
            "/v1/evaluate", json=request, headers={"X-Internal-Token": TOKEN}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return _evaluate


def python_request(
    code: str,
    function_name: str = "f",
    tests: list[tuple[list[Any], Any]] | None = None,
    hidden: list[tuple[list[Any], Any]] | None = None,
    *,
    time_limit_ms: int = 1000,
    memory_limit_mb: int = 64,
) -> dict[str, Any]:
    cases = [{"args": a, "expected": e} for a, e in (tests or [([], None)])]
    cases += [{"args": a, "expected": e, "hidden": True} for a, e in (hidden or [])]
    return {
        "kind": "python",
        "code": code,
        "function_name": function_name,
        "tests": cases,
        "limits": {"time_limit_ms": time_limit_ms, "memory_limit_mb": memory_limit_mb},
    }
