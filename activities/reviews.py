"""Activities of ReviewScheduleWorkflow, and the one that starts or signals it.

- ``reviews.project``: the schedule's projection (cards, log rows, summary).
- ``reviews.mark_due``: mark a due batch's cards.
- ``reviews.notify``: tell the main API (``CO_API_BASE``) that reviews are due, with the
  batch id as ``Idempotency-Key`` so a retried delivery is dropped there.
- ``reviews.tell_submission``: signal-with-start of the learner's schedule, called by
  SubmissionWorkflow. A workflow cannot signal-with-start (an external-workflow signal
  fails when the target is not running, and a child would be bound to the submission's
  lifetime); an activity can, through the worker's client: it is idempotent (starting a
  running workflow only signals it, and the schedule ignores a submission id it has seen),
  so a retried attempt is harmless.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from activities.deps import ActivityDeps
from activities.upstream import UpstreamClient
from domain.contracts import (
    CO_USER_ID,
    ActivityName,
    SignalName,
    WorkflowName,
    reviews_workflow_id,
)
from domain.reviews import (
    MarkDueInput,
    NotifyInput,
    ReviewInput,
    ReviewProjection,
    TellSubmissionInput,
)
from domain.upstream import (
    IDEMPOTENCY_KEY_HEADER,
    NOTIFICATIONS_PATH,
    Notification,
    NotificationReceipt,
)
from store import reviews as repo


class ReviewActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self._db = deps.sessionmaker
        self._main_api = UpstreamClient(
            deps.http, "main API", str(deps.settings.api_base), deps.settings.api_token
        )

    @activity.defn(name=ActivityName.REVIEWS_PROJECT)
    async def project(self, data: ReviewProjection) -> None:
        async with self._db() as db, db.begin():
            await repo.save_projection(db, data)

    @activity.defn(name=ActivityName.REVIEWS_MARK_DUE)
    async def mark_due(self, data: MarkDueInput) -> int:
        async with self._db() as db, db.begin():
            return await repo.mark_due(db, data.user_id, data.batch_id, data.problem_ids)

    @activity.defn(name=ActivityName.REVIEWS_NOTIFY)
    async def notify(self, data: NotifyInput) -> str:
        return await notify_main_api(self._main_api, data)

    @activity.defn(name=ActivityName.REVIEWS_TELL_SUBMISSION)
    async def tell_submission(self, data: TellSubmissionInput) -> None:
        submission = data.submission
        if submission.track_slug is None:
            async with self._db() as db:
                slug = await repo.track_slug_of(db, submission.submission_id)
            submission = submission.model_copy(update={"track_slug": slug})
        await activity.client().start_workflow(
            WorkflowName.REVIEW_SCHEDULE,
            ReviewInput(user_id=data.user_id),
            id=reviews_workflow_id(data.user_id),
            task_queue=activity.info().task_queue,
            start_signal=SignalName.SUBMISSION_REVIEWED,
            start_signal_args=[submission],
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(CO_USER_ID, data.user_id)]
            ),
        )


async def notify_main_api(main_api: UpstreamClient, data: NotifyInput) -> str:
    """POST the notification; the main API drops a repeated batch id."""
    body = Notification(
        user_id=data.user_id,
        batch_id=str(data.batch_id),
        due_count=data.due_count,
        earliest_problem_id=data.earliest_problem_id,
        earliest_due_at=data.earliest_due_at.isoformat(),
    )
    receipt = await main_api.call(
        "POST",
        NOTIFICATIONS_PATH,
        NotificationReceipt,
        json=body.model_dump(mode="json"),
        headers={IDEMPOTENCY_KEY_HEADER: str(data.batch_id)},
    )
    activity.logger.info(
        "reviews due notified", extra={"batch_id": str(data.batch_id), "dup": receipt.duplicate}
    )
    return receipt.id
