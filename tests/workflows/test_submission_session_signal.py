"""SubmissionWorkflow tells the learner's SessionWorkflow about every finished
submission, and a session that is gone does not fail the submission.

These run on the dev server in real time, not on the shared time-skipping server: nothing
here waits on a timer, and there, a result wait may skip time to another test's timer
and close the session as idle (seen once in CI)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.contracts import (
    ActivityName,
)
from domain.progression import SessionStatus, SessionView
from domain.reviews import TellSubmissionInput
from domain.sessions import (
    EndRequest,
    SessionProjection,
)
from domain.submissions import (
    BeginInput,
    EvaluateInput,
    EvaluationOutcome,
    PersistResultInput,
    SubmissionFacts,
    SubmissionInput,
    SubmissionStatus,
)
from domain.upstream import EvalKind, Verdict
from tests.support import eventually
from tests.support.sessions import start_session
from workflows.session import SessionWorkflow
from workflows.submission import SubmissionWorkflow


class Fakes:
    def __init__(self, session_id: uuid.UUID, verdict: Verdict) -> None:
        self.session_id = session_id
        self.verdict = verdict
        self.projections: list[SessionProjection] = []

    @activity.defn(name=ActivityName.SUBMISSION_BEGIN)
    async def begin(self, data: BeginInput) -> SubmissionFacts:
        return SubmissionFacts(problem_id="p-a", kind=EvalKind.numeric, session_id=self.session_id)

    @activity.defn(name=ActivityName.SUBMISSION_EVALUATE)
    async def evaluate(self, data: EvaluateInput) -> EvaluationOutcome:
        return EvaluationOutcome(verdict=self.verdict, message="")

    @activity.defn(name=ActivityName.SUBMISSION_PERSIST_RESULT)
    async def persist_result(self, data: PersistResultInput) -> bool:
        return True

    @activity.defn(name=ActivityName.REVIEWS_TELL_SUBMISSION)
    async def tell_submission(self, data: TellSubmissionInput) -> None:
        return None

    @activity.defn(name=ActivityName.SESSION_PROJECT)
    async def project(self, data: SessionProjection) -> bool:
        self.projections.append(data)
        return True


async def submit(env: WorkflowEnvironment, queue: str) -> SubmissionStatus:
    submission_id = uuid.uuid4()
    outcome = await env.client.execute_workflow(
        SubmissionWorkflow.run,
        SubmissionInput(submission_id=submission_id, user_id="u1"),
        id=f"submission-{submission_id}",
        task_queue=queue,
    )
    return outcome.status


async def test_a_finished_submission_counts_in_its_session(
    temporal_env: WorkflowEnvironment,
) -> None:
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    fakes = Fakes(uuid.uuid4(), Verdict.accepted)
    async with Worker(
        temporal_env.client,
        task_queue=queue,
        workflows=[SubmissionWorkflow, SessionWorkflow],
        activities=[
            fakes.begin,
            fakes.evaluate,
            fakes.persist_result,
            fakes.tell_submission,
            fakes.project,
        ],
    ):
        session = await start_session(temporal_env, queue, idle=timedelta(days=14))
        fakes.session_id = uuid.UUID(session.id.removeprefix("session-"))
        assert await submit(temporal_env, queue) == SubmissionStatus.completed

        async def accepted() -> SessionView | None:
            view = await session.query(SessionWorkflow.state)
            return view if view.modules[0].items[0].accepted else None

        view = await eventually(accepted, timeout=10)
        assert view.modules[0].items[0].attempts == 1
        assert view.modules[0].items[0].mastered

        # Once the session is over, submissions still complete.
        await session.execute_update(SessionWorkflow.end, EndRequest())
        assert (await session.result()).status == SessionStatus.ended
        assert await submit(temporal_env, queue) == SubmissionStatus.completed


async def test_a_submission_to_a_session_that_never_existed_completes(
    temporal_env: WorkflowEnvironment,
) -> None:
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    fakes = Fakes(uuid.uuid4(), Verdict.wrong_answer)
    async with Worker(
        temporal_env.client,
        task_queue=queue,
        workflows=[SubmissionWorkflow],
        activities=[fakes.begin, fakes.evaluate, fakes.persist_result, fakes.tell_submission],
    ):
        assert await submit(temporal_env, queue) == SubmissionStatus.completed
