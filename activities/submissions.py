"""Activities of SubmissionWorkflow: status writes, evaluation, the result.

``evaluate`` fetches the problem bundle (with hidden tests) from Problem Bank and
sends it to Eval inside one activity, and returns only the redacted outcome, so
hidden tests never enter workflow history, a log line or a response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deps import ActivityDeps
from activities.evaluation_status import EvaluationStatus
from activities.upstream import UpstreamClient, bound_server_errors
from domain.contracts import (
    ActivityName,
    FailureType,
)
from domain.submissions import (
    BeginInput,
    EvaluateInput,
    EvaluationOutcome,
    PersistResultInput,
    RetryReason,
    SubmissionFacts,
    SubmissionStatus,
    redact_response,
)
from domain.upstream import EvalKind, EvalLimits, EvalRequest, EvalResponse, EvalTest, ProblemBundle
from store import submissions as repo
from store.models import Submission

log = logging.getLogger("co.activities.submissions")

HEARTBEAT_SECONDS = 2.0
# Eval may run every test up to its time limit; leave room on top of that.
EVAL_TIMEOUT_MARGIN_SECONDS = 15.0


@contextlib.asynccontextmanager
async def heartbeating(every: float = HEARTBEAT_SECONDS) -> AsyncIterator[None]:
    """Heartbeat in the background while a long call is in flight, so a dead worker
    is noticed within the heartbeat timeout rather than the whole activity timeout."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def build_eval_request(submission: Submission, bundle: ProblemBundle) -> EvalRequest:
    problem = bundle.problem
    limits = EvalLimits(
        time_limit_ms=problem.time_limit_ms, memory_limit_mb=problem.memory_limit_mb
    )
    if problem.kind == EvalKind.python:
        tests = [EvalTest(args=t.args, expected=t.expected) for t in problem.public_tests]
        tests += [
            EvalTest(args=t.args, expected=t.expected, hidden=True) for t in bundle.hidden_tests
        ]
        return EvalRequest(
            kind=problem.kind,
            code=submission.code,
            function_name=problem.function_name,
            tests=tests,
            limits=limits,
        )
    return EvalRequest(
        kind=problem.kind,
        answer=submission.answer,
        expected_answer=bundle.expected_answer,
        variables=list(problem.variables),
        tolerance=problem.tolerance,
        choices=[c.id for c in problem.choices],
        limits=limits,
    )


class SubmissionActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self._db = deps.sessionmaker
        settings = deps.settings
        self._bank = UpstreamClient(
            deps.http, "Problem Bank", str(settings.problem_bank_base), settings.problem_bank_token
        )
        self._eval = UpstreamClient(deps.http, "Eval", str(settings.eval_base), settings.eval_token)

    @activity.defn(name=ActivityName.SUBMISSION_BEGIN)
    async def begin(self, data: BeginInput) -> SubmissionFacts:
        """Mark the submission running and return its facts; retryable until the API
        has committed the row (it starts the workflow first)."""
        async with self._db() as db, db.begin():
            submission = await db.get(Submission, data.submission_id)
            if submission is None:
                raise ApplicationError(
                    f"submission {data.submission_id} is not recorded yet",
                    type=FailureType.SUBMISSION_NOT_RECORDED,
                )
            await repo.set_status(db, data.submission_id, SubmissionStatus.running)
            return SubmissionFacts(
                problem_id=submission.problem_id,
                kind=EvalKind(submission.kind),
                session_id=submission.session_id,
            )

    @activity.defn(name=ActivityName.SUBMISSION_EVALUATE)
    async def evaluate(self, data: EvaluateInput) -> EvaluationOutcome:
        async with self._db() as db:
            submission = await db.get(Submission, data.submission_id)
        if submission is None:
            raise ApplicationError(
                f"submission {data.submission_id} does not exist",
                type=FailureType.SUBMISSION_MISSING,
                non_retryable=True,
            )
        status = EvaluationStatus(self._db, data.submission_id)
        await status.started()
        try:
            response, kind = await self._ask_eval(submission, status)
        except ApplicationError as exc:
            raise bound_server_errors(exc, activity.info().attempt) from None
        outcome = redact_response(response, kind)
        log.info(
            "submission evaluated",
            extra={"submission_id": str(data.submission_id), "verdict": outcome.verdict.value},
        )
        return outcome

    async def _ask_eval(
        self, submission: Submission, status: EvaluationStatus
    ) -> tuple[EvalResponse, EvalKind]:
        async with heartbeating():
            async with status.failing_as(RetryReason.problem_bank_unavailable):
                bundle = await self._bank.call(
                    "GET", f"/internal/v1/problems/{submission.problem_id}", ProblemBundle
                )
            request = build_eval_request(submission, bundle)
            n_tests = max(1, len(request.tests))
            timeout = n_tests * request.limits.time_limit_ms / 1000 + EVAL_TIMEOUT_MARGIN_SECONDS
            async with status.failing_as(RetryReason.eval_unavailable):
                response = await self._eval.call(
                    "POST",
                    "/v1/evaluate",
                    EvalResponse,
                    json=request.model_dump(mode="json"),
                    timeout=timeout,
                )
        return response, request.kind

    @activity.defn(name=ActivityName.SUBMISSION_PERSIST_RESULT)
    async def persist_result(self, data: PersistResultInput) -> bool:
        failed = data.outcome.verdict.value == "internal_error"
        async with self._db() as db, db.begin():
            created = await repo.save_result(db, data.submission_id, data.outcome, failed=failed)
            if not failed:
                await repo.recompute_mastery(db, data.user_id, data.problem_id)
        if created:  # once per submission, on the worker's metrics endpoint (SDK runtime)
            activity.metric_meter().create_counter(
                "co_submission_verdicts", "Verdicts stored, by verdict."
            ).with_additional_attributes({"verdict": data.outcome.verdict.value}).add(1)
        return created
