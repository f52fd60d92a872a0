"""Spaced-repetition reviews: FSRS through the ``fsrs`` library, made deterministic.

``fsrs`` (open-spaced-repetition, 6.x) does the scheduling; this module only wraps it
so that a workflow can call it and a replay computes the same schedule:

- **Clock.** ``fsrs`` defaults card ids and review times to ``datetime.now()``. Here
  every call takes the time explicitly (``workflow.now()`` in a workflow) and card ids
  are derived from the learner and the problem (:func:`card_id_for`).
- **Fuzz.** ``fsrs`` spreads intervals of 3 days and more by a few days with the
  module-level ``random()`` of ``fsrs.scheduler`` (``Scheduler._get_fuzzed_interval``).
  :func:`review` takes the random source explicitly (``workflow.random()`` in a
  workflow, which replays the same numbers) and runs the library's own fuzz function
  with that source bound in place of the module's ``random``; nothing is re-implemented
  and the global ``random`` is never touched. ``fuzz=False`` turns fuzz off (tests that
  compare intervals to ``fsrs`` computed directly use that).
- **Retention.** Desired retention is per learner, 0.9 by default, 0.70 to 0.97.

The grading rule for reviews done by submission (:func:`grade_submission`) and the
contracts of ``ReviewScheduleWorkflow`` are here too: small pydantic models of ids and
numbers, carried in the workflow's state and across continue-as-new.
"""

from __future__ import annotations

import hashlib
import random
import types
import uuid
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

import fsrs
import fsrs.scheduler
from pydantic import BaseModel, ConfigDict, Field

from domain.upstream import Verdict

DEFAULT_RETENTION = 0.9
MIN_RETENTION = 0.70
MAX_RETENTION = 0.97

Retention = Annotated[float, Field(ge=MIN_RETENTION, le=MAX_RETENTION)]


# Handled signals/updates and history events after which a run continues as new.
DEFAULT_MAX_EVENTS_PER_RUN = 500
DEFAULT_MAX_HISTORY_EVENTS = 4000
# Ids of recent submissions and grades remembered to ignore a redelivery.
RECENT_IDS = 200

REVIEW_NAMESPACE = uuid.UUID("0e8f4a52-2d9b-4c36-9e5e-6a8f1f0b7c21")


class Rating(StrEnum):
    again = "again"
    hard = "hard"
    good = "good"
    easy = "easy"

    @property
    def fsrs(self) -> fsrs.Rating:
        return _TO_FSRS[self]


_TO_FSRS = {
    Rating.again: fsrs.Rating.Again,
    Rating.hard: fsrs.Rating.Hard,
    Rating.good: fsrs.Rating.Good,
    Rating.easy: fsrs.Rating.Easy,
}


class CardState(IntEnum):
    """The FSRS learning states (same numbers as ``fsrs.State``)."""

    learning = 1
    review = 2
    relearning = 3


# --------------------------------------------------------------------------- the rule

# A review attempt spread over more than this is not a recall, whatever the attempts.
SLOW_REVIEW = timedelta(minutes=15)


def grade_submission(verdict: Verdict, attempts: int, time_taken: timedelta) -> Rating | None:
    """The rating of a review done by submitting to a due problem.

    ``attempts`` counts the submissions of this review, the accepted one included;
    ``time_taken`` runs from the review's first submission to this one (zero for a
    first-try solve).

    ======================  ========  ==============  =========
    verdict                 attempts  time taken      rating
    ======================  ========  ==============  =========
    internal_error          any       any             none: not the learner's doing
    any other failure       any       any             none yet: the attempt counts, the
                                                      review stays open
    accepted                1         0               good
    accepted                2         up to 15 min    hard
    accepted                2         over 15 min     again
    accepted                3 +       any             again
    ======================  ========  ==============  =========

    *Easy* is never inferred: a first-try solve shows recall, not ease, and nothing in
    one submission tells them apart; the learner says it by self-rating
    (``POST /v1/reviews/{problem_id}/grade``). Solving only after several failures means
    the problem was relearned rather than recalled, which FSRS calls *again*.
    """
    if verdict != Verdict.accepted:
        return None
    if attempts <= 1:
        return Rating.good
    if attempts == 2 and time_taken <= SLOW_REVIEW:
        return Rating.hard
    return Rating.again


# --------------------------------------------------------------------------- cards


