"""TutorTurnWorkflow (id ``tutor-{message_id}``): one learner message, one streamed answer.

stream (Tutor -> Redis Stream, retried with resume-from-offset, see
``activities.tutor``) -> finish (transcript in Postgres, ``done`` on the stream) -> tell
the session a hint was given. A turn that cannot be answered ends with ``fail``:
whatever was streamed is kept and the relay gets an ``error`` with a reason a learner
can read.

The API commits the turn's row *before* it starts this workflow and sets the search
attributes on the start (patch ``tutor-api-commits-first``), so the first workflow task
schedules the stream at once: a learner waits for the first token through one workflow
task and one activity dispatch, nothing else. Runs started before that patch first ran
``tutor.begin``, a local activity that polled until the API's commit arrived, and set
the search attributes again; they replay on that path.

The hint level was decided by the API with the pure policy (``domain.hints``) because
the client must hear it first, in ``meta``; the decision and the facts behind it travel
in this workflow's input so operators can read them in the history.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from domain.contracts import (
        CO_PROBLEM_ID,
        CO_SESSION_ID,
        CO_STATUS,
        CO_USER_ID,
        DB_TIMEOUT,
        INTERACTIVE_DB_RETRY,
        RECORD_RETRY_LOCAL,
        RECORD_WAIT,
        STREAM_HEARTBEAT,
        STREAM_RETRY,
        STREAM_SCHEDULE_TO_CLOSE,
        STREAM_START_TO_CLOSE,
        ActivityName,
        FailureType,
        QueryName,
        SignalName,
        WorkflowName,
        session_workflow_id,
    )
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


API_COMMITS_FIRST_PATCH = "tutor-api-commits-first"

UNAVAILABLE_REASON = "The tutor is not available right now. Please try again in a minute."
REFUSED_REASON = "The tutor could not answer this question. Please rephrase it and try again."
# Upstream failures that retrying cannot fix.
_REFUSED_TYPES = frozenset(
    {
        FailureType.UPSTREAM_REJECTED,
        FailureType.UPSTREAM_NOT_FOUND,
        FailureType.UPSTREAM_MALFORMED,
    }
)


def _reason(err: ActivityError) -> tuple[str, str]:
    """A code for clients and a reason for the learner; the details stay in history."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in _REFUSED_TYPES:
        return "tutor_refused", REFUSED_REASON
    return "tutor_unavailable", UNAVAILABLE_REASON


@workflow.defn(name=WorkflowName.TUTOR_TURN)
class TutorTurnWorkflow:
    def __init__(self) -> None:
        self._status = TurnStatus.streaming

    @workflow.query(name=QueryName.STATUS)
    def status(self) -> TurnStatus:
        return self._status

    def _set_status(self, status: TurnStatus) -> None:
        self._status = status
        workflow.upsert_search_attributes([CO_STATUS.value_set(status.value)])

    @workflow.run
    async def run(self, data: TutorTurnInput) -> TutorTurnOutcome:
        if not workflow.patched(API_COMMITS_FIRST_PATCH) and not await self._wait_for_row(data):
            return TutorTurnOutcome(message_id=data.message_id, status=self._status)
        return await self._answer(data)

    async def _wait_for_row(self, data: TutorTurnInput) -> bool:
        """Runs started before the API committed first: publish the search attributes and
        wait for the API's commit. False when the row never came."""
        workflow.upsert_search_attributes(
            [
                CO_USER_ID.value_set(data.user_id),
                CO_PROBLEM_ID.value_set(data.problem_id),
                CO_SESSION_ID.value_set(str(data.session_id)),
                CO_STATUS.value_set(self._status.value),
            ]
        )
        workflow.set_current_details("Waiting for the API to record the message.")
        try:
            # Local: a learner is waiting for the first token, and a short database check
            # does not need a round trip through the server to be scheduled.
            await workflow.execute_local_activity(
                ActivityName.TUTOR_BEGIN,
                BeginTurnInput(message_id=data.message_id),
                result_type=bool,
                start_to_close_timeout=DB_TIMEOUT,
                schedule_to_close_timeout=RECORD_WAIT,
                retry_policy=RECORD_RETRY_LOCAL,
            )
        except (ActivityError, ApplicationError, TimeoutError):
            # (A local activity's failure arrives unwrapped: its ApplicationError or timeout.)
            # The POST that started us died before writing the row: nobody is listening.
            self._set_status(TurnStatus.failed)
            workflow.set_current_details("Abandoned: the message was never recorded.")
            return False
        return True

    async def _answer(self, data: TutorTurnInput) -> TutorTurnOutcome:
        level = data.decision.granted
        workflow.set_current_details(
            f"Streaming a level-{level} hint on {data.problem_id} from the Tutor "
            "into Redis stream tutor:" + str(data.message_id) + "."
        )
        try:
            outcome = await workflow.execute_activity(
                ActivityName.TUTOR_STREAM,
                StreamTurnInput(
                    message_id=data.message_id,
                    problem_id=data.problem_id,
                    hint_level=level,
                    failed_attempts=data.decision.facts.failed_attempts,
                ),
                result_type=StreamOutcome,
                start_to_close_timeout=STREAM_START_TO_CLOSE,
                schedule_to_close_timeout=STREAM_SCHEDULE_TO_CLOSE,
                heartbeat_timeout=STREAM_HEARTBEAT,
                retry_policy=STREAM_RETRY,
            )
            workflow.set_current_details("Saving the transcript.")
            chars = await workflow.execute_activity(
                ActivityName.TUTOR_FINISH,
                FinishTurnInput(message_id=data.message_id),
                result_type=int,
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=INTERACTIVE_DB_RETRY,
            )
        except ActivityError as err:
            # The Tutor stayed down or refused (or, rarely, the stream was lost before it
            # could be stored): close the turn with a reason the learner can read.
            workflow.logger.warning("tutor turn failed: %s", err.cause or err)
            code, reason = _reason(err)
            workflow.set_current_details(f"Closing the turn as failed ({code}).")
            await workflow.execute_activity(
                ActivityName.TUTOR_FAIL,
                FailTurnInput(message_id=data.message_id, code=code, reason=reason),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=INTERACTIVE_DB_RETRY,
            )
            self._set_status(TurnStatus.failed)
            return TutorTurnOutcome(message_id=data.message_id, status=self._status)

        self._set_status(TurnStatus.completed)
        await self._tell_session(data)
        workflow.set_current_details(f"Finished: {outcome.chars} characters.")
        return TutorTurnOutcome(message_id=data.message_id, status=self._status, chars=chars)

    async def _tell_session(self, data: TutorTurnInput) -> None:
        """Signal the learner's SessionWorkflow; a session that is not running is no error
        (it ended, or the session predates its workflow): the transcript is what counts."""
        handle = workflow.get_external_workflow_handle(session_workflow_id(data.session_id))
        try:
            await handle.signal(
                SignalName.HINT_GIVEN,
                HintGiven(
                    problem_id=data.problem_id,
                    level=data.decision.granted,
                    message_id=data.message_id,
                ),
            )
        except FailureError as err:
            workflow.logger.info("session not signalled: %s", err)
