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
from temporalio.api.enums.v1 import EventType
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
from domain import reviews
from domain.contracts import (
    ActivityName,
    FailureType,
    reviews_workflow_id,
)
from domain.reviews import (
    STEPS,
    CardView,
    GradeRequest,
    MarkDueInput,
    NotifyInput,
    Rating,
    ReviewCarry,
    ReviewInput,
    ReviewLogEntry,
    ReviewProjection,
    SubmissionReviewed,
)
from domain.upstream import Verdict
from tests.support import eventually, record_history
from tests.support.time_skipping import time_skipping_env
from workflows.reviews import ReviewScheduleWorkflow

TOKEN = "wf-test-internal-token"


@pytest.fixture(scope="module")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of this module's own. These schedules never finish; on the shared
    server, tests that wait for a workflow's result hung after them (the test server holds
    its clock while it has work outstanding), so they stay here."""
    async with time_skipping_env() as env:
        yield env


Schedule = WorkflowHandle[ReviewScheduleWorkflow, None]


@dataclass
class StandIns:
    """``reviews.project`` and ``reviews.mark_due`` in memory; ``reviews.notify`` is the
    real function, posting to the main-API stand-in served over HTTP."""

    main_api: UpstreamClient
    projections: list[ReviewProjection] = field(default_factory=list)
    marked: list[MarkDueInput] = field(default_factory=list)

    @activity.defn(name=ActivityName.REVIEWS_PROJECT)
    async def project(self, data: ReviewProjection) -> None:
        self.projections.append(data)

    @activity.defn(name=ActivityName.REVIEWS_MARK_DUE)
    async def mark_due(self, data: MarkDueInput) -> int:
        self.marked.append(data)
        return len(data.problem_ids)

    @activity.defn(name=ActivityName.REVIEWS_NOTIFY)
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

    def worker(self) -> Worker:
        s = self.stand_ins
        return Worker(
            self.env.client,
            task_queue=self.queue,
            workflows=[ReviewScheduleWorkflow],
            activities=[s.project, s.mark_due, s.notify],
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

    async def answered() -> list[CardView]:
        return await handle.query(ReviewScheduleWorkflow.cards, rpc_timeout=timedelta(seconds=1))

    views = await eventually(answered, timeout=25, ignoring=(RPCError,))
    return {c.problem_id: c for c in views}


async def has_timer(handle: Schedule) -> bool:
    history = await handle.fetch_history()
    return any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history.events)


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
        assert refused.value.cause.type == FailureType.REVIEW_NOT_DUE
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


async def test_the_due_notification_arrives_once_per_batch_across_a_worker_restart(
    temporal_env: WorkflowEnvironment,
) -> None:
    """On the dev server, in real time (the test server cannot hand a stopped worker's
    sticky tasks to the next one, a real server does): two cards due 3 s and 8 s ahead;
    the worker is down when the first falls due and back before the second."""
    user = f"learner-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    cards_in = [
        reviews.new_card(user, p, now).model_copy(update={"due": now + timedelta(seconds=s)})
        for p, s in (("p-a", 3), ("p-b", 8))
    ]
    async with rig(temporal_env) as r:
        async with r.worker():
            handle = await start(r, user, carried=ReviewCarry(cards=cards_in))
            await eventually(lambda: has_timer(handle))
        await asyncio.sleep((cards_in[0].due - datetime.now(UTC)).total_seconds() + 1)
        assert r.notifications.for_user(user) == []  # due, and nobody to tell
        async with r.worker():

            async def batches(n: int) -> bool:
                return len(r.notifications.for_user(user)) >= n

            await eventually(lambda: batches(1))
            await eventually(lambda: batches(2), timeout=30)
            await asyncio.sleep(1)  # a duplicate would show up here
        records = r.notifications.for_user(user)
        assert [(x.notification.earliest_problem_id, x.deliveries) for x in records] == [
            ("p-a", 1),
            ("p-b", 1),
        ]
        assert [m.problem_ids for m in r.stand_ins.marked] == [["p-a"], ["p-b"]]
        await handle.terminate()
