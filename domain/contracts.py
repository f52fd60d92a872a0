"""The Temporal contracts: everything that crosses the boundary between the API, the
workflows and the activities, written once.

Workflow, activity, signal, update and query names; the error types raised across the
boundary (``ApplicationError.type``); the retry and timeout policies, one per intent; the
custom search attributes; and the workflow id builders. Pure definitions with no I/O,
safe to import inside workflows. The API starts workflows through ``api.temporal.start``,
which sets the search attributes and turns an unreachable Temporal into a 503.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy, SearchAttributeIndexedValueType, SearchAttributeKey

# Custom search attributes: registered by the dev stack (`make dev`) and the test
# fixtures, set by every workflow so operators can find work in the Temporal UI.
CO_USER_ID = SearchAttributeKey.for_keyword("CoUserId")
CO_TRACK_SLUG = SearchAttributeKey.for_keyword("CoTrackSlug")
CO_PROBLEM_ID = SearchAttributeKey.for_keyword("CoProblemId")
CO_STATUS = SearchAttributeKey.for_keyword("CoStatus")
CO_SESSION_ID = SearchAttributeKey.for_keyword("CoSessionId")
# What a running workflow waits for now (one of ``Step``) and since when: operators find
# "waiting on Eval for more than 5 minutes" with
# ``CoStep = "eval" AND CoStepSince < "<5 minutes ago>"`` (the README's runbook).
CO_STEP = SearchAttributeKey.for_keyword("CoStep")
CO_STEP_SINCE = SearchAttributeKey.for_datetime("CoStepSince")
# ReviewScheduleWorkflow: how many cards are due now, and when it wakes next.
CO_REVIEWS_DUE = SearchAttributeKey.for_int("CoReviewsDue")
CO_NEXT_REVIEW_AT = SearchAttributeKey.for_datetime("CoNextReviewAt")

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[Any], ...] = (
    CO_USER_ID,
    CO_TRACK_SLUG,
    CO_PROBLEM_ID,
    CO_STATUS,
    CO_SESSION_ID,
    CO_STEP,
    CO_STEP_SINCE,
    CO_REVIEWS_DUE,
    CO_NEXT_REVIEW_AT,
)

# The name of each attribute type as the Temporal CLI's ``--search-attribute`` takes it.
CLI_TYPE_NAMES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
}


class WorkflowName:
    SESSION = "SessionWorkflow"
    SUBMISSION = "SubmissionWorkflow"
    TUTOR_TURN = "TutorTurnWorkflow"
    PUBLISH_TRACK = "PublishTrackWorkflow"
    REVIEW_SCHEDULE = "ReviewScheduleWorkflow"


class ActivityName:
    SESSION_PROJECT = "session.project"
    SUBMISSION_BEGIN = "submission.begin"
    SUBMISSION_EVALUATE = "submission.evaluate"
    SUBMISSION_PERSIST_RESULT = "submission.persist_result"
    TUTOR_BEGIN = "tutor.begin"
    TUTOR_STREAM = "tutor.stream"
    TUTOR_FINISH = "tutor.finish"
    TUTOR_FAIL = "tutor.fail"
    CURRICULUM_FETCH_PROBLEMS = "curriculum.fetch_problems"
    CURRICULUM_PUBLISH_VERSION = "curriculum.publish_version"
    REVIEWS_PROJECT = "reviews.project"
    REVIEWS_MARK_DUE = "reviews.mark_due"
    REVIEWS_NOTIFY = "reviews.notify"
    REVIEWS_TELL_SUBMISSION = "reviews.tell_submission"


class SignalName:
    SUBMISSION_FINISHED = "submission_finished"  # SubmissionWorkflow -> SessionWorkflow
    HINT_GIVEN = "hint_given"  # TutorTurnWorkflow -> SessionWorkflow
    SUBMISSION_REVIEWED = "submission_reviewed"  # -> ReviewScheduleWorkflow
    REVIEW_SETTINGS = "review_settings"  # API -> ReviewScheduleWorkflow


class UpdateName:
    ADVANCE = "advance"  # SessionWorkflow
    END = "end"  # SessionWorkflow
    GRADE = "grade"  # ReviewScheduleWorkflow


class QueryName:
    STATUS = "status"  # SubmissionWorkflow, TutorTurnWorkflow
    STATE = "state"  # SessionWorkflow
    SNAPSHOT = "snapshot"  # SessionWorkflow
    CARDS = "cards"  # ReviewScheduleWorkflow


class FailureType:
    """``ApplicationError.type`` values raised on one side and read on the other."""

    # activities.upstream classifies every upstream failure into one of these
    UPSTREAM_UNAVAILABLE = "UpstreamUnavailable"
    UPSTREAM_REJECTED = "UpstreamRejected"
    UPSTREAM_MALFORMED = "UpstreamMalformed"
    UPSTREAM_NOT_FOUND = "UpstreamNotFound"
    UPSTREAM_SERVER_ERROR = "UpstreamServerError"
    # the row a workflow works on is not (yet, or any more) in PostgreSQL
    SUBMISSION_NOT_RECORDED = "SubmissionNotRecorded"
    SUBMISSION_MISSING = "SubmissionMissing"
    TUTOR_MESSAGE_NOT_RECORDED = "TutorMessageNotRecorded"
    TUTOR_MESSAGE_MISSING = "TutorMessageMissing"
    TUTOR_ATTEMPT_SUPERSEDED = "TutorAttemptSuperseded"
    TUTOR_STREAM_LOST = "TutorStreamLost"
    DRAFT_CHANGED = "DraftChanged"
    PUBLISH_FAILED = "PublishFailed"
    ADVANCE_REFUSED = "AdvanceRefused"
    REVIEW_CARD_NOT_FOUND = "ReviewCardNotFound"
    REVIEW_NOT_DUE = "ReviewNotDue"


class Step:
    """Values of ``CoStep``: the dependency a workflow is waiting on."""

    EVAL = "eval"  # SubmissionWorkflow: evaluation (Problem Bank bundle + Eval)
    PROBLEM_BANK = "problem-bank"  # PublishTrackWorkflow: checking the curriculum
    DATABASE = "database"  # any projection / result / publication write
    LEARNER = "learner"  # SessionWorkflow: waiting for the learner (not stuck)
    DONE = "done"


# --------------------------------------------------------------------------- policies
# One retry policy per intent; every activity call names one of these.

# Projection writes to PostgreSQL (sessions, submission results, review cards, publications):
# retried until the database is back, so a restart only delays them.
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=20)
)
DB_TIMEOUT = timedelta(seconds=15)

# The same writes while a learner watches (a tutor turn): retried sooner, still without end.
INTERACTIVE_DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
)

# Waiting for the API to commit the row it recorded before starting the workflow
# (histories recorded before the API committed first): poll quickly, give up after a while.
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
)
RECORD_WAIT = timedelta(minutes=2)
# The tutor's first step is a local activity: the attempt limit bounds the wait even where a
# local activity's schedule-to-close is not enforced (the time-skipping server).
RECORD_RETRY_LOCAL = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=12,
)

# Evaluation: transient upstream failures retry with backoff for up to 30 minutes; 4xx and
# malformed answers are non-retryable (raised as such by the activity).
EVAL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
EVAL_START_TO_CLOSE = timedelta(minutes=3)
EVAL_SCHEDULE_TO_CLOSE = timedelta(minutes=30)
EVAL_HEARTBEAT = timedelta(seconds=10)

# Someone waits on the other end of the API (an author publishing): retry Problem Bank
# briefly, then say it is unavailable rather than keep them waiting.
INTERACTIVE_UPSTREAM_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
)
FETCH_START_TO_CLOSE = timedelta(seconds=10)
FETCH_SCHEDULE_TO_CLOSE = timedelta(seconds=20)
PUBLISH_SCHEDULE_TO_CLOSE = timedelta(minutes=2)

# A learner is watching the tutor: retry a failing Tutor quickly and give up within seconds.
# Each retry resumes where the stream stopped, so retrying is never visible.
STREAM_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=4),
    maximum_attempts=6,
)
STREAM_START_TO_CLOSE = timedelta(seconds=90)
STREAM_SCHEDULE_TO_CLOSE = timedelta(minutes=3)
STREAM_HEARTBEAT = timedelta(seconds=10)

# Telling the main API that reviews are due: transient failures retry without end (a due
# notification must never be lost); a refusal (4xx) is non-retryable and logged.
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
NOTIFY_TIMEOUT = timedelta(seconds=30)


# --------------------------------------------------------------------------- ids


def session_workflow_id(session_id: object) -> str:
    return f"session-{session_id}"


def submission_workflow_id(submission_id: object) -> str:
    return f"submission-{submission_id}"


def tutor_workflow_id(message_id: object) -> str:
    return f"tutor-{message_id}"


def reviews_workflow_id(user_id: str) -> str:
    return f"reviews-{user_id}"


def publish_workflow_id(version_id: object) -> str:
    return f"publish-{version_id}"


def curriculum_check_workflow_id(check_id: object) -> str:
    return f"curriculum-check-{check_id}"
