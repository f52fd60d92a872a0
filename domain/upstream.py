"""HTTP contracts of the upstream services: Problem Bank, Eval and Tutor.

These models are the written-down contract. The real services and the reference
implementations in ``devservices/`` speak exactly these shapes; the activities in
``activities/`` are their only callers.

Problem Bank
    ``GET  /v1/problems``                      -> ``ProblemList``      (public data only)
    ``GET  /v1/problems/{problem_id}``         -> ``ProblemPublic``    (public data only)
    ``GET  /internal/v1/problems/{problem_id}`` -> ``ProblemBundle``   (adds hidden tests and
        the reference solution)
    Every route needs ``X-Internal-Token``: the public part holds the whole hint ladder,
    which CO cuts at the level a learner has unlocked.

Eval
    ``POST /v1/evaluate``  ``EvalRequest`` -> ``EvalResponse`` (needs ``X-Internal-Token``)

Tutor
    ``POST /v1/hints/stream`` ``TutorRequest`` -> ``application/x-ndjson`` stream of ``TutorChunk``
        (needs ``X-Internal-Token``). See "The Tutor contract" below.

Errors are ``application/problem+json`` with the HTTP status carrying the class:
4xx means the request is wrong and retrying cannot help; 429/5xx are transient.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

INTERNAL_TOKEN_HEADER = "X-Internal-Token"


class Domain(StrEnum):
    coding = "coding"
    math = "math"
    systems = "systems"


class EvalKind(StrEnum):
    """How an answer to a problem is evaluated."""

    python = "python"  # code: a Python function called on each test's arguments
    math_expr = "math_expr"  # a symbolic expression, checked for equivalence
    numeric = "numeric"  # a number, checked with tolerance
    multiple_choice = "multiple_choice"  # the id of one choice


class Verdict(StrEnum):
    accepted = "accepted"
    wrong_answer = "wrong_answer"
    time_limit_exceeded = "time_limit_exceeded"
    memory_limit_exceeded = "memory_limit_exceeded"
    runtime_error = "runtime_error"
    compile_error = "compile_error"
    invalid_answer = "invalid_answer"
    internal_error = "internal_error"


class _Contract(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TestCase(_Contract):
    """One test. For ``python`` problems ``args`` are the function's positional
    arguments and ``expected`` its return value (JSON values)."""

    __test__ = False  # not a pytest class

    args: list[Any] = Field(default_factory=list)
    expected: Any = None


class Choice(_Contract):
    id: str
    text: str


class ProblemPublic(_Contract):
    """What a learner may see of a problem."""

    id: str
    title: str
    domain: Domain
    kind: EvalKind
    statement: str
    skills: list[str]
    difficulty: Annotated[int, Field(ge=1, le=5)]
    hints: list[str] = Field(description="The hint ladder, from a nudge to the approach.")
    public_tests: list[TestCase] = Field(default_factory=list)
    function_name: str | None = None  # python problems: the function to define
    starter_code: str | None = None
    choices: list[Choice] = Field(default_factory=list)  # multiple_choice problems
    variables: list[str] = Field(default_factory=list)  # math_expr problems
    tolerance: float | None = None  # numeric problems: absolute tolerance
    time_limit_ms: int = 2000
    memory_limit_mb: int = 256
    solution_reveal_allowed: bool = False


class ProblemList(_Contract):
    items: list[ProblemPublic]


class ProblemBundle(_Contract):
    """Everything needed to evaluate: internal only, never shown to a learner."""

    problem: ProblemPublic
    hidden_tests: list[TestCase] = Field(default_factory=list)
    expected_answer: str | None = None  # math_expr / numeric / multiple_choice
    reference_solution: str


class EvalLimits(_Contract):
    time_limit_ms: int = 2000
    memory_limit_mb: int = 256


class EvalTest(_Contract):
    __test__ = False

    args: list[Any] = Field(default_factory=list)
    expected: Any = None
    hidden: bool = False


class EvalRequest(_Contract):
    kind: EvalKind
    code: str | None = None
    function_name: str | None = None
    tests: list[EvalTest] = Field(default_factory=list)
    answer: str | None = None
    expected_answer: str | None = None
    variables: list[str] = Field(default_factory=list)
    tolerance: float | None = None
    choices: list[str] = Field(default_factory=list)  # multiple_choice: the valid choice ids
    limits: EvalLimits = Field(default_factory=EvalLimits)


class EvalTestResult(_Contract):
    """One test's outcome. For hidden tests only ``index``, ``hidden``, ``passed``
    and ``time_ms`` are ever filled: no input, expected value or output."""

    __test__ = False

    index: int
    hidden: bool
    passed: bool
    time_ms: int = 0
    verdict: Verdict | None = None
    args: list[Any] | None = None
    expected: Any = None
    actual: Any = None
    stdout: str | None = None
    error: str | None = None


class EvalResponse(_Contract):
    verdict: Verdict
    message: str = ""
    tests: list[EvalTestResult] = Field(default_factory=list)
    time_ms: int = 0
    memory_kb: int | None = None


# --------------------------------------------------------------------------- Tutor
#
# The Tutor contract
#
# ``POST /v1/hints/stream`` with a ``TutorRequest`` JSON body and ``X-Internal-Token``.
# Errors before the stream starts are problem+json with the usual classes (401/422 are
# final, 429/503 transient). A 200 answer is ``application/x-ndjson``: one ``TutorChunk``
# per line, ``token`` chunks in order and then exactly one ``done``; a stream that ends
# without ``done``, or with an ``error`` chunk, failed part-way and may be retried.
#
# The request is self-contained: CO sends the *public* problem (statement, hint ladder,
# public tests) and the public part of the learner's last result, so the Tutor needs no
# access to Problem Bank and can only ever know what a learner may see. Hidden tests and
# the reference solution are never sent.
#
# Resuming: a retried request carries ``continue_from`` = N, the number of characters of
# the answer the caller already has (and, as ``prefix``, those characters). The Tutor
# answers only the rest: the first token's ``offset`` is N. Token offsets let the caller
# check that nothing was skipped or repeated. A deterministic Tutor (the dev one) resumes
# by skipping N characters of the answer it would give; a generative one continues the
# ``prefix`` (assistant prefill).

MAX_TUTOR_MESSAGE_CHARS = 4000


class TutorTestResult(_Contract):
    """One *public* test of the learner's last result; hidden tests are never included."""

    __test__ = False

    label: str
    passed: bool
    args: list[Any] | None = None
    expected: Any = None
    actual: Any = None
    error: str | None = None


