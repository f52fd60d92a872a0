"""The hint policy: how much help the tutor may give a learner on one problem.

Three levels, each a rung of the problem's hint ladder:

1. **nudge** – a question or observation that points the learner at the problem;
2. **concept** – names the idea or tool the problem is about;
3. **approach** – walks through the steps, still without the finished solution.

A level is *unlocked* by evidence that the learner is working on the problem: failed
attempts and the hints already received. Only *evaluated* attempts count (see
:func:`counts_as_failed_attempt`): unreadable answers and code that does not compile, sent
in a burst, unlock nothing. The
rule, with ``evidence = failed_attempts + highest level already given``:

- level 1 is always open;
- level 2 opens with any evidence (one failed attempt, or a level-1 hint already given);
- level 3 needs ``evidence >= 3`` *and* at least one failed attempt – asking three times
  without ever submitting never reaches the approach.

A client may ask for a level; it gets ``min(asked, allowed)`` and is told when it was
capped. Without a request the tutor gives the highest unlocked level. A full solution is
never part of a hint unless the problem allows it, and then only at level 3 after
``SOLUTION_AFTER_FAILED_ATTEMPTS`` failed attempts.

Pure code: used by the API (which must tell the client the level at once) and carried
into TutorTurnWorkflow's input, so the decision is visible in the workflow's history.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

MIN_LEVEL: Final = 1
MAX_LEVEL: Final = 3
LEVEL_NAMES: Final[dict[int, str]] = {1: "nudge", 2: "concept", 3: "approach"}
SOLUTION_AFTER_FAILED_ATTEMPTS: Final = 3
# Verdicts of a completed submission that say nothing about the learner's attempt at the
# problem itself (junk input, or our own failure): they never unlock a hint.
NOT_EVALUATED_VERDICTS: Final = frozenset({"invalid_answer", "compile_error", "internal_error"})


class HintFacts(BaseModel):
    """What the policy looks at, counted for one learner and one problem."""

    model_config = ConfigDict(frozen=True)

    failed_attempts: Annotated[int, Field(ge=0)] = 0
    prior_hints: Annotated[int, Field(ge=0)] = 0
    highest_prior_level: Annotated[int, Field(ge=0, le=MAX_LEVEL)] = 0


class HintDecision(BaseModel):
    """The level granted for one tutor turn, and why."""

    model_config = ConfigDict(frozen=True)

    requested: int | None
    allowed: int
    granted: int
    capped: bool = Field(description="The client asked for more than it was allowed.")
    facts: HintFacts


def allowed_level(facts: HintFacts) -> int:
    """The highest level the learner has unlocked."""
    evidence = facts.failed_attempts + facts.highest_prior_level
    if evidence >= 3 and facts.failed_attempts >= 1:
        return 3
    if evidence >= 1:
        return 2
    return MIN_LEVEL


def decide(facts: HintFacts, requested: int | None) -> HintDecision:
    """Grant ``requested`` up to the allowed level (the allowed level when none is asked)."""
    allowed = allowed_level(facts)
    if requested is None:
        return HintDecision(
            requested=None, allowed=allowed, granted=allowed, capped=False, facts=facts
        )
    wanted = min(max(requested, MIN_LEVEL), MAX_LEVEL)
    return HintDecision(
        requested=requested,
        allowed=allowed,
        granted=min(wanted, allowed),
        capped=requested > allowed,
        facts=facts,
    )


def solution_allowed(level: int, failed_attempts: int, problem_allows: bool) -> bool:
    """Whether a hint may contain the full solution: only where the problem allows it."""
    return (
        problem_allows and level >= MAX_LEVEL and failed_attempts >= SOLUTION_AFTER_FAILED_ATTEMPTS
    )


def next_unlock(facts: HintFacts) -> str | None:
    """In words, what unlocks the level above the allowed one (None at the top)."""
    allowed = allowed_level(facts)
    if allowed >= MAX_LEVEL:
        return None
    if allowed == MIN_LEVEL:
        return (
            f"level 2 ({LEVEL_NAMES[2]}) unlocks after one failed submission "
            f"or once the tutor has given a level-1 hint"
        )
    evidence = facts.failed_attempts + facts.highest_prior_level
    more = max(0, 3 - evidence)
    if facts.failed_attempts == 0:
        needs = "at least one failed submission"
        if more > 1:
            needs += f" and {more - 1} more failed submission(s) or higher hint(s)"
    else:
        needs = f"{more} more failed submission(s) or a higher hint from the tutor"
    return (
        f"level 3 ({LEVEL_NAMES[3]}) unlocks when failed submissions plus the highest hint "
        f"level received reach 3, with at least one failed submission: {needs}"
    )


def counts_as_failed_attempt(verdict: str | None) -> bool:
    """Whether a completed submission with ``verdict`` is evidence of a real attempt."""
    return verdict is not None and verdict != "accepted" and verdict not in NOT_EVALUATED_VERDICTS


def visible_ladder(hints: list[str], granted: int) -> list[str]:
    """The rungs of the hint ladder the Tutor may know for a turn at level ``granted``:
    the Tutor is told nothing the learner has not unlocked."""
    return list(hints[: max(0, min(granted, MAX_LEVEL))])
