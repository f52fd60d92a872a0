"""PublishTrackWorkflow: check a curriculum against Problem Bank and publish a draft.

The API runs it and waits for its answer (a few seconds), because it must not call
Problem Bank itself on a user's behalf. A dry run only checks (used when a draft is
saved, which also needs the problem facts the items copy); a real run then
publishes the draft in one database transaction. Validation itself is the pure
``validate_curriculum``, run here on the facts the activity returned.

Ids: ``publish-{version_id}`` for a publication (two concurrent requests share
one run), ``curriculum-check-{uuid}`` for a dry run.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import steps

with workflow.unsafe.imports_passed_through():
    from domain.authoring import (
        FetchProblemsInput,
        ProblemFactsList,
        PublishedVersion,
        PublishOutcome,
        PublishStatus,
        PublishTrackInput,
        PublishVersionInput,
    )
    from domain.contracts import (
        CO_STATUS,
        CO_TRACK_SLUG,
        CO_USER_ID,
        DB_RETRY,
        DB_TIMEOUT,
        FETCH_SCHEDULE_TO_CLOSE,
        FETCH_START_TO_CLOSE,
        INTERACTIVE_UPSTREAM_RETRY,
        PUBLISH_SCHEDULE_TO_CLOSE,
        ActivityName,
        FailureType,
        Step,
        WorkflowName,
    )
    from domain.curriculum import validate_curriculum


@workflow.defn(name=WorkflowName.PUBLISH_TRACK)
class PublishTrackWorkflow:
    @workflow.run
    async def run(self, data: PublishTrackInput) -> PublishOutcome:
        workflow.upsert_search_attributes(
            [
                CO_TRACK_SLUG.value_set(data.track_slug),
                CO_USER_ID.value_set(data.requested_by),
                CO_STATUS.value_set("checking"),
            ]
        )
        ids = sorted({i.problem_id for m in data.spec.modules for i in m.items})
        workflow.set_current_details(f"Asking Problem Bank about {len(ids)} problem(s).")
        steps.enter(Step.PROBLEM_BANK)
        try:
            facts = await workflow.execute_activity(
                ActivityName.CURRICULUM_FETCH_PROBLEMS,
                FetchProblemsInput(problem_ids=ids),
                result_type=ProblemFactsList,
                start_to_close_timeout=FETCH_START_TO_CLOSE,
                schedule_to_close_timeout=FETCH_SCHEDULE_TO_CLOSE,
                retry_policy=INTERACTIVE_UPSTREAM_RETRY,
            )
        except ActivityError as err:
            workflow.logger.warning("Problem Bank could not be asked: %s", err.cause or err)
            return self._finish(
                PublishOutcome(
                    status=PublishStatus.unavailable,
                    message="Problem Bank is unavailable; try again in a minute.",
                )
            )

        issues = validate_curriculum(data.spec, {p.id for p in facts.items})
        if issues:
            return self._finish(
                PublishOutcome(status=PublishStatus.invalid, issues=issues, problems=facts.items)
            )
        if data.dry_run or data.version_id is None:
            return self._finish(PublishOutcome(status=PublishStatus.valid, problems=facts.items))

        workflow.set_current_details(f"Publishing version {data.version_id}.")
        steps.enter(Step.DATABASE)
        try:
            published = await workflow.execute_activity(
                ActivityName.CURRICULUM_PUBLISH_VERSION,
                PublishVersionInput(
                    version_id=data.version_id, spec=data.spec, problems=facts.items
                ),
                result_type=PublishedVersion,
                start_to_close_timeout=DB_TIMEOUT,
                schedule_to_close_timeout=PUBLISH_SCHEDULE_TO_CLOSE,
                retry_policy=DB_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == "DraftChanged":
                return self._finish(
                    PublishOutcome(status=PublishStatus.draft_changed, message=cause.message)
                )
            raise ApplicationError(
                "the draft could not be published", type=FailureType.PUBLISH_FAILED
            ) from err
        return self._finish(
            PublishOutcome(
                status=PublishStatus.published, published=published, problems=facts.items
            )
        )

    def _finish(self, outcome: PublishOutcome) -> PublishOutcome:
        steps.enter(Step.DONE)
        workflow.upsert_search_attributes([CO_STATUS.value_set(outcome.status.value)])
        workflow.set_current_details(f"Finished: {outcome.status.value}.")
        return outcome