class Card(BaseModel):
    """One learner's FSRS card for one problem, as the workflow carries it."""

    model_config = ConfigDict(frozen=True)

    problem_id: str
    card_id: int
    track_slug: str | None = None
    state: CardState = CardState.learning
    step: int | None = 0
    stability: float | None = None
    difficulty: float | None = None
    due: datetime
    last_review: datetime | None = None
    last_rating: Rating | None = None
    reps: int = 0
    lapses: int = 0
    created_at: datetime
    # A review by submission in progress: failed attempts so far and when it began.
    open_attempts: int = 0
    open_since: datetime | None = None
    # The due time whose notification has been sent (one notification per batch).
    notified_due: datetime | None = None

    def is_due(self, now: datetime) -> bool:
        return self.due <= now


def card_id_for(user_id: str, problem_id: str) -> int:
    """A stable 63-bit id (``fsrs`` card ids are ints), the same on every replay."""
    digest = hashlib.sha256(f"{user_id}\x00{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _utc(moment: datetime) -> datetime:
    # fsrs insists on ``tzinfo is timezone.utc`` (pydantic gives its own UTC object).
    return moment.astimezone(UTC)


def new_card(user_id: str, problem_id: str, now: datetime, track_slug: str | None = None) -> Card:
    """A card due now, in its first learning step (``fsrs.Card``'s defaults)."""
    base = fsrs.Card(card_id=card_id_for(user_id, problem_id), due=_utc(now))
    return _from_fsrs(
        base,
        problem_id=problem_id,
        track_slug=track_slug,
        reps=0,
        lapses=0,
        last_rating=None,
        created_at=now,
    )


def _to_fsrs(card: Card) -> fsrs.Card:
    return fsrs.Card(
        card_id=card.card_id,
        state=fsrs.State(int(card.state)),
        step=card.step,
        stability=card.stability,
        difficulty=card.difficulty,
        due=_utc(card.due),
        last_review=_utc(card.last_review) if card.last_review else None,
    )


def _from_fsrs(
    card: fsrs.Card,
    *,
    problem_id: str,
    track_slug: str | None,
    reps: int,
    lapses: int,
    last_rating: Rating | None,
    created_at: datetime,
) -> Card:
    return Card(
        problem_id=problem_id,
        card_id=card.card_id,
        track_slug=track_slug,
        state=CardState(int(card.state)),
        step=card.step,
        stability=card.stability,
        difficulty=card.difficulty,
        due=card.due,
        last_review=card.last_review,
        last_rating=last_rating,
        reps=reps,
        lapses=lapses,
        created_at=created_at,
    )


class _InjectedFuzzScheduler(fsrs.Scheduler):
    """``fsrs.Scheduler`` whose fuzz draws from the given random source.

    The library's own ``_get_fuzzed_interval`` runs unchanged, with the name ``random``
    bound to ``rng.random`` in a copy of its module globals: same fuzz ranges, same
    rounding, no global state touched (workflows of many learners share this module)."""

    def __init__(self, rng: random.Random, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        original = fsrs.scheduler.Scheduler._get_fuzzed_interval
        scope = dict(vars(fsrs.scheduler))
        scope["random"] = rng.random
        fuzz = types.FunctionType(
            original.__code__, scope, original.__name__, None, original.__closure__
        )
        self._fuzz = types.MethodType(fuzz, self)

    def _get_fuzzed_interval(self, *, interval: timedelta) -> timedelta:
        result: timedelta = self._fuzz(interval=interval)
        return result


# No learning or relearning steps: a problem is not a flashcard. With fsrs's default
# steps (1 and 10 minutes) a learner would be asked to redo a problem minutes after
# solving it; without them every review schedules by stability, in days.
STEPS: tuple[timedelta, ...] = ()


def scheduler(retention: float, rng: random.Random | None) -> fsrs.Scheduler:
    """The FSRS scheduler of a learner: default parameters, no intra-day steps, their
    desired retention, fuzz from ``rng`` (or none when ``rng`` is None)."""
    if rng is None:
        return fsrs.Scheduler(
            desired_retention=retention,
            learning_steps=STEPS,
            relearning_steps=STEPS,
            enable_fuzzing=False,
        )
    return _InjectedFuzzScheduler(
        rng,
        desired_retention=retention,
        learning_steps=STEPS,
        relearning_steps=STEPS,
        enable_fuzzing=True,
    )


class ReviewOutcome(BaseModel):
    """A review: the card before and after, and the log row to keep."""

    before: Card
    after: Card
    rating: Rating
    reviewed_at: datetime
    elapsed_days: int | None = Field(description="Whole days since the previous review.")


def review(
    card: Card,
    rating: Rating,
    now: datetime,
    *,
    retention: float = DEFAULT_RETENTION,
    rng: random.Random | None,
    duration: timedelta | None = None,
) -> ReviewOutcome:
    """Review ``card`` with ``rating`` at ``now`` (fsrs ``Scheduler.review_card``)."""
    when = _utc(now)
    sched = scheduler(retention, rng)
    reviewed, _log = sched.review_card(
        _to_fsrs(card),
        rating.fsrs,
        review_datetime=when,
        review_duration=int(duration.total_seconds() * 1000) if duration else None,
    )
    lapse = rating == Rating.again and card.state == CardState.review
    after = _from_fsrs(
        reviewed,
        problem_id=card.problem_id,
        track_slug=card.track_slug,
        reps=card.reps + 1,
        lapses=card.lapses + (1 if lapse else 0),
        last_rating=rating,
        created_at=card.created_at,
    )
    elapsed = (when - _utc(card.last_review)).days if card.last_review else None
    return ReviewOutcome(
        before=card, after=after, rating=rating, reviewed_at=now, elapsed_days=elapsed
    )


def retrievability(card: Card, now: datetime, retention: float = DEFAULT_RETENTION) -> float:
    """The predicted probability of recalling ``card`` at ``now`` (0 if never reviewed)."""
    return float(scheduler(retention, None).get_card_retrievability(_to_fsrs(card), _utc(now)))


# --------------------------------------------------------------------------- batches


def due_batch(cards: list[Card], now: datetime) -> list[Card]:
    """The due cards whose current due time has not been notified yet, earliest first."""
    batch = [c for c in cards if c.is_due(now) and c.notified_due != c.due]
    return sorted(batch, key=lambda c: (c.due, c.problem_id))


def next_wake(cards: list[Card]) -> datetime | None:
    """When the schedule must wake next: the earliest due time not yet notified."""
    pending = [c.due for c in cards if c.notified_due != c.due]
    return min(pending) if pending else None


def batch_id(user_id: str, batch: list[Card]) -> uuid.UUID:
    """The idempotency key of a due batch: the same cards at the same due times give the
    same id on every replay, retry and worker restart, so the main API can drop repeats."""
    text = user_id + "\x00" + "\x00".join(f"{c.problem_id}@{c.due.isoformat()}" for c in batch)
    return uuid.uuid5(REVIEW_NAMESPACE, text)


def review_id_for(user_id: str, idempotency_key: str) -> uuid.UUID:
    """A grade's id from the client's ``Idempotency-Key``: a retried grade is the same review."""
    return uuid.uuid5(REVIEW_NAMESPACE, f"grade\x00{user_id}\x00{idempotency_key}")


# --------------------------------------------------------------------------- workflow contracts


class ReviewSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    desired_retention: Retention = DEFAULT_RETENTION


class ReviewCarry(BaseModel):
    """What a run hands to the next one when it continues as new."""

    seq: int = 0
    cards: list[Card] = Field(default_factory=list)
    recent_ids: list[str] = Field(default_factory=list)


class ReviewInput(BaseModel):
    user_id: str
    settings: ReviewSettings = Field(default_factory=ReviewSettings)
    fuzz: bool = Field(default=True, description="False only in tests comparing with fsrs.")
    max_events_per_run: int = Field(default=DEFAULT_MAX_EVENTS_PER_RUN, ge=1)
    max_history_events: int = Field(default=DEFAULT_MAX_HISTORY_EVENTS, ge=100)
    carried: ReviewCarry | None = None


class SubmissionReviewed(BaseModel):
    """Signal from SubmissionWorkflow (through an activity) once a result is stored."""

    submission_id: uuid.UUID
    problem_id: str
    verdict: Verdict
    track_slug: str | None = None


class TellSubmissionInput(BaseModel):
    """The activity's input: signal-with-start the learner's schedule."""

    user_id: str
    submission: SubmissionReviewed


class GradeRequest(BaseModel):
    """Self-rating from the API; ``review_id`` makes a retried grade the same review."""

    review_id: uuid.UUID
    problem_id: str
    rating: Rating
    force: bool = False


class ReviewLogEntry(BaseModel):
    """One row of ``review_logs``: enough to optimise FSRS parameters later."""

    review_id: uuid.UUID
    problem_id: str
    rating: Rating
    source: Literal["self", "submission"]
    reviewed_at: datetime
    elapsed_days: int | None
    state_before: CardState
    state_after: CardState
    stability_before: float | None
    stability_after: float | None
    difficulty_before: float | None
    difficulty_after: float | None
    due_before: datetime
    due_after: datetime


class ReviewProjection(BaseModel):
    """One write of the schedule: changed cards, new log rows, the summary."""

    user_id: str
    seq: int
    cards: list[Card] = Field(default_factory=list)
    logs: list[ReviewLogEntry] = Field(default_factory=list)
    desired_retention: float = DEFAULT_RETENTION
    next_due_at: datetime | None = None
    card_count: int = 0


class MarkDueInput(BaseModel):
    user_id: str
    batch_id: uuid.UUID
    problem_ids: list[str]


class NotifyInput(BaseModel):
    user_id: str
    batch_id: uuid.UUID
    due_count: int
    earliest_problem_id: str
    earliest_due_at: datetime


class CardView(BaseModel):
    """A card as the grade update answers it."""

    problem_id: str
    due_at: datetime
    state: CardState
    stability: float | None
    difficulty: float | None
    last_rating: Rating | None
    reps: int
    lapses: int


def card_view(card: Card) -> CardView:
    return CardView(
        problem_id=card.problem_id,
        due_at=card.due,
        state=card.state,
        stability=card.stability,
        difficulty=card.difficulty,
        last_rating=card.last_rating,
        reps=card.reps,
        lapses=card.lapses,
    )


def log_entry(review_id: uuid.UUID, outcome: ReviewOutcome, source: str) -> ReviewLogEntry:
    b, a = outcome.before, outcome.after
    return ReviewLogEntry(
        review_id=review_id,
        problem_id=b.problem_id,
        rating=outcome.rating,
        source="self" if source == "self" else "submission",
        reviewed_at=outcome.reviewed_at,
        elapsed_days=outcome.elapsed_days,
        state_before=b.state,
        state_after=a.state,
        stability_before=b.stability,
        stability_after=a.stability,
        difficulty_before=b.difficulty,
        difficulty_after=a.difficulty,
        due_before=b.due,
        due_after=a.due,
    )


def describe_sleep(wake: datetime | None, due_then: int, total: int) -> str:
    """Current details in words, for the Temporal UI."""
    if wake is None:
        if total == 0:
            return "No review cards yet; waiting for a solved problem."
        return f"All {total} cards are due and notified; waiting for reviews."
    noun = "card" if due_then == 1 else "cards"
    return f"Sleeping until {wake:%Y-%m-%d %H:%M} UTC; {due_then} {noun} due then ({total} in all)."


# --------------------------------------------------------------------------- API


class ReviewStatus(StrEnum):
    due = "due"
    upcoming = "upcoming"
    all = "all"


class ReviewItemOut(BaseModel):
    problem_id: str
    track_slug: str | None
    due_at: datetime
    overdue_seconds: int = Field(description="How long it has been due (0 if not yet).")
    state: Literal["learning", "review", "relearning"]
    stability: float | None = Field(description="Days until recall falls to 90%.")
    difficulty: float | None = Field(description="1 (easy) to 10 (hard).")
    last_rating: Rating | None
    last_review_at: datetime | None
    reps: int
    lapses: int
    links: dict[str, str] = Field(default_factory=dict)


class ReviewPage(BaseModel):
    items: list[ReviewItemOut]
    next_cursor: str | None = None


class GradeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: Rating
    force: bool = Field(default=False, description="Review a card that is not due yet.")


class ReviewStats(BaseModel):
    due_now: int
    due_today: int = Field(description="Due by the end of today (UTC), overdue included.")
    due_this_week: int = Field(description="Due within 7 days, overdue included.")
    total_cards: int
    retention_estimate: float | None = Field(
        description="FSRS-predicted probability of recalling a reviewed card now, averaged."
    )
    desired_retention: float
    streak_days: int = Field(description="Consecutive days (UTC) with a review, up to today.")


class ReviewSettingsOut(BaseModel):
    desired_retention: float
