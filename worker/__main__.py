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
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.worker import Worker

from activities.deps import ActivityDeps
from domain.logs import configure_logging
from domain.settings import Settings, SettingsError, load_settings
from ops.logs import LogContextInterceptor
from ops.search_attributes import MissingSearchAttributes, require_search_attributes
from ops.temporal import connect, exit_without_teardown, metrics_runtime, tls_config
from ops.tracing import provider_from_settings, temporal_interceptors
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
        interceptors=[LogContextInterceptor()],
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_seconds),
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_cached_workflows=settings.worker_max_cached_workflows,
    )


def make_deps(settings: Settings, tracer_provider: TracerProvider | None = None) -> ActivityDeps:
    engine = make_engine(str(settings.db_url))
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.upstream_timeout_seconds, connect=5.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )
    if tracer_provider is not None:  # upstream calls become children of the activity's span
        HTTPXClientInstrumentor.instrument_client(http, tracer_provider=tracer_provider)
    return ActivityDeps(
        settings=settings,
        sessionmaker=make_sessionmaker(engine),
        redis=Redis.from_url(str(settings.redis_url), decode_responses=True),
        http=http,
    )


async def close_deps(deps: ActivityDeps) -> None:
    await deps.http.aclose()
    await deps.redis.aclose()
    await deps.sessionmaker.kw["bind"].dispose()


async def run(settings: Settings) -> None:
    provider = provider_from_settings(settings, "co-worker")
    client = await connect(
        settings,
        interceptors=temporal_interceptors(provider),
        runtime=metrics_runtime(settings.metrics_host, settings.worker_metrics_port),
    )
    if settings.worker_metrics_port:
        log.info(
            "metrics served",
            extra={"url": f"http://{settings.metrics_host}:{settings.worker_metrics_port}/metrics"},
        )
    await require_search_attributes(client, settings.temporal_namespace)
    deps = make_deps(settings, provider)
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
        if provider is not None:
            await asyncio.to_thread(provider.shutdown)  # flushes batched spans (blocking)
    log.info("worker stopped")


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        tls_config(settings)
        asyncio.run(run(settings))
    except (SettingsError, MissingSearchAttributes) as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # Drained and closed: skip interpreter teardown, which the SDK's core threads can abort.
    exit_without_teardown(main())