class TutorLastResult(_Contract):
    """The learner's last result on the problem, reduced to what the learner saw."""

    verdict: Verdict
    message: str = ""
    passed: int = 0
    total: int = 0
    failing_public_tests: list[TutorTestResult] = Field(default_factory=list)


class TutorRequest(_Contract):
    turn_id: str = Field(description="CO's message id: the same on every retry of one turn.")
    problem: ProblemPublic
    hint_level: Annotated[int, Field(ge=1, le=3)] = Field(
        description="1 nudges, 2 names the concept, 3 shows the approach."
    )
    message: Annotated[str, Field(max_length=MAX_TUTOR_MESSAGE_CHARS)]
    last_result: TutorLastResult | None = None
    failed_attempts: Annotated[int, Field(ge=0)] = 0
    allow_solution: bool = Field(
        default=False, description="Whether the answer may contain a full solution."
    )
    continue_from: Annotated[int, Field(ge=0)] = Field(
        default=0, description="Characters of the answer the caller already has."
    )
    prefix: str = Field(default="", description="Those characters, for a generative Tutor.")


class TutorChunk(_Contract):
    """One NDJSON line of the answer stream."""

    type: Literal["token", "done", "error"]
    text: str = ""
    offset: int | None = Field(
        default=None,
        description="token: the character offset of ``text`` in the whole answer; "
        "done: the answer's length.",
    )


# --------------------------------------------------------------------------- Main API
#
# The notifications contract (the main API, ``CO_API_BASE``)
#
# ``POST /internal/v1/notifications`` with a ``Notification`` JSON body, ``X-Internal-Token``
# and an ``Idempotency-Key`` header (the batch id). The main API answers ``202`` with a
# ``NotificationReceipt``; a repeated key answers ``200`` with the first receipt and
# ``duplicate: true`` and notifies nobody again, so a retried or replayed delivery is
# harmless. 401/422 are final; 429/5xx are transient and retried by the caller.

NOTIFICATIONS_PATH = "/internal/v1/notifications"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


class Notification(_Contract):
    """Reviews are due for a learner: how many and the earliest one."""

    kind: Literal["reviews_due"] = "reviews_due"
    user_id: str
    batch_id: str = Field(description="The same for every delivery of one due batch.")
    due_count: Annotated[int, Field(ge=1)]
    earliest_problem_id: str
    earliest_due_at: str = Field(description="ISO 8601, UTC.")


class NotificationReceipt(_Contract):
    id: str
    duplicate: bool = False
