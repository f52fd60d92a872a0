"""SessionWorkflow on the time-skipping test server, with a stand-in projection activity:
idle timeout, progression through signals and the advance update, continue-as-new."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.contracts import (
    ActivityName,
)
from domain.progression import SessionStatus, SessionView
from domain.sessions import (
    AdvanceRequest,
    EndRequest,
    HintGiven,
    SessionCarry,
    SessionProjection,
    SubmissionFinished,
)
from domain.upstream import Verdict
from tests.support import eventually, record_history
from tests.support.sessions import Session, start_session
from workflows.session import SessionWorkflow


class Projections:
    """The stand-in for ``session.project``: remembers every write."""

    def __init__(self) -> None:
        self.writes: list[SessionProjection] = []

    @activity.defn(name=ActivityName.SESSION_PROJECT)
    async def project(self, data: SessionProjection) -> bool:
        self.writes.append(data)
        return True

    @property
    def last(self) -> SessionProjection:
        return self.writes[-1]


@asynccontextmanager
async def session_worker(env: WorkflowEnvironment) -> AsyncIterator[tuple[str, Projections]]:
    projections = Projections()
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[SessionWorkflow],
        activities=[projections.project],
    ):
        yield queue, projections


async def state(handle: Session) -> SessionView:
    """The handle has no run id: it follows the chain of continued runs. A query that
    lands while a run hands over to the next can get lost on the test server: retry."""

    async def answered() -> SessionView:
        return await handle.query(SessionWorkflow.state, rpc_timeout=timedelta(seconds=1))

    return await eventually(answered, timeout=25, ignoring=(RPCError,))


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    await eventually(check, timeout=timeout)


async def signal_and_wait(handle: Session, send: Callable[[], Awaitable[None]]) -> SessionView:
    """Send a signal and wait until the workflow has handled it (seq moved)."""
    before = (await state(handle)).seq
    await send()

    async def moved() -> bool:
        return (await state(handle)).seq > before

    await until(moved)
    return await state(handle)


def submission(problem_id: str, verdict: Verdict) -> SubmissionFinished:
    return SubmissionFinished(submission_id=uuid.uuid4(), problem_id=problem_id, verdict=verdict)


async def test_an_idle_session_is_abandoned_after_its_timeout(
    time_env: WorkflowEnvironment,
) -> None:
    async with session_worker(time_env) as (queue, projections):
        started = await time_env.get_current_time()
        handle = await start_session(time_env, queue, idle=timedelta(days=14))
        outcome = await handle.result()  # the test server skips the 14 days
    assert outcome.status == SessionStatus.abandoned
    await record_history(time_env.client, handle.id, "session_abandoned_when_idle")
    last = projections.last.document.progress
    assert last.status == SessionStatus.abandoned
    assert last.ended_at is not None
    assert timedelta(days=14) <= last.ended_at - started < timedelta(days=14, minutes=1)
    # Where the learner stopped is kept.
    assert last.position is not None
    assert last.position.problem_id == "p-a"


async def test_a_session_that_keeps_working_is_not_abandoned(
    time_env: WorkflowEnvironment,
) -> None:
    async with session_worker(time_env) as (queue, projections):
        handle = await start_session(time_env, queue, idle=timedelta(days=3))
        for day in range(4):  # 8 days in all, never 3 idle
            await time_env.sleep(timedelta(days=2))
            if day % 2:
                await signal_and_wait(
                    handle,
                    lambda: handle.signal(
                        SessionWorkflow.hint_given, HintGiven(problem_id="p-a", level=1)
                    ),
                )
            else:
                await signal_and_wait(
                    handle,
                    lambda: handle.signal(
                        SessionWorkflow.submission_finished,
                        submission("p-a", Verdict.wrong_answer),
                    ),
                )
        view = await state(handle)
        assert view.status == SessionStatus.active
        assert view.modules[0].items[0].attempts == 2
        ended = await handle.execute_update(SessionWorkflow.end, EndRequest())
        assert ended.status == SessionStatus.ended
        outcome = await handle.result()
    assert outcome.status == SessionStatus.ended
    assert projections.last.document.progress.status == SessionStatus.ended


async def test_advance_is_refused_while_the_rule_is_unmet_and_accepted_after(
    time_env: WorkflowEnvironment,
) -> None:
    async with session_worker(time_env) as (queue, projections):
        handle = await start_session(time_env, queue)
        await signal_and_wait(
            handle,
            lambda: handle.signal(
                SessionWorkflow.submission_finished, submission("p-a", Verdict.wrong_answer)
            ),
        )
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(SessionWorkflow.advance, AdvanceRequest())
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == "AdvanceRefused"
        assert "'p-a' is not mastered yet" in cause.message
        assert cause.details == ("not_mastered",)

        await signal_and_wait(
            handle,
            lambda: handle.signal(
                SessionWorkflow.submission_finished, submission("p-a", Verdict.accepted)
            ),
        )
        view = await handle.execute_update(
            SessionWorkflow.advance, AdvanceRequest(from_problem_id="p-a")
        )
        assert view.current is not None
        assert view.current.problem_id == "p-b"
        # The update answered after its state was projected.
        assert projections.last.document.progress.seq == view.seq
        # A retried advance from the same item is refused rather than skipping p-b.
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(
                SessionWorkflow.advance, AdvanceRequest(from_problem_id="p-a")
            )
        # Rejected updates leave no trace in history; accepted ones do.
        history = await handle.fetch_history()
        accepted = [
            e
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ]
        assert len(accepted) == 1
        await handle.execute_update(SessionWorkflow.end, EndRequest())
        await handle.result()


async def test_a_session_completes_when_its_last_required_item_is_mastered(
    time_env: WorkflowEnvironment,
) -> None:
    async with session_worker(time_env) as (queue, projections):
        handle = await start_session(time_env, queue)
        sends = [
            ("p-a", Verdict.accepted),
            ("p-b", Verdict.runtime_error),
            ("p-b", Verdict.accepted),
            ("p-c", Verdict.accepted),
            ("p-c", Verdict.accepted),
        ]
        for pid, verdict in sends:
            await handle.signal(SessionWorkflow.submission_finished, submission(pid, verdict))
        outcome = await handle.result()
    assert outcome.status == SessionStatus.completed
    document = projections.last.document
    assert document.progress.status == SessionStatus.completed
    assert document.summary.percent == 100
    assert document.summary.modules_completed == 2
    assert document.progress.items["p-b"].attempts == 2


async def test_continue_as_new_keeps_every_bit_of_the_state(
    time_env: WorkflowEnvironment,
) -> None:
    async with session_worker(time_env) as (queue, projections):
        handle = await start_session(time_env, queue, max_events=4)
        first_run = handle.result_run_id
        repeated = submission("p-a", Verdict.wrong_answer)
        for send in (
            lambda: handle.signal(SessionWorkflow.submission_finished, repeated),
            lambda: handle.signal(
                SessionWorkflow.submission_finished, submission("p-a", Verdict.accepted)
            ),
            lambda: handle.signal(SessionWorkflow.hint_given, HintGiven(problem_id="p-b", level=2)),
        ):
            await time_env.sleep(timedelta(hours=1))
            await signal_and_wait(handle, send)
        await handle.execute_update(SessionWorkflow.advance, AdvanceRequest())  # 4th event
        latest = time_env.client.get_workflow_handle_for(SessionWorkflow.run, handle.id)
        old = time_env.client.get_workflow_handle_for(
            SessionWorkflow.run, handle.id, run_id=first_run
        )

        async def continued() -> bool:
            return (await latest.describe()).run_id != first_run

        # The 4th event was handled: the run hands its state to a new one.
        await until(continued)
        before_view = await old.query(SessionWorkflow.state)  # the closed first run, replayed
        before: SessionCarry = await old.query(SessionWorkflow.snapshot)
        after: SessionCarry = await latest.query(SessionWorkflow.snapshot)
        assert after == before
        assert await latest.query(SessionWorkflow.state) == before_view
        assert after.progress.items["p-a"].attempts == 2
        assert after.progress.items["p-b"].hint_level == 2
        assert len(after.recent_submissions) == 2
        first = await old.describe()
        assert first.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW
        await record_history(
            time_env.client, handle.id, "session_continued_as_new", run_id=first_run
        )

        # The new run still recognises a submission seen by the old one...
        await latest.signal(SessionWorkflow.submission_finished, repeated)
        # ...and keeps counting from where the old one stopped.
        view = await signal_and_wait(
            latest,
            lambda: latest.signal(
                SessionWorkflow.submission_finished, submission("p-b", Verdict.accepted)
            ),
        )
        assert view.modules[0].items[0].attempts == 2
        assert view.modules[0].items[1].accepted == 1
        assert view.seq == before.progress.seq + 1
        await latest.execute_update(SessionWorkflow.end, EndRequest())
        outcome = await latest.result()
    assert outcome.status == SessionStatus.ended
    seqs = [w.document.progress.seq for w in projections.writes]
    assert seqs == sorted(seqs)


async def test_continue_as_new_does_not_extend_the_idle_timeout(
    time_env: WorkflowEnvironment,
) -> None:
    async with session_worker(time_env) as (queue, projections):
        handle = await start_session(time_env, queue, idle=timedelta(days=2), max_events=1)
        first_run = handle.result_run_id
        await handle.signal(SessionWorkflow.hint_given, HintGiven(problem_id="p-a", level=1))

        async def continued() -> bool:
            return (await handle.describe()).run_id != first_run

        # Only describe until the hand-over is done: the test server can lose a query
        # sent to a run while it continues as new, and then stops skipping time.
        await until(continued)
        old = time_env.client.get_workflow_handle_for(
            SessionWorkflow.run, handle.id, run_id=first_run
        )
        active_at: datetime = (await old.query(SessionWorkflow.snapshot)).progress.last_activity_at
        outcome = await handle.result()  # follows the continued runs
    assert outcome.status == SessionStatus.abandoned
    # The run that started from carried state and closed on its idle timer.
    await record_history(time_env.client, handle.id, "session_carried_run_abandoned")
    ended_at = projections.last.document.progress.ended_at
    assert ended_at is not None
    assert timedelta(days=2) <= ended_at - active_at < timedelta(days=2, minutes=1)
