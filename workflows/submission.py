"""SubmissionWorkflow (id ``submission-{submission_id}``): one evaluation, start to verdict.

running -> evaluate (hidden tests stay inside the activity) -> persist the result
-> completed. An evaluation that cannot be done (Eval refuses the request, or stays
unavailable past the retry budget) ends as ``internal_error`` with status
``failed`` and a reason a learner can read; it never retries forever.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import steps

with workflow.unsafe.imports_passed_through():
    from domain.contracts import (
        CO_PROBLEM_ID,
        CO_SESSION_ID,
        CO_STATUS,
        CO_USER_ID,
        DB_RETRY,
        DB_TIMEOUT,
        EVAL_HEARTBEAT,
        EVAL_RETRY,
        EVAL_SCHEDULE_TO_CLOSE,
        EVAL_START_TO_CLOSE,
        RECORD_RETRY,
        RECORD_WAIT,
        ActivityName,
        QueryName,
        SignalName,
        Step,
        WorkflowName,
        session_workflow_id,
    )
    from domain.reviews import (
        SubmissionReviewed,
        TellSubmissionInput,
    )
    from domain.sessions import SubmissionFinished
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
    from domain.upstream import Verdict


INTERNAL_ERROR_MESSAGE = (
    "The submission could not be evaluated because of a problem on our side; "
    "it was not your fault. Please submit again."
)


@workflow.defn(name=WorkflowName.SUBMISSION)
class SubmissionWorkflow:
    def __init__(self) -> None:
        self._status = SubmissionStatus.queued

    @workflow.query(name=QueryName.STATUS)
    def status(self) -> SubmissionStatus:
        return self._status

    def _set_status(self, status: SubmissionStatus) -> None:
        self._status = status
        workflow.upsert_search_attributes([CO_STATUS.value_set(status.value)])

    @workflow.run
    async def run(self, data: SubmissionInput) -> SubmissionOutcome:
        workflow.upsert_search_attributes([CO_USER_ID.value_set(data.user_id)])
        workflow.set_current_details("Waiting for the API to record the submission.")
        try:
            facts = await workflow.execute_activity(
                ActivityName.SUBMISSION_BEGIN,
                BeginInput(submission_id=data.submission_id),
                result_type=SubmissionFacts,
                start_to_close_timeout=DB_TIMEOUT,
                schedule_to_close_timeout=RECORD_WAIT,
                retry_policy=RECORD_RETRY,
            )
        except ActivityError:
            # The POST that started us died before writing the row: nothing to evaluate.
            self._set_status(SubmissionStatus.failed)
            workflow.set_current_details("Abandoned: the submission was never recorded.")
            return SubmissionOutcome(submission_id=data.submission_id, status=self._status)

        attributes = [CO_PROBLEM_ID.value_set(facts.problem_id)]
        if facts.session_id is not None:
            attributes.append(CO_SESSION_ID.value_set(str(facts.session_id)))
        workflow.upsert_search_attributes(attributes)
        self._set_status(SubmissionStatus.running)
        workflow.set_current_details(
            f"Evaluating a {facts.kind.value} submission to problem {facts.problem_id} "
            "(waiting for Problem Bank and Eval)."
        )
        steps.enter(Step.EVAL)
        try:
            outcome = await workflow.execute_activity(
                ActivityName.SUBMISSION_EVALUATE,
                EvaluateInput(submission_id=data.submission_id),
                result_type=EvaluationOutcome,
                start_to_close_timeout=EVAL_START_TO_CLOSE,
                schedule_to_close_timeout=EVAL_SCHEDULE_TO_CLOSE,
                heartbeat_timeout=EVAL_HEARTBEAT,
                retry_policy=EVAL_RETRY,
            )
        except ActivityError as err:
            # The cause (bounded by the activity) stays in history for operators;
            # the learner gets a plain reason.
            workflow.logger.warning("evaluation failed: %s", err.cause or err)
            outcome = EvaluationOutcome(
                verdict=Verdict.internal_error, message=INTERNAL_ERROR_MESSAGE
            )

        workflow.set_current_details(f"Saving the verdict {outcome.verdict.value}.")
        steps.enter(Step.DATABASE)
        await workflow.execute_activity(
            ActivityName.SUBMISSION_PERSIST_RESULT,
            PersistResultInput(
                submission_id=data.submission_id,
                user_id=data.user_id,
                problem_id=facts.problem_id,
                outcome=outcome,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )

        if facts.session_id is not None:
            await self._tell_session(data, facts, outcome.verdict)

        if workflow.patched("submission-tells-reviews"):
            await self._tell_reviews(data, facts, outcome.verdict)

        steps.enter(Step.DONE)
        failed = outcome.verdict == Verdict.internal_error
        self._set_status(SubmissionStatus.failed if failed else SubmissionStatus.completed)
        workflow.set_current_details(f"Finished: {outcome.verdict.value}.")
        return SubmissionOutcome(
            submission_id=data.submission_id, status=self._status, verdict=outcome.verdict
        )

    async def _tell_reviews(
        self, data: SubmissionInput, facts: SubmissionFacts, verdict: Verdict
    ) -> None:
        """Tell the learner's review schedule (a new card, or a review of a due one).

        Through an activity that signals-with-start ``reviews-{user}``: a workflow cannot
        signal-with-start itself, and an external signal fails while the schedule does not
        exist yet. Verdicts that cannot make or grade a card send nothing."""
        if verdict == Verdict.internal_error:
            return
        workflow.set_current_details("Telling the learner's review schedule.")
        await workflow.execute_activity(
            ActivityName.REVIEWS_TELL_SUBMISSION,
            TellSubmissionInput(
                user_id=data.user_id,
                submission=SubmissionReviewed(
                    submission_id=data.submission_id,
                    problem_id=facts.problem_id,
                    verdict=verdict,
                ),
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )

    async def _tell_session(
        self, data: SubmissionInput, facts: SubmissionFacts, verdict: Verdict
    ) -> None:
        """Signal the learner's session. A session that has closed (ended, completed,
        abandoned) cannot be signalled; that must not fail the submission, whose
        result is already stored."""
        assert facts.session_id is not None
        workflow.set_current_details(f"Telling session {facts.session_id} the verdict.")
        session = workflow.get_external_workflow_handle(session_workflow_id(facts.session_id))
        try:
            await session.signal(
                SignalName.SUBMISSION_FINISHED,
                SubmissionFinished(
                    submission_id=data.submission_id,
                    problem_id=facts.problem_id,
                    verdict=verdict,
                ),
            )
        except ApplicationError as err:  # ExternalWorkflowExecutionNotFound
            workflow.logger.info("session %s not signalled: %s", facts.session_id, err)
