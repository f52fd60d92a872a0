"""What a learner reads of a problem through CO: ``GET /v1/problems/{id}`` and the
problem embedded in a session's current item.

The source is the snapshot of the problem's public part taken when the track version
was published (``problem_snapshots``), never a live Problem Bank call. The hint ladder
is cut at the level the learner has unlocked (``domain.hints``).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from domain.hints import LEVEL_NAMES, MAX_LEVEL, HintFacts, allowed_level, next_unlock
from domain.upstream import Choice, Domain, EvalKind, ProblemPublic, TestCase


class ProblemLimits(BaseModel):
    time_limit_ms: int
    memory_limit_mb: int


class HintOut(BaseModel):
    level: int = Field(ge=1, le=MAX_LEVEL)
    name: str = Field(description="nudge, concept or approach")
    text: str


class HintAccess(BaseModel):
    """Where the learner stands on this problem's hint ladder."""

    unlocked_level: int = Field(description="The highest level the learner may read or ask for.")
    max_level: int = Field(description="Rungs the ladder has (at most 3).")
    failed_attempts: int = Field(description="The learner's evaluated, not accepted submissions.")
    highest_hint_received: int = Field(description="The highest level the tutor has given (0-3).")
    next_unlock: str | None = Field(
        description="What unlocks the next level, in words; null when all are unlocked."
    )


class ProblemSource(BaseModel):
    """The published track version this view of the problem was snapshotted from."""

    track_slug: str
    track_version: int
    track_version_id: uuid.UUID
    session_id: uuid.UUID | None = None


class ProblemView(BaseModel):
    id: str
    title: str
    domain: Domain
    kind: EvalKind
    statement: str
    skills: list[str]
    difficulty: int = Field(description="1 (easiest) to 5.")
    function_name: str | None = Field(description="python problems: the function to define.")
    starter_code: str | None
    public_tests: list[TestCase]
    choices: list[Choice] = Field(description="multiple_choice problems: answer with a choice id.")
    variables: list[str] = Field(description="math_expr problems: the variables allowed.")
    tolerance: float | None = Field(description="numeric problems: absolute tolerance.")
    limits: ProblemLimits
    hints: list[HintOut] = Field(description="The ladder up to the unlocked level, lowest first.")
    hint_access: HintAccess
    source: ProblemSource
    links: dict[str, str] = Field(default_factory=dict)


def snapshot_of(problem: ProblemPublic) -> dict[str, Any]:
    """The JSON stored for a problem: its whole public part (the ladder is cut on read)."""
    return problem.model_dump(mode="json")


def render(snapshot: dict[str, Any], facts: HintFacts, source: ProblemSource) -> ProblemView:
    problem = ProblemPublic.model_validate(snapshot)
    ladder = problem.hints[:MAX_LEVEL]
    unlocked = min(allowed_level(facts), len(ladder))
    return ProblemView(
        id=problem.id,
        title=problem.title,
        domain=problem.domain,
        kind=problem.kind,
        statement=problem.statement,
        skills=list(problem.skills),
        difficulty=problem.difficulty,
        function_name=problem.function_name,
        starter_code=problem.starter_code,
        public_tests=list(problem.public_tests),
        choices=list(problem.choices),
        variables=list(problem.variables),
        tolerance=problem.tolerance,
        limits=ProblemLimits(
            time_limit_ms=problem.time_limit_ms, memory_limit_mb=problem.memory_limit_mb
        ),
        hints=[
            HintOut(level=n, name=LEVEL_NAMES[n], text=text)
            for n, text in enumerate(ladder[:unlocked], start=1)
        ],
        hint_access=HintAccess(
            unlocked_level=unlocked,
            max_level=len(ladder),
            failed_attempts=facts.failed_attempts,
            highest_hint_received=facts.highest_prior_level,
            next_unlock=next_unlock(facts) if unlocked < len(ladder) else None,
        ),
        source=source,
        links={"self": f"/v1/problems/{problem.id}", "submit": "/v1/submissions"},
    )
