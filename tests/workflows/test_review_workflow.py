"""ReviewScheduleWorkflow on the time-skipping test server: months of reviews in
seconds, intervals equal to ``fsrs`` computed directly, and the due notification
delivered to the main-API stand-in exactly once per batch, across a worker restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import fsrs
import httpx
import pytest
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.reviews import notify_main_api
from activities.upstream import UpstreamClient
from devservices.main_api import NotificationLog
from devservices.main_api import create_app as main_api_app
from devservices.testing import serve
from domain.reviews import (
    ACTIVITY_MARK_DUE,
    ACTIVITY_NOTIFY,
    ACTIVITY_PROJECT,
    CARD_NOT_DUE,
    STEPS,
    CardView,
    GradeRequest,
    MarkDueInput,
    NotifyInput,
    Rating,
    ReviewInput,
    ReviewLogEntry,
    ReviewProjection,
    SubmissionReviewed,
)
from domain.temporal import reviews_workflow_id
from domain.upstream import Verdict
from tests.support import eventually, record_history
from tests.workflows.conftest import time_skipping_env
from workflows.reviews import ReviewScheduleWorkflow

TOKEN = "wf-test-internal-token"
Schedule = WorkflowHandle[ReviewScheduleWorkflow, None]


@dataclass
class StandIns:
    """``reviews.project`` and ``reviews.mark_due`` in memory; ``reviews.notify`` is the
    real function, posting to the main-API stand-in served over HTTP."""

    main_api: UpstreamClient
    projections: list[ReviewProjection] = field(default_factory=list)
    marked: list[MarkDueInput] = field(default_factory=list)

    @activity.defn(name=ACTIVITY_PROJECT)
    async def project(self, data: ReviewProjection) -> None:
        self.projections.append(data)

    @activity.defn(name=ACTIVITY_MARK_DUE)
    async def mark_due(self, data: MarkDueInput) -> int:
        self.marked.append(data)
        return len(data.problem_ids)

    @activity.defn(name=ACTIVITY_NOTIFY)
    async def notify(self, data: NotifyInput) -> str:
        return await notify_main_api(self.main_api, data)

    @property
    def logs(self) -> list[ReviewLogEntry]:
        return [log for p in self.projections for log in p.logs]


@dataclass
class Rig:
    env: WorkflowEnvironment
    queue: str
    stand_ins: StandIns
    notifications: NotificationLog

    def worker(self, *, sticky: bool = True) -> Worker:
        """``sticky=False`` for a worker that will be stopped: the test server does not hand
        a stopped worker's sticky tasks back to the shared queue (a real server does), so
        the next worker would never see them."""
        s = self.stand_ins
        return Worker(
            self.env.client,
            task_queue=self.queue,
            workflows=[ReviewScheduleWorkflow],
            activities=[s.project, s.mark_due, s.notify],
            max_cached_workflows=1000 if sticky else 0,
        )


@asynccontextmanager
async def rig(env: WorkflowEnvironment) -> AsyncIterator[Rig]:
    notifications = NotificationLog()
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(serve(main_api_app(TOKEN, notifications)))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=5))
        stand_ins = StandIns(UpstreamClient(http, "main API", url, TOKEN))
        yield Rig(env, f"tq-{uuid.uuid4().hex[:8]}", stand_ins, notifications)


async def start(r: Rig, user: str, *, fuzz: bool = False, **kwargs: object) -> Schedule:
    data = ReviewInput(user_id=user, fuzz=fuzz, **kwargs)  # type: ignore[arg-type]
    return await r.env.client.start_workflow(
        ReviewScheduleWorkflow.run, data, id=reviews_workflow_id(user), task_queue=r.queue
    )


async def cards(handle: Schedule) -> dict[str, CardView]:
    """The handle follows the chain of runs; a query that lands while one run hands over
    to the next can get lost on the test server: retry."""
    for _ in range(20):
        try:
            views = await handle.query(
                ReviewScheduleWorkflow.cards, rpc_timeout=timedelta(seconds=1)
            )
            return {c.problem_id: c for c in views}
        except RPCError:
            await asyncio.sleep(0.05)
    return {c.problem_id: c for c in await handle.query(ReviewScheduleWorkflow.cards)}


async def asleep(handle: Schedule) -> bool:
    """The workflow has nothing left to do but wait for its timer."""
    client = handle._client  # the raw RPC: describe() parses search attributes we need not
    raw = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=handle.id)
        )
    )
    return not raw.pending_activities and not raw.HasField("pending_workflow_task")


async def timer_fired(handle: Schedule) -> bool:
    history = await handle.fetch_history()
    return any(e.event_type == EventType.EVENT_TYPE_TIMER_FIRED for e in history.events)


def solved(problem_id: str, verdict: Verdict = Verdict.accepted) -> SubmissionReviewed:
    return SubmissionReviewed(submission_id=uuid.uuid4(), problem_id=problem_id, verdict=verdict)


async def add_card(r: Rig, handle: Schedule, problem_id: str) -> CardView:
    await handle.signal(ReviewScheduleWorkflow.submission_reviewed, solved(problem_id))

    async def present() -> bool:
        return problem_id in await cards(handle)

    await eventually(present)
    return (await cards(handle))[problem_id]


async def grade(handle: Schedule, problem_id: str, rating: Rating, **kw: object) -> CardView:
    request = GradeRequest(review_id=uuid.uuid4(), problem_id=problem_id, rating=rating, **kw)  # type: ignore[arg-type]
    return await handle.execute_update(ReviewScheduleWorkflow.grade, request)


def fsrs_direct(ratings: list[tuple[Rating, datetime]], first: datetime) -> fsrs.Card:
    """The same review log through ``fsrs`` itself, no wrapper in between."""
    sched = fsrs.Scheduler(learning_steps=STEPS, relearning_steps=STEPS, enable_fuzzing=False)
    card = fsrs.Card(card_id=1, due=first.astimezone(UTC))
    for rating, when in ratings:
        card, _ = sched.review_card(card, rating.fsrs, review_datetime=when.astimezone(UTC))
    return card


async def test_six_months_of_reviews_grow_with_good_shrink_after_again_and_match_fsrs(
    time_env: WorkflowEnvironment,
) -> None:
    async with rig(time_env) as r, r.worker():
        handle = await start(r, f"learner-{uuid.uuid4().hex[:6]}")
        first = await add_card(r, handle, "p-recursion")
        started = await time_env.get_current_time()
        assert first.due_at > started  # solving is the first review: due in days
        plan = [Rating.good, Rating.good, Rating.good, Rating.again, Rating.good, Rating.good]
        intervals: list[timedelta] = []
        card = first
        for rating in plan:
            now = await time_env.get_current_time()
            await time_env.sleep(card.due_at - now + timedelta(hours=1))
            before = card
            card = await grade(handle, "p-recursion", rating)
            intervals.append(card.due_at - (before.due_at + timedelta(hours=1)))
        elapsed = await time_env.get_current_time() - started
        assert elapsed > timedelta(days=180)  # six months, run in seconds
        # Intervals grow with good ratings and shrink after an again.
        assert intervals[0] < intervals[1] < intervals[2]
        assert intervals[3] < intervals[2]
        assert intervals[4] > intervals[3]
        assert card.reps == len(plan) + 1
        assert card.lapses == 1

        # The same review log through fsrs directly gives the same card.
        logs = r.stand_ins.logs
        assert [log.rating for log in logs] == [Rating.good, *plan]
        direct = fsrs_direct(
            [(log.rating, log.reviewed_at) for log in logs], first=logs[0].reviewed_at
        )
        assert card.stability == pytest.approx(direct.stability)
        assert card.difficulty == pytest.approx(direct.difficulty)
        assert card.due_at == direct.due
        # Every review is logged with its elapsed days and the state before and after.
        assert (logs[1].elapsed_days or 0) >= 2
        assert all(log.due_after > log.due_before for log in logs[1:])
        await handle.terminate()


async def test_a_grade_not_due_is_refused_unless_forced_and_a_retry_grades_once(
    time_env: WorkflowEnvironment,
) -> None:
    async with rig(time_env) as r, r.worker():
        handle = await start(r, f"learner-{uuid.uuid4().hex[:6]}")
        await add_card(r, handle, "p-a")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await grade(handle, "p-a", Rating.good)
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == CARD_NOT_DUE
        request = GradeRequest(
            review_id=uuid.uuid4(), problem_id="p-a", rating=Rating.easy, force=True
        )
        once = await handle.execute_update(ReviewScheduleWorkflow.grade, request)
        again = await handle.execute_update(ReviewScheduleWorkflow.grade, request)
        assert again == once
        assert [log.rating for log in r.stand_ins.logs] == [Rating.good, Rating.easy]
        await handle.terminate()


async def test_a_due_card_is_graded_by_submissions_with_the_documented_rule(
    time_env: WorkflowEnvironment,
) -> None:
    async with rig(time_env) as r, r.worker():
        handle = await start(r, f"learner-{uuid.uuid4().hex[:6]}")
        card = await add_card(r, handle, "p-a")
        await time_env.sleep(card.due_at - await time_env.get_current_time() + timedelta(hours=1))
        for verdict in (Verdict.wrong_answer, Verdict.accepted):  # 2 attempts, at once: hard
            await handle.signal(ReviewScheduleWorkflow.submission_reviewed, solved("p-a", verdict))

        async def graded() -> bool:
            return (await cards(handle))["p-a"].reps == 2

        await eventually(graded)
        assert (await cards(handle))["p-a"].last_rating == Rating.hard
        await handle.terminate()


@pytest.fixture
async def own_time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of its own: once a timer has fired with no worker, the server holds
    its clock for every workflow on it, which must not depend on what other tests left."""
    async with time_skipping_env() as env:
        yield env


