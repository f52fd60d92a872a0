"""SubmissionWorkflow's decisions, with stand-in activities."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.contracts import (
    ActivityName,
    FailureType,
)
from domain.reviews import TellSubmissionInput
from domain.submissions import (
    BeginInput,
    EvaluateInput,
    EvaluationOutcome,
    PersistResultInput,
    SubmissionFacts,
    SubmissionInput,
    SubmissionOutcome,
    SubmissionStatus,
)
from domain.upstream import EvalKind, Verdict
from workflows.submission import SubmissionWorkflow


class FakeActivities:
    def __init__(self, *, recorded: bool = True, evaluate_error: Exception | None = None) -> None:
        self.recorded = recorded
        self.evaluate_error = evaluate_error
        self.persisted: list[PersistResultInput] = []
        self.evaluations = 0
        self.told: list[TellSubmissionInput] = []

    @activity.defn(name=ActivityName.SUBMISSION_BEGIN)
    async def begin(self, data: BeginInput) -> SubmissionFacts:
        if not self.recorded:
            raise ApplicationError("not recorded", type=FailureType.SUBMISSION_NOT_RECORDED)
        return SubmissionFacts(problem_id="py-add", kind=EvalKind.python)

    @activity.defn(name=ActivityName.SUBMISSION_EVALUATE)
    async def evaluate(self, data: EvaluateInput) -> EvaluationOutcome:
        self.evaluations += 1
        if self.evaluate_error is not None:
            raise self.evaluate_error
        return EvaluationOutcome(verdict=Verdict.accepted, message="All tests passed.")

    @activity.defn(name=ActivityName.SUBMISSION_PERSIST_RESULT)
    async def persist_result(self, data: PersistResultInput) -> bool:
        self.persisted.append(data)
        return True

    @activity.defn(name=ActivityName.REVIEWS_TELL_SUBMISSION)
    async def tell_submission(self, data: TellSubmissionInput) -> None:
        self.told.append(data)

    def all(self) -> list[object]:
        return [self.begin, self.evaluate, self.persist_result, self.tell_submission]


async def run_submission(env: WorkflowEnvironment, fakes: FakeActivities) -> SubmissionOutcome:
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client, task_queue=queue, workflows=[SubmissionWorkflow], activities=fakes.all()
    ):
        handle: WorkflowHandle[SubmissionWorkflow, SubmissionOutcome] = (
            await env.client.start_workflow(
                SubmissionWorkflow.run,
                SubmissionInput(submission_id=uuid.uuid4(), user_id="u1"),
                id=f"submission-{uuid.uuid4()}",
                task_queue=queue,
            )
        )
        return await handle.result()


async def test_accepted_submission_is_persisted_once(time_env: WorkflowEnvironment) -> None:
    fakes = FakeActivities()
    outcome = await run_submission(time_env, fakes)
    assert outcome.status == SubmissionStatus.completed
    assert outcome.verdict == Verdict.accepted
    assert len(fakes.persisted) == 1
    assert fakes.persisted[0].problem_id == "py-add"


async def test_non_retryable_eval_failure_ends_as_internal_error_without_retrying(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = FakeActivities(evaluate_error=ApplicationError("Eval answered 400", non_retryable=True))
    outcome = await run_submission(time_env, fakes)
    assert fakes.evaluations == 1
    assert outcome.status == SubmissionStatus.failed
    assert outcome.verdict == Verdict.internal_error
    assert fakes.persisted[0].outcome.verdict == Verdict.internal_error
    assert "not your fault" in fakes.persisted[0].outcome.message


async def test_row_never_written_abandons_without_a_result(time_env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(recorded=False)
    outcome = await run_submission(time_env, fakes)  # time skips past the record wait
    assert outcome.status == SubmissionStatus.failed
    assert outcome.verdict is None
    assert fakes.evaluations == 0
    assert fakes.persisted == []


@pytest.mark.parametrize("attempts_before_success", [2])
async def test_transient_eval_failures_are_retried(
    time_env: WorkflowEnvironment, attempts_before_success: int
) -> None:
    fakes = FakeActivities()
    calls = {"n": 0}

    @activity.defn(name=ActivityName.SUBMISSION_EVALUATE)
    async def flaky(data: EvaluateInput) -> EvaluationOutcome:
        calls["n"] += 1
        if calls["n"] <= attempts_before_success:
            raise ApplicationError("Eval answered 503", type="UpstreamUnavailable")
        return EvaluationOutcome(verdict=Verdict.wrong_answer, message="no")

    fakes.evaluate = flaky  # type: ignore[method-assign]
    outcome = await run_submission(time_env, fakes)
    assert calls["n"] == attempts_before_success + 1
    assert outcome.verdict == Verdict.wrong_answer


async def run_timed(
    env: WorkflowEnvironment, fakes: FakeActivities
) -> tuple[SubmissionOutcome, timedelta]:
    """The outcome and the workflow's own start-to-close time (skipped time included)."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client, task_queue=queue, workflows=[SubmissionWorkflow], activities=fakes.all()
    ):
        handle: WorkflowHandle[SubmissionWorkflow, SubmissionOutcome] = (
            await env.client.start_workflow(
                SubmissionWorkflow.run,
                SubmissionInput(submission_id=uuid.uuid4(), user_id="u1"),
                id=f"submission-{uuid.uuid4()}",
                task_queue=queue,
            )
        )
        outcome = await handle.result()
        info = await handle.describe()
    assert info.close_time is not None
    return outcome, info.close_time - info.start_time


