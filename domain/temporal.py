"""Names shared by every Temporal client and worker: search attributes and the
workflow id scheme. Pure definitions, safe to import inside workflows."""

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


class Step:
    """Values of ``CoStep``: the dependency a workflow is waiting on."""

    EVAL = "eval"  # SubmissionWorkflow: evaluation (Problem Bank bundle + Eval)
    PROBLEM_BANK = "problem-bank"  # PublishTrackWorkflow: checking the curriculum
    DATABASE = "database"  # any projection / result / publication write
    LEARNER = "learner"  # SessionWorkflow: waiting for the learner (not stuck)
    DONE = "done"


# Projection writes to PostgreSQL (sessions, submission results, review cards): retried
# until the database is back, so a restart only delays them. One policy for one intent.
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=20)
)
DB_TIMEOUT = timedelta(seconds=15)


def session_workflow_id(session_id: object) -> str:
    return f"session-{session_id}"


def submission_workflow_id(submission_id: object) -> str:
    return f"submission-{submission_id}"


def tutor_workflow_id(message_id: object) -> str:
    return f"tutor-{message_id}"


def reviews_workflow_id(user_id: str) -> str:
    return f"reviews-{user_id}"
