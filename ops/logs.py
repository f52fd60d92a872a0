"""Worker log lines carry the ids of the workflow and activity they belong to."""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)


class _ActivityLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        # Each activity runs in its own task: the binding ends with it.
        with structlog.contextvars.bound_contextvars(
            workflow_id=info.workflow_id,
            workflow_run_id=info.workflow_run_id,
            workflow_type=info.workflow_type,
            activity_id=info.activity_id,
            activity_type=info.activity_type,
            attempt=info.attempt,
        ):
            return await super().execute_activity(input)


class LogContextInterceptor(Interceptor):
    """Binds the activity's workflow and activity ids to the log context (structlog
    contextvars), so every line an activity's code logs, with any logger, names them.
    Workflow code logs through ``workflow.logger``, which adds ``temporal_workflow``."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLogContext(super().intercept_activity(next))
