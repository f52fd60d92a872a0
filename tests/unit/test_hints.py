"""The hint policy (domain.hints): what unlocks levels 2 and 3, capping, solutions."""

from __future__ import annotations

import pytest

from domain.hints import (
    HintFacts,
    allowed_level,
    counts_as_failed_attempt,
    decide,
    next_unlock,
    solution_allowed,
    visible_ladder,
)


def facts(failed: int = 0, highest: int = 0, prior: int | None = None) -> HintFacts:
    return HintFacts(
        failed_attempts=failed,
        highest_prior_level=highest,
        prior_hints=prior if prior is not None else (1 if highest else 0),
    )


@pytest.mark.parametrize(
    ("failed", "highest", "allowed"),
    [
        (0, 0, 1),  # nothing tried, nothing given: a nudge only
        (1, 0, 2),  # one failed attempt opens the concept
        (0, 1, 2),  # so does a nudge already given
        (0, 2, 2),  # asking again and again never reaches the approach...
        (0, 3, 2),
        (1, 2, 3),  # ...a real attempt does
        (2, 1, 3),
        (3, 0, 3),  # three failed attempts alone open the approach
        (2, 0, 2),
        (50, 3, 3),  # never beyond the top of the ladder
    ],
)
def test_allowed_level_grows_with_failed_attempts_and_earlier_hints(
    failed: int, highest: int, allowed: int
) -> None:
    assert allowed_level(facts(failed, highest)) == allowed


def test_a_request_above_the_allowed_level_is_capped_and_says_so() -> None:
    d = decide(facts(), requested=3)
    assert (d.requested, d.allowed, d.granted, d.capped) == (3, 1, 1, True)


def test_a_request_within_the_allowed_level_is_granted_as_asked() -> None:
    d = decide(facts(failed=3), requested=1)
    assert (d.granted, d.capped) == (1, False)
    assert decide(facts(failed=1), requested=2).granted == 2


def test_without_a_request_the_highest_unlocked_level_is_given() -> None:
    d = decide(facts(failed=1, highest=2), requested=None)
    assert (d.requested, d.granted, d.capped) == (None, 3, False)
    assert decide(facts(), requested=None).granted == 1


def test_the_decision_carries_its_facts_for_the_workflow_history() -> None:
    f = facts(failed=2, highest=1)
    assert decide(f, requested=2).facts == f


@pytest.mark.parametrize(
    ("level", "failed", "problem_allows", "allowed"),
    [
        (3, 3, True, True),
        (3, 10, False, False),  # the problem forbids it: never
        (2, 10, True, False),  # only at the approach level
        (3, 2, True, False),  # only after enough failed attempts
    ],
)
def test_a_full_solution_only_where_the_problem_allows_it(
    level: int, failed: int, problem_allows: bool, allowed: bool
) -> None:
    assert solution_allowed(level, failed, problem_allows) is allowed


@pytest.mark.parametrize(
    ("failed", "highest", "expected"),
    [
        (0, 0, "level 2"),
        (1, 0, "2 more failed"),
        (0, 2, "at least one failed submission"),
        (2, 0, "1 more failed"),
        (1, 2, None),
        (3, 0, None),
    ],
)
def test_next_unlock_says_what_opens_the_next_level(
    failed: int, highest: int, expected: str | None
) -> None:
    text = next_unlock(HintFacts(failed_attempts=failed, highest_prior_level=highest))
    if expected is None:
        assert text is None
    else:
        assert text is not None
        assert expected in text


@pytest.mark.parametrize(
    ("verdict", "counts"),
    [
        ("wrong_answer", True),
        ("runtime_error", True),
        ("time_limit_exceeded", True),
        ("memory_limit_exceeded", True),
        ("accepted", False),
        ("invalid_answer", False),
        ("compile_error", False),
        ("internal_error", False),
        (None, False),
    ],
)
def test_only_evaluated_attempts_unlock_hints(verdict: str | None, counts: bool) -> None:
    assert counts_as_failed_attempt(verdict) is counts


@pytest.mark.parametrize(
    ("granted", "expected"),
    [(1, ["nudge"]), (2, ["nudge", "concept"]), (3, ["nudge", "concept", "approach"])],
)
def test_the_tutor_sees_the_ladder_only_up_to_the_granted_level(
    granted: int, expected: list[str]
) -> None:
    ladder = ["nudge", "concept", "approach", "SOLUTION-RUNG"]
    assert visible_ladder(ladder, granted) == expected
    assert visible_ladder(["only one"], 3) == ["only one"]
