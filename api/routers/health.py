"""Liveness and readiness probes (no authentication: the load balancer calls them)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import ResourcesDep
from api.errors import problem_responses
from api.outage import POSTGRES, REDIS, TEMPORAL
from api.problem_types import DependencyUnavailable

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="PostgreSQL, Redis and Temporal are reachable",
    responses=problem_responses(503),
)
async def readyz(res: ResourcesDep) -> Health | JSONResponse:
    async def postgres() -> None:
        async with res.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await res.redis.ping()

    async def temporal() -> None:
        await res.temporal.service_client.check_health()

    names = (POSTGRES, REDIS, TEMPORAL)
    outcomes = await asyncio.gather(
        *(
            asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
            for check in (postgres, redis, temporal)
        ),
        return_exceptions=True,
    )
    failing = [n for n, o in zip(names, outcomes, strict=True) if isinstance(o, BaseException)]
    if failing:
        raise DependencyUnavailable("not reachable: " + ", ".join(failing))
    return Health(status="ready", checks=dict.fromkeys(names, "ok"))