async def test_the_due_notification_arrives_once_per_batch_across_a_worker_restart(
    own_time_env: WorkflowEnvironment,
) -> None:
    time_env = own_time_env
    user = f"learner-{uuid.uuid4().hex[:6]}"
    async with rig(time_env) as r:
        async with r.worker(sticky=False):
            handle = await start(r, user)
            a = await add_card(r, handle, "p-a")
            await eventually(lambda: asleep(handle))
        # The worker is down while the card falls due. (Once the timer has fired, the test
        # server stops skipping time until a worker takes the task: sleep exactly to the
        # due time.)
        await time_env.sleep(a.due_at - await time_env.get_current_time())
        await eventually(lambda: timer_fired(handle), timeout=5)
        assert r.notifications.for_user(user) == []
        async with r.worker():

            async def told() -> bool:
                return len(r.notifications.for_user(user)) == 1

            await eventually(told)
            first = r.notifications.for_user(user)[0].notification
            assert (first.due_count, first.earliest_problem_id) == (1, "p-a")
            # A second batch once it is reviewed and due again; the first is never resent.
            a = await grade(handle, "p-a", Rating.good)
            await time_env.sleep(a.due_at - await time_env.get_current_time() + timedelta(hours=1))

            async def two_batches() -> bool:
                return len(r.notifications.for_user(user)) == 2

            await eventually(two_batches)
        records = r.notifications.for_user(user)
        assert [rec.deliveries for rec in records] == [1, 1]
        assert len({rec.idempotency_key for rec in records}) == 2
        assert len(r.stand_ins.marked) == 2
        await handle.terminate()


async def test_the_schedule_continues_as_new_carrying_its_cards(
    time_env: WorkflowEnvironment,
) -> None:
    user = f"learner-{uuid.uuid4().hex[:6]}"
    async with rig(time_env) as r, r.worker():
        handle = await start(r, user, max_events_per_run=3)
        first_run = handle.result_run_id
        for problem in ("p-a", "p-b", "p-c", "p-d"):
            await add_card(r, handle, problem)
        assert set(await cards(handle)) == {"p-a", "p-b", "p-c", "p-d"}
        history = await handle.fetch_history()  # follows the chain to the newest run
        assert history.events[
            0
        ].workflow_execution_started_event_attributes.continued_execution_run_id
        await record_history(
            time_env.client,
            reviews_workflow_id(user),
            "review_schedule_continued_as_new",
            run_id=first_run,
        )
        await handle.terminate()
