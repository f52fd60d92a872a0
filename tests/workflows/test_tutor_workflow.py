"""TutorTurnWorkflow's decisions, with stand-in activities."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.contracts import (
    ActivityName,
)
from domain.hints import HintFacts, decide
from domain.sessions import HintGiven
from domain.tutor import (
    BeginTurnInput,
    FailTurnInput,
    FinishTurnInput,
    StreamOutcome,
    StreamTurnInput,
    TurnStatus,
    TutorTurnInput,
    TutorTurnOutcome,
)
from tests.workflows.stand_in_session import StandInSession
from workflows.tutor import REFUSED_REASON, UNAVAILABLE_REASON, TutorTurnWorkflow


class FakeActivities:
    def __init__(
        self,
        *,
        failures: list[Exception] | None = None,
    ) -> None:
        self.begins = 0
        self.failures = list(failures or [])
        self.streams: list[StreamTurnInput] = []
        self.finished: list[FinishTurnInput] = []
        self.failed: list[FailTurnInput] = []

    @activity.defn(name=ActivityName.TUTOR_BEGIN)
    async def begin(self, data: BeginTurnInput) -> bool:
        """Registered as the worker has it: runs recorded before the API committed
        first call it (they replay from tests/replay); new runs never do."""
        self.begins += 1
        return True

    @activity.defn(name=ActivityName.TUTOR_STREAM)
    async def stream(self, data: StreamTurnInput) -> StreamOutcome:
        self.streams.append(data)
        if self.failures:
            raise self.failures.pop(0)
        return StreamOutcome(chars=42, tokens=7, attempt=activity.info().attempt)

    @activity.defn(name=ActivityName.TUTOR_FINISH)
    async def finish(self, data: FinishTurnInput) -> int:
        self.finished.append(data)
        return 42

    @activity.defn(name=ActivityName.TUTOR_FAIL)
    async def fail(self, data: FailTurnInput) -> None:
        self.failed.append(data)

    def all(self) -> list[Callable[..., Any]]:
        return [self.begin, self.stream, self.finish, self.fail]


def turn_input(session_id: uuid.UUID, failed: int = 0) -> TutorTurnInput:
    return TutorTurnInput(
        message_id=uuid.uuid4(),
        user_id="u1",
        session_id=session_id,
        problem_id="py-secret-sum",
        decision=decide(HintFacts(failed_attempts=failed), requested=3),
    )


async def run_turn(
    env: WorkflowEnvironment, fakes: FakeActivities, *, with_session: bool = False
) -> tuple[TutorTurnOutcome, list[HintGiven] | None]:
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    session_id = uuid.uuid4()
    data = turn_input(session_id, failed=1)
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[TutorTurnWorkflow, StandInSession],
        activities=fakes.all(),
    ):
        session = None
        if with_session:
            session = await env.client.start_workflow(
                StandInSession.run, id=f"session-{session_id}", task_queue=queue
            )
        outcome = await env.client.execute_workflow(
            TutorTurnWorkflow.run, data, id=f"tutor-{data.message_id}", task_queue=queue
        )
        hints = await session.result() if session is not None else None
        return outcome, hints


async def test_a_streamed_turn_is_stored_and_the_session_hears_of_the_hint(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = FakeActivities()
    outcome, hints = await run_turn(time_env, fakes, with_session=True)
    assert (outcome.status, outcome.chars) == (TurnStatus.completed, 42)
    assert len(fakes.finished) == 1
    assert not fakes.failed
    assert fakes.streams[0].hint_level == 2  # one failed attempt: the concept, capped from 3
    assert fakes.streams[0].failed_attempts == 1
    assert hints is not None
    assert [(h.problem_id, h.level) for h in hints] == [("py-secret-sum", 2)]


async def test_a_session_that_is_not_running_is_no_error(time_env: WorkflowEnvironment) -> None:
    outcome, _ = await run_turn(time_env, FakeActivities())
    assert outcome.status == TurnStatus.completed


async def test_transient_tutor_failures_are_retried_within_the_turn(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = FakeActivities(
        failures=[ApplicationError("503", type="UpstreamUnavailable") for _ in range(2)]
    )
    outcome, _ = await run_turn(time_env, fakes)
    assert outcome.status == TurnStatus.completed
    assert len(fakes.streams) == 3
    assert len(fakes.finished) == 1


async def test_a_tutor_that_stays_down_fails_the_turn_with_a_readable_reason(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = FakeActivities(
        failures=[ApplicationError("503", type="UpstreamUnavailable") for _ in range(10)]
    )
    outcome, _ = await run_turn(time_env, fakes)
    assert outcome.status == TurnStatus.failed
    assert len(fakes.streams) == 6  # the retry budget, then it gives up
    assert [(f.code, f.reason) for f in fakes.failed] == [("tutor_unavailable", UNAVAILABLE_REASON)]
    assert not fakes.finished


async def test_a_refused_request_is_not_retried(time_env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(
        failures=[ApplicationError("422", type="UpstreamRejected", non_retryable=True)]
    )
    outcome, _ = await run_turn(time_env, fakes)
    assert outcome.status == TurnStatus.failed
    assert len(fakes.streams) == 1
    assert [(f.code, f.reason) for f in fakes.failed] == [("tutor_refused", REFUSED_REASON)]


async def test_the_stream_is_scheduled_by_the_first_workflow_task_without_waiting_for_the_row(
    time_env: WorkflowEnvironment,
) -> None:
    # The API commits the row before it starts the workflow: nothing polls for it, and
    # the first workflow task already schedules the stream (the learner's first token
    # waits for one workflow task and one activity dispatch).
    fakes = FakeActivities()
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    data = turn_input(uuid.uuid4())
    async with Worker(
        time_env.client, task_queue=queue, workflows=[TutorTurnWorkflow], activities=fakes.all()
    ):
        handle = await time_env.client.start_workflow(
            TutorTurnWorkflow.run, data, id=f"tutor-{data.message_id}", task_queue=queue
        )
        outcome = await handle.result()
        history = await handle.fetch_history()
    assert outcome.status == TurnStatus.completed
    assert fakes.begins == 0
    kinds = [e.WhichOneof("attributes") for e in history.events]
    first = kinds.index("workflow_task_completed_event_attributes")
    commands = history.events[
        first + 1 : kinds.index("workflow_task_scheduled_event_attributes", first)
    ]
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in commands
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled == [ActivityName.TUTOR_STREAM]
    # No local activity ran before it (its marker would be there), and the search
    # attributes were set by the start: the only upsert is the SDK's patch marker
    # (TemporalChangeVersion).
    upserts = [
        e.upsert_workflow_search_attributes_event_attributes.search_attributes
        for e in commands
        if e.HasField("upsert_workflow_search_attributes_event_attributes")
    ]
    assert [set(u.indexed_fields) for u in upserts] == [{"TemporalChangeVersion"}]
