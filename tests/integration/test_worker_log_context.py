"""Worker log lines written while an activity runs name its workflow and activity."""

from __future__ import annotations

import io
import json
import logging
import uuid
from datetime import timedelta

import structlog
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from domain.logs import configure_logging
from ops.logs import LogContextInterceptor


@activity.defn(name="test.log_something")
async def log_something() -> None:
    logging.getLogger("co.test.activity").warning("upstream slow")


@workflow.defn(name="LogContextWorkflow")
class LogContextWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(log_something, start_to_close_timeout=timedelta(seconds=10))


async def test_activity_log_lines_carry_workflow_and_activity_ids(
    temporal_client: Client,
) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    out = io.StringIO()
    try:
        configure_logging("INFO", json=True)
        root.handlers[0].setStream(out)  # type: ignore[attr-defined]
        queue = f"co-logs-{uuid.uuid4().hex[:8]}"
        async with Worker(
            temporal_client,
            task_queue=queue,
            workflows=[LogContextWorkflow],
            activities=[log_something],
            interceptors=[LogContextInterceptor()],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            workflow_id = f"log-context-{uuid.uuid4().hex[:8]}"
            await temporal_client.execute_workflow(
                LogContextWorkflow.run, id=workflow_id, task_queue=queue
            )
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        structlog.contextvars.clear_contextvars()
    lines = [json.loads(line) for line in out.getvalue().splitlines() if "upstream slow" in line]
    assert len(lines) == 1
    line = lines[0]
    assert line["workflow_id"] == workflow_id
    assert line["workflow_type"] == "LogContextWorkflow"
    assert line["activity_type"] == "test.log_something"
    assert line["activity_id"]
    assert line["attempt"] == 1
