"""Tutor turns: the API's shapes, TutorTurnWorkflow's contracts and the Redis stream format.

One turn = one learner message and one streamed answer. The answer travels
Tutor service -> ``tutor.stream`` activity -> Redis Stream ``tutor:{message_id}`` ->
the API's SSE relay -> the browser. The stream is the only place tokens live while a
turn runs; Postgres gets the transcript when it ends.

Stream entries (fields are strings):

``token``   ``text``, ``offset`` (character offset of ``text`` in the answer)
``restart`` ``attempt``, ``offset`` – a retried activity attempt took over at ``offset``;
            it carries on from there, so nothing before ``offset`` is ever written twice
``done``    ``chars`` – the transcript is stored; nothing follows
``error``   ``code``, ``reason`` (for the learner) – the turn failed; nothing follows
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.hints import HintDecision
from domain.limits import TUTOR_MAX_MESSAGE_CHARS
from domain.upstream import TutorLastResult, TutorTestResult, Verdict

IDEMPOTENCY_NAMESPACE: Final = uuid.UUID("0b7f3c55-8f0e-4d8c-b6a5-3c1d9e2a7f41")
MAX_FAILING_TESTS_IN_CONTEXT: Final = 3
MAX_CONTEXT_FIELD_CHARS: Final = 300


class TurnStatus(StrEnum):
    streaming = "streaming"
    completed = "completed"
    failed = "failed"


class EntryType(StrEnum):
    token = "token"
    restart = "restart"
    done = "done"
    error = "error"


def stream_key(message_id: object) -> str:
    """The Redis Stream of a turn's answer."""
    return f"tutor:{message_id}"


def stream_state_key(message_id: object) -> str:
    """A hash beside the stream: the owning attempt, the committed length, done/complete flags."""
    return f"tutor:{message_id}:state"


def message_id_for_key(user_id: str, idempotency_key: str) -> uuid.UUID:
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user_id}\x00{idempotency_key}")


# --------------------------------------------------------------------------- API


class TutorMessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: uuid.UUID
    problem_id: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    message: Annotated[str, StringConstraints(min_length=1, max_length=TUTOR_MAX_MESSAGE_CHARS)] = (
        Field(description="The learner's question (at most CO_TUTOR_MAX_MESSAGE_CHARS characters).")
    )
    hint_level: Annotated[int, Field(ge=1, le=3)] | None = Field(
        default=None,
        description="The level asked for; the level granted may be lower (see `meta.capped`).",
    )


class TutorMessageOut(BaseModel):
    """A stored turn: the learner's message and the tutor's answer (the transcript)."""

    id: uuid.UUID
    session_id: uuid.UUID
    problem_id: str
    message: str
    hint_level: int
    hint_level_requested: int | None
    capped: bool
    status: TurnStatus
    response: str
    error: str | None
    created_at: datetime
    completed_at: datetime | None
    links: dict[str, str] = Field(default_factory=dict)


class TutorMessagePage(BaseModel):
    items: list[TutorMessageOut]
    next_cursor: str | None = None


class MetaEvent(BaseModel):
    """The data of the first SSE event of every tutor stream."""

    message_id: uuid.UUID
    session_id: uuid.UUID
    problem_id: str
    hint_level: int
    hint_level_requested: int | None
    capped: bool
    status: TurnStatus
    resumed: bool = Field(description="True when the stream resumes after Last-Event-ID.")


# --------------------------------------------------------------------------- workflow


class TutorTurnInput(BaseModel):
    """Ids and the hint decision; the learner's text stays in Postgres."""

    message_id: uuid.UUID
    user_id: str
    session_id: uuid.UUID
    problem_id: str
    decision: HintDecision


class BeginTurnInput(BaseModel):
    message_id: uuid.UUID


class StreamTurnInput(BaseModel):
    message_id: uuid.UUID
    problem_id: str
    hint_level: int
    failed_attempts: int


class StreamOutcome(BaseModel):
    chars: int
    tokens: int  # written by the attempt that finished
    attempt: int
    restarted_at: int | None = None  # offset the finishing attempt resumed from


class FinishTurnInput(BaseModel):
    message_id: uuid.UUID


class FailTurnInput(BaseModel):
    message_id: uuid.UUID
    code: str
    reason: str


class TutorTurnOutcome(BaseModel):
    message_id: uuid.UUID
    status: TurnStatus
    chars: int = 0


# --------------------------------------------------------------------------- context


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_CONTEXT_FIELD_CHARS:
        return value[:MAX_CONTEXT_FIELD_CHARS] + "…"
    return value


def public_last_result(verdict: str, message: str, tests: list[dict[str, Any]]) -> TutorLastResult:
    """The learner's last result as tutor context: public tests only.

    Stored results already carry hidden tests as bare labels; they are dropped here
    anyway (defence in depth), and so is the learner program's ``stdout``.
    """
    public = [t for t in tests if t.get("hidden") is False]
    failing = [
        TutorTestResult(
            label=str(t.get("label", "")),
            passed=False,
            args=t.get("args"),
            expected=_clip(t.get("expected")),
            actual=_clip(t.get("actual")),
            error=_clip(t.get("error")),
        )
        for t in public
        if not t.get("passed")
    ][:MAX_FAILING_TESTS_IN_CONTEXT]
    return TutorLastResult(
        verdict=Verdict(verdict),
        message=_clip(message),
        passed=sum(1 for t in tests if t.get("passed")),
        total=len(tests),
        failing_public_tests=failing,
    )
