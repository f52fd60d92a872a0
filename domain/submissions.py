"""Submissions: the API's shapes, the workflow's contracts and the redaction rule.

Everything that crosses the SubmissionWorkflow boundary is here and small: ids
and facts, never code, never a test bundle.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.upstream import EvalKind, EvalResponse, EvalTestResult, Verdict

# Idempotency keys map onto submission ids deterministically, per user.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1d2c1e-54a4-4a8e-9a57-0c6b3c9a1e11")

MAX_FIELD_CHARS = 1000  # per public-test field kept in a result
MAX_TESTS_IN_RESULT = 100


class SubmissionStatus(StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"


def submission_id_for_key(user_id: str, idempotency_key: str) -> uuid.UUID:
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user_id}\x00{idempotency_key}")


# --------------------------------------------------------------------------- API


class SubmissionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    problem_id: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    session_id: uuid.UUID | None = None
    language: Annotated[str, StringConstraints(max_length=30)] | None = Field(
        default=None, description="For code problems; only 'python' is evaluated today."
    )
    code: str | None = Field(default=None, description="Source code, for code problems.")
    answer: str | None = Field(
        default=None, description="An expression, a number or a choice id, for answer problems."
    )


class TestResultOut(BaseModel):
    """One test of a result. Hidden tests show only their number and outcome."""

    __test__ = False

    index: int
    hidden: bool
    passed: bool
    time_ms: int = 0
    verdict: Verdict | None = None
    label: str
    args: list[Any] | None = None
    expected: Any = None
    actual: Any = None
    stdout: str | None = None
    error: str | None = None


class ResultOut(BaseModel):
    verdict: Verdict
    message: str
    passed: int | None = Field(
        description="Tests passed (public and hidden); null for answers (math, numeric, "
        "choice), which are checked as a whole and have no tests."
    )
    total: int | None = Field(description="Tests run; null for answers, as `passed`.")
    time_ms: int = Field(description="Eval's wall time for this evaluation, in milliseconds.")
    memory_kb: int | None = None
    tests: list[TestResultOut] = Field(description="Per test (code problems); empty for answers.")


class RetryReason(StrEnum):
    """Why an evaluation is being retried, as a class (never the upstream's own text)."""

    problem_bank_unavailable = "problem_bank_unavailable"
    eval_unavailable = "eval_unavailable"
    internal = "internal"


class EvaluationProgress(BaseModel):
    """How the evaluation is going while the submission is not finished."""

    attempt: int = Field(description="The evaluation attempt running now (1 = the first).")
    retrying: bool = Field(description="An earlier attempt failed and evaluation is retried.")
    last_failure: RetryReason | None = Field(
        description="The class of the failure that made it retry."
    )


class SubmissionOut(BaseModel):
    id: uuid.UUID
    problem_id: str
    session_id: uuid.UUID | None
    kind: EvalKind
    language: str | None
    status: SubmissionStatus
    verdict: Verdict | None
    failure_reason: str | None
    evaluation: EvaluationProgress | None = Field(
        default=None,
        description="While `running`: the evaluation's attempt and, when retried, why.",
    )
    created_at: datetime
    completed_at: datetime | None
    duration_ms: int | None = Field(
        default=None,
        description="Whole-submission time, from the POST to the stored result "
        "(queueing and retries included); null until finished.",
    )
    result: ResultOut | None = None
    links: dict[str, str] = Field(default_factory=dict)


class SubmissionPage(BaseModel):
    items: list[SubmissionOut]
    next_cursor: str | None = None


# --------------------------------------------------------------------------- workflow


class SubmissionInput(BaseModel):
    """Ids and the facts the workflow needs; never code or an answer.

    The API commits the row *before* it starts the workflow and passes the row's facts
    (``problem_id``, ``kind``, ``session_id``), so the workflow goes straight to the
    evaluation. Histories recorded when the API started the workflow first carry ids
    only (the facts are then ``None``) and read them from the row (``submission.begin``).
    """

    submission_id: uuid.UUID
    user_id: str
    problem_id: str | None = None
    kind: EvalKind | None = None
    session_id: uuid.UUID | None = None

    def facts(self) -> SubmissionFacts | None:
        """The row's facts when the API passed them (it committed the row first)."""
        if self.problem_id is None or self.kind is None:
            return None
        return SubmissionFacts(
            problem_id=self.problem_id, kind=self.kind, session_id=self.session_id
        )


class BeginInput(BaseModel):
    submission_id: uuid.UUID


class SubmissionFacts(BaseModel):
    """What the workflow learns from the submission's row once it exists."""

    problem_id: str
    kind: EvalKind
    session_id: uuid.UUID | None = None


class EvaluateInput(BaseModel):
    submission_id: uuid.UUID


class EvaluationOutcome(BaseModel):
    """What the evaluation activity returns: already redacted, bounded in size."""

    verdict: Verdict
    message: str
    tests: list[TestResultOut] = Field(default_factory=list)
    time_ms: int = 0
    memory_kb: int | None = None

    @property
    def passed(self) -> int:
        return sum(1 for t in self.tests if t.passed)


class EvaluateAndStoreInput(BaseModel):
    """``submission.evaluate_and_store``: evaluate, store the result and tell the
    learner's review schedule, in one idempotent activity."""

    submission_id: uuid.UUID
    user_id: str
    problem_id: str


class StoredVerdict(BaseModel):
    """What ``submission.evaluate_and_store`` returns: the verdict only (the redacted
    result is in PostgreSQL), so history stays small and holds nothing of the tests."""

    verdict: Verdict


class PersistResultInput(BaseModel):
    submission_id: uuid.UUID
    user_id: str
    problem_id: str
    outcome: EvaluationOutcome


class SubmissionOutcome(BaseModel):
    submission_id: uuid.UUID
    status: SubmissionStatus
    verdict: Verdict | None = None  # None: the row was never written (the POST crashed)


# --------------------------------------------------------------------------- redaction


def _clip(value: Any) -> Any:
    """Bound a JSON value's size so one result can never bloat history or a response."""
    if isinstance(value, str):
        return value if len(value) <= MAX_FIELD_CHARS else value[:MAX_FIELD_CHARS] + "…"
    if value is None or isinstance(value, bool | int | float):
        return value
    import json

    text = json.dumps(value, default=str)
    return value if len(text) <= MAX_FIELD_CHARS else text[:MAX_FIELD_CHARS] + "…"


def redact_test(test: EvalTestResult) -> TestResultOut:
    """Hidden tests keep only number and outcome, whatever the evaluator sent."""
    number = test.index + 1
    if test.hidden:
        return TestResultOut(
            index=test.index,
            hidden=True,
            passed=test.passed,
            time_ms=test.time_ms,
            verdict=test.verdict,
            label=f"hidden test {number}: {'passed' if test.passed else 'failed'}",
        )
    return TestResultOut(
        index=test.index,
        hidden=False,
        passed=test.passed,
        time_ms=test.time_ms,
        verdict=test.verdict,
        label=f"test {number}: {'passed' if test.passed else 'failed'}",
        args=[_clip(a) for a in test.args] if test.args is not None else None,
        expected=_clip(test.expected),
        actual=_clip(test.actual),
        stdout=_clip(test.stdout),
        error=_clip(test.error),
    )


_VERDICT_TEXT = {
    Verdict.accepted: "All tests passed.",
    Verdict.wrong_answer: "The answer is not correct.",
    Verdict.time_limit_exceeded: "The program ran longer than the time limit.",
    Verdict.memory_limit_exceeded: "The program used more memory than the limit.",
    Verdict.runtime_error: "The program raised an error.",
    Verdict.compile_error: "The code could not be compiled.",
    Verdict.invalid_answer: "The answer could not be read.",
    Verdict.internal_error: "The submission could not be evaluated; it was not your fault.",
}

# Verdicts whose evaluator message is about the learner's own text (syntax or
# parse errors), so it is safe to pass on.
_SELF_DESCRIBING = {Verdict.compile_error, Verdict.invalid_answer}


_ANSWER_TEXT = {
    Verdict.accepted: "The answer is correct.",
    Verdict.wrong_answer: "The answer is not correct.",
}


def redact_response(response: EvalResponse, kind: EvalKind | None = None) -> EvaluationOutcome:
    """The learner-safe outcome of an evaluation.

    The evaluator's free-text message is kept only where it describes the
    learner's own input; otherwise the message is rebuilt from the first failing
    test, which for a hidden test says nothing but its number. An answer (math,
    numeric, choice) has no tests, and its message does not speak of any.
    """
    tests = [redact_test(t) for t in response.tests[:MAX_TESTS_IN_RESULT]]
    message = _VERDICT_TEXT[response.verdict]
    if kind is not None and kind != EvalKind.python:
        message = _ANSWER_TEXT.get(response.verdict, message)
    if response.verdict in _SELF_DESCRIBING and response.message:
        message = _clip(response.message)
    elif response.verdict != Verdict.accepted:
        failing = next((t for t in tests if not t.passed), None)
        if failing is not None:
            message = f"{message} First failure: {failing.label}."
            if not failing.hidden and failing.error:
                message += f" {failing.error}"
    return EvaluationOutcome(
        verdict=response.verdict,
        message=message,
        tests=tests,
        time_ms=response.time_ms,
        memory_kb=response.memory_kb,
    )
