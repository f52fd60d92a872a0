"""``python -m worker``: run a Temporal worker until SIGTERM or SIGINT.

On a signal it stops polling and gives in-flight activities
``CO_WORKER_GRACEFUL_SHUTDOWN_SECONDS`` to finish before cancelling them, then
closes its clients and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import timedelta

import httpx
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.deps import ActivityDeps
from domain.logs import configure_logging
from domain.settings import Settings, SettingsError, load_settings
from store.db import make_engine, make_sessionmaker
from worker.registry import activities, workflows

log = logging.getLogger("co.worker")


def build_worker(client: Client, deps: ActivityDeps, *, task_queue: str | None = None) -> Worker:
    settings = deps.settings
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=list(workflows()),
        activities=list(activities(deps)),
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_seconds),
        max_concurrent_activities=50,
        max_cached_workflows=settings.worker_max_cached_workflows,
    )


def make_deps(settings: Settings) -> ActivityDeps:
    engine = make_engine(str(settings.db_url))
    return ActivityDeps(
        settings=settings,
        sessionmaker=make_sessionmaker(engine),
        redis=Redis.from_url(str(settings.redis_url), decode_responses=True),
        http=httpx.AsyncClient(
            timeout=httpx.Timeout(settings.upstream_timeout_seconds, connect=5.0),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        ),
    )


async def close_deps(deps: ActivityDeps) -> None:
    await deps.http.aclose()
    await deps.redis.aclose()
    await deps.sessionmaker.kw["bind"].dispose()


async def run(settings: Settings) -> None:
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
    deps = make_deps(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = build_worker(client, deps)
    try:
        async with worker:  # leaving the block calls worker.shutdown()
            log.info("worker started", extra={"task_queue": settings.temporal_task_queue})
            await stop.wait()
            log.info("worker stopping: draining in-flight activities")
    finally:
        await close_deps(deps)
    log.info("worker stopped")


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, json=settings.log_json)
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
