"""A SubmissionWorkflow changed without ``workflow.patched``: the replay test shows the
recorded histories catch such a change (kept in its own module for the sandbox, which
re-imports a workflow's module: under ``tests/support`` it would import that package's
helpers too, and the sandbox refuses some of them)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.contracts import (
        ActivityName,
        WorkflowName,
    )
    from domain.submissions import EvaluateInput, EvaluationOutcome, SubmissionInput


@workflow.defn(name=WorkflowName.SUBMISSION)
class SubmissionWorkflowWithoutBegin:
    @workflow.run
    async def run(self, data: SubmissionInput) -> None:
        # Evaluates straight away: the recorded command sequence starts with begin.
        await workflow.execute_activity(
            ActivityName.SUBMISSION_EVALUATE,
            EvaluateInput(submission_id=data.submission_id),
            result_type=EvaluationOutcome,
            start_to_close_timeout=timedelta(minutes=1),
        )