async def test_unavailable_eval_keeps_the_long_budget_then_internal_error(
    time_env: WorkflowEnvironment,
) -> None:
    """503/429/timeouts: retried for the whole schedule-to-close budget (30 minutes of
    skipped time here), then a learner-readable internal_error."""
    from workflows.submission import EVAL_SCHEDULE_TO_CLOSE

    fakes = FakeActivities(
        evaluate_error=ApplicationError("Eval answered 503", type="UpstreamUnavailable")
    )
    outcome, elapsed = await run_timed(time_env, fakes)
    assert outcome.verdict == Verdict.internal_error
    assert outcome.status == SubmissionStatus.failed
    # the last retry that still fits in the budget ends it (~29.5 minutes here)
    slack = timedelta(minutes=1)
    assert EVAL_SCHEDULE_TO_CLOSE - slack <= elapsed <= EVAL_SCHEDULE_TO_CLOSE + slack
    # backoff 1 s doubling to 30 s: ~60 attempts in 30 minutes, not one per second
    assert 50 <= fakes.evaluations <= 80


async def test_server_error_eval_is_final_after_three_attempts(
    time_env: WorkflowEnvironment,
) -> None:
    """500s: the activity itself makes the third one final (workflow and policy unchanged)."""
    from activities.upstream import SERVER_ERROR_ATTEMPTS, ErrorType, bound_server_errors

    fakes = FakeActivities()

    @activity.defn(name=ActivityName.SUBMISSION_EVALUATE)
    async def failing(data: EvaluateInput) -> EvaluationOutcome:
        fakes.evaluations += 1
        error = ApplicationError("Eval answered 500", type=ErrorType.SERVER_ERROR)
        raise bound_server_errors(error, activity.info().attempt)

    fakes.evaluate = failing  # type: ignore[method-assign]
    outcome, elapsed = await run_timed(time_env, fakes)
    assert outcome.verdict == Verdict.internal_error
    assert fakes.evaluations == SERVER_ERROR_ATTEMPTS
    assert elapsed.total_seconds() < 60


async def test_a_finished_submission_tells_the_learners_review_schedule(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = FakeActivities()
    outcome = await run_submission(time_env, fakes)
    assert [(t.user_id, t.submission.problem_id, t.submission.verdict) for t in fakes.told] == [
        ("u1", "py-add", Verdict.accepted)
    ]
    assert fakes.told[0].submission.submission_id == outcome.submission_id


async def test_an_internal_error_does_not_touch_the_review_schedule(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = FakeActivities(
        evaluate_error=ApplicationError("eval refused", type="UpstreamRejected", non_retryable=True)
    )
    outcome = await run_submission(time_env, fakes)
    assert outcome.verdict == Verdict.internal_error
    assert fakes.told == []
