"""The FSRS wrapper and the grading rule: pure, table-tested."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import fsrs
import fsrs.scheduler
import pytest

from domain import reviews
from domain.reviews import Rating, grade_submission
from domain.upstream import Verdict

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)

GRADE_TABLE = [
    (Verdict.internal_error, 1, timedelta(0), None),
    (Verdict.wrong_answer, 1, timedelta(0), None),
    (Verdict.time_limit_exceeded, 3, timedelta(minutes=1), None),
    (Verdict.accepted, 1, timedelta(0), Rating.good),
    (Verdict.accepted, 2, timedelta(minutes=5), Rating.hard),
    (Verdict.accepted, 2, timedelta(minutes=15), Rating.hard),
    (Verdict.accepted, 2, timedelta(minutes=16), Rating.again),
    (Verdict.accepted, 3, timedelta(minutes=1), Rating.again),
    (Verdict.accepted, 7, timedelta(hours=2), Rating.again),
]


@pytest.mark.parametrize(("verdict", "attempts", "taken", "expected"), GRADE_TABLE)
def test_grading_rule(
    verdict: Verdict, attempts: int, taken: timedelta, expected: Rating | None
) -> None:
    assert grade_submission(verdict, attempts, taken) == expected


def test_card_ids_are_stable_and_distinct() -> None:
    assert reviews.card_id_for("u", "p") == reviews.card_id_for("u", "p")
    assert reviews.card_id_for("u", "p") != reviews.card_id_for("u", "q")
    assert 0 < reviews.card_id_for("u", "p") < 2**63


def _history(rng_seed: int | None) -> list[reviews.Card]:
    card = reviews.new_card("u", "p", T0)
    rng = random.Random(rng_seed) if rng_seed is not None else None
    out = []
    now = T0
    for rating in [Rating.good] * 6:
        card = reviews.review(card, rating, now, rng=rng).after
        out.append(card)
        now = card.due
    return out


def test_the_same_random_source_gives_the_same_schedule() -> None:
    assert _history(7) == _history(7)
    assert [c.due for c in _history(7)] != [c.due for c in _history(8)]


def test_fuzz_is_the_library_own_fuzz_drawn_from_the_given_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = _history(42)
    source = random.Random(42)
    monkeypatch.setattr(fsrs.scheduler, "random", source.random)
    sched = fsrs.Scheduler(learning_steps=(), relearning_steps=(), enable_fuzzing=True)
    card = fsrs.Card(card_id=reviews.card_id_for("u", "p"), due=T0)
    now = T0
    for expected in ours:
        card, _ = sched.review_card(card, fsrs.Rating.Good, review_datetime=now)
        assert card.due == expected.due
        assert card.stability == pytest.approx(expected.stability)
        now = card.due


def test_the_global_random_is_untouched() -> None:
    random.seed(1)
    expected = random.random()
    random.seed(1)
    _history(3)
    assert random.random() == expected


def test_retention_changes_intervals() -> None:
    card = reviews.review(reviews.new_card("u", "p", T0), Rating.good, T0, rng=None).after
    later = card.due
    low = reviews.review(card, Rating.good, later, retention=0.7, rng=None).after
    high = reviews.review(card, Rating.good, later, retention=0.97, rng=None).after
    assert low.due > high.due


def test_again_counts_a_lapse_and_logs_elapsed_days() -> None:
    card = reviews.review(reviews.new_card("u", "p", T0), Rating.good, T0, rng=None).after
    outcome = reviews.review(card, Rating.again, card.due, rng=None)
    assert outcome.after.lapses == 1
    assert outcome.elapsed_days == (card.due - T0).days
    assert outcome.after.due - card.due < card.due - T0


def test_due_batch_and_its_id() -> None:
    a = reviews.new_card("u", "a", T0 - timedelta(days=1))
    b = reviews.new_card("u", "b", T0 - timedelta(days=2))
    c = reviews.new_card("u", "c", T0 + timedelta(days=2))
    batch = reviews.due_batch([a, b, c], T0)
    assert [x.problem_id for x in batch] == ["b", "a"]
    assert reviews.batch_id("u", batch) == reviews.batch_id("u", list(batch))
    notified = [x.model_copy(update={"notified_due": x.due}) for x in batch]
    assert reviews.due_batch([*notified, c], T0) == []
    assert reviews.next_wake([*notified, c]) == c.due
