"""A workflows-only Worker inside another process (the API), for eager workflow start.

``request_eager_start`` hands a new run's first workflow task straight back in the start
call's answer, but only to a Worker that polls that task queue *through the same client*
in the same process. With ``CO_API_WORKFLOW_WORKER=true`` the API runs such a Worker: it
registers every workflow (it shares the task queue with ``python -m worker`` and may be
handed any workflow's task) and no activity, so evaluation, upstream calls and database
writes stay in the worker service. It stops with the API's lifespan (shutdown lets a
workflow task in progress finish; nothing else is in flight in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from temporalio.client import Client
from temporalio.worker import Worker

from domain.settings import Settings
from ops.logs import LogContextInterceptor
from worker.registry import workflows

log = logging.getLogger("co.api.worker")

CONNECT_RETRY_SECONDS = 1.0


async def run_workflow_worker(
    settings: Settings,
    connect: Callable[[], Awaitable[Client]],
    on_connected: Callable[[Client], None],
) -> None:
    """Run until cancelled. A Worker cannot use the API's lazy client, and eager start
    needs the starting client to be the worker's: connect one (retrying while Temporal
    boots), hand it to the API with ``on_connected``, then poll."""
    while True:
        try:
            client = await connect()
            break
        except Exception as exc:  # noqa: BLE001 - Temporal not up yet: keep trying
            log.info("in-process worker waiting for Temporal", extra={"error": repr(exc)[:200]})
            await asyncio.sleep(CONNECT_RETRY_SECONDS)
    worker = Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=list(workflows()),
        interceptors=[LogContextInterceptor()],
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
    )
    async with worker:  # leaving the block (cancelled) shuts it down
        on_connected(client)
        log.info("in-process workflow worker started")
        await asyncio.Event().wait()


@contextlib.asynccontextmanager
async def workflow_worker(
    settings: Settings,
    connect: Callable[[], Awaitable[Client]],
    on_connected: Callable[[Client], None],
) -> AsyncIterator[None]:
    """The in-process worker for the duration of the block, when the setting asks for it."""
    if not settings.api_workflow_worker:
        yield
        return

    def died(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("in-process workflow worker stopped", exc_info=task.exception())

    task = asyncio.create_task(
        run_workflow_worker(settings, connect, on_connected), name="co-workflow-worker"
    )
    task.add_done_callback(died)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
