"""ReviewScheduleWorkflow (id ``reviews-{user_id}``): one learner's spaced-repetition schedule.

The workflow owns the learner's FSRS cards (``domain.reviews`` wraps the ``fsrs``
library; time is ``workflow.now()``, fuzz is ``workflow.random()``); PostgreSQL holds
a projection of them (``review_items``, ``review_logs``, ``review_schedules``).

- Signals: ``submission_reviewed`` (SubmissionWorkflow, through an activity that
  signals-with-start): an accepted submission makes a new card, reviewed once; a
  submission to a due card grades it by :func:`domain.reviews.grade_submission`.
  ``review_settings``: the learner's desired retention.
- Update ``grade``: self-rating; the validator refuses an unknown card or one that is
  not due (unless forced) without writing history; a repeated ``review_id`` answers
  the card as it is, so a retried grade never reschedules twice.
- A durable timer sleeps until the earliest due time not yet notified. When it fires
  the due cards are marked in ``review_items`` and the main API is told, once per
  batch: the batch id (the idempotency key) is derived from the cards and their due
  times, so a retried activity or a replay after a worker restart repeats the key and
  the main API drops the repeat.
- Continue-as-new after ``max_events_per_run`` handled signals/updates, a history of
  ``max_history_events`` events, or the server's suggestion; once every handler has
  finished and everything is projected and notified.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import reviews
    from domain.contracts import (
        CO_NEXT_REVIEW_AT,
        CO_REVIEWS_DUE,
        CO_STATUS,
        CO_USER_ID,
        DB_RETRY,
        DB_TIMEOUT,
        NOTIFY_RETRY,
        NOTIFY_TIMEOUT,
        ActivityName,
        FailureType,
        QueryName,
        SignalName,
        UpdateName,
        WorkflowName,
    )
    from domain.reviews import (
        RECENT_IDS,
        Card,
        CardView,
        GradeRequest,
        MarkDueInput,
        NotifyInput,
        Rating,
        ReviewCarry,
        ReviewInput,
        ReviewLogEntry,
        ReviewProjection,
        ReviewSettings,
        SubmissionReviewed,
    )
    from domain.upstream import Verdict

# How long a grade waits for its projection before answering anyway.
UPDATE_PROJECTION_WAIT = timedelta(seconds=10)
MIN_TIMER = timedelta(seconds=1)


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


@workflow.defn(name=WorkflowName.REVIEW_SCHEDULE)
class ReviewScheduleWorkflow:
    @workflow.init
    def __init__(self, data: ReviewInput) -> None:
        self._data = data
        self._settings = data.settings
        carried = data.carried or ReviewCarry()
        self._cards: dict[str, Card] = {c.problem_id: c for c in carried.cards}
        self._recent: list[str] = list(carried.recent_ids)
        self._seq = carried.seq
        self._projected_seq = carried.seq
        self._changed: set[str] = set()
        self._logs: list[ReviewLogEntry] = []
        self._events = 0
        self._search: tuple[int, datetime | None] | None = None

    # ------------------------------------------------------------------ main loop

    @workflow.run
    async def run(self, _data: ReviewInput) -> None:
        while True:
            if self._dirty():
                await self._project()
                continue
            now = workflow.now()
            batch = reviews.due_batch(list(self._cards.values()), now)
            if batch:
                await self._notify(batch)
                continue
            wake = reviews.next_wake(list(self._cards.values()))
            self._publish_search_attributes(now, wake)
            if self._should_continue_as_new():
                # Handlers still running (a grade waiting for its projection) must
                # finish first: leaving them would lose their answer.
                if not workflow.all_handlers_finished():
                    await workflow.wait_condition(
                        lambda: workflow.all_handlers_finished() or self._dirty()
                    )
                    continue
                workflow.continue_as_new(self._next_input())
            self._describe(wake)
            timeout = max(wake - now, MIN_TIMER) if wake is not None else None
            try:
                await workflow.wait_condition(
                    lambda: self._dirty() or self._should_continue_as_new(),
                    timeout=timeout,
                    timeout_summary="next-review-due" if timeout is not None else None,
                )
            except TimeoutError:
                pass  # the loop finds the due batch

    def _dirty(self) -> bool:
        return self._seq > self._projected_seq

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return (
            self._events >= self._data.max_events_per_run
            or info.get_current_history_length() >= self._data.max_history_events
            or info.is_continue_as_new_suggested()
        )

    def _next_input(self) -> ReviewInput:
        return self._data.model_copy(
            update={
                "settings": self._settings,
                "carried": ReviewCarry(
                    seq=self._seq,
                    cards=list(self._cards.values()),
                    recent_ids=list(self._recent),
                ),
            }
        )

    def _touch(self, card: Card) -> None:
        self._cards[card.problem_id] = card
        self._changed.add(card.problem_id)
        self._seq += 1

    def _remember(self, key: str) -> None:
        self._recent = [*self._recent, key][-RECENT_IDS:]

    async def _project(self) -> None:
        """Write what changed; only the main loop writes, so writes go in order (``seq``
        still guards against a late retried attempt)."""
        seq = self._seq
        changed = sorted(self._changed)
        logs = list(self._logs)
        cards = list(self._cards.values())
        await workflow.execute_activity(
            ActivityName.REVIEWS_PROJECT,
            ReviewProjection(
                user_id=self._data.user_id,
                seq=seq,
                cards=[self._cards[p] for p in changed],
                logs=logs,
                desired_retention=self._settings.desired_retention,
                next_due_at=min((c.due for c in cards), default=None),
                card_count=len(cards),
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._changed.difference_update(changed)
        self._logs = self._logs[len(logs) :]
        self._projected_seq = max(self._projected_seq, seq)

    async def _notify(self, batch: list[Card]) -> None:
        user = self._data.user_id
        batch_id = reviews.batch_id(user, batch)
        count = len(batch)
        workflow.set_current_details(
            f"{count} review{'s' if count != 1 else ''} due: marking them and telling the "
            f"main API (batch {batch_id})."
        )
        await workflow.execute_activity(
            ActivityName.REVIEWS_MARK_DUE,
            MarkDueInput(
                user_id=user, batch_id=batch_id, problem_ids=[c.problem_id for c in batch]
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        await workflow.execute_activity(
            ActivityName.REVIEWS_NOTIFY,
            NotifyInput(
                user_id=user,
                batch_id=batch_id,
                due_count=count,
                earliest_problem_id=batch[0].problem_id,
                earliest_due_at=batch[0].due,
            ),
            start_to_close_timeout=NOTIFY_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
        )
        for card in batch:
            current = self._cards.get(card.problem_id)
            if current is not None and current.due == card.due:  # not regraded meanwhile
                self._cards[card.problem_id] = current.model_copy(update={"notified_due": card.due})

    def _publish_search_attributes(self, now: datetime, wake: datetime | None) -> None:
        due = sum(1 for c in self._cards.values() if c.is_due(now))
        current = (due, wake)
        if current == self._search:
            return
        updates: list[SearchAttributeUpdate[Any]] = [
            CO_REVIEWS_DUE.value_set(due),
            CO_NEXT_REVIEW_AT.value_set(wake) if wake else CO_NEXT_REVIEW_AT.value_unset(),
            CO_STATUS.value_set("due" if due else "sleeping"),
        ]
        if self._search is None:
            updates.append(CO_USER_ID.value_set(self._data.user_id))
        workflow.upsert_search_attributes(updates)
        self._search = current

    def _describe(self, wake: datetime | None) -> None:
        cards = list(self._cards.values())
        then = sum(
            1 for c in cards if wake is not None and c.due <= wake and c.notified_due != c.due
        )
        workflow.set_current_details(reviews.describe_sleep(wake, then, len(cards)))

    async def _answer(self, problem_id: str) -> CardView:
        """The card after a grade, once projected so that a read that follows sees it."""
        seq = self._seq
        try:
            await workflow.wait_condition(
                lambda: self._projected_seq >= seq,
                timeout=UPDATE_PROJECTION_WAIT,
                timeout_summary="projection-wait",
            )
        except TimeoutError:
            workflow.logger.warning("projection of seq %s is late; answering anyway", seq)
        return reviews.card_view(self._cards[problem_id])

    def _review(
        self, card: Card, rating: Rating, review_id: str, source: str, now: datetime
    ) -> None:
        outcome = reviews.review(
            card,
            rating,
            now,
            retention=self._settings.desired_retention,
            rng=workflow.random() if self._data.fuzz else None,
        )
        self._logs.append(reviews.log_entry(uuid.UUID(review_id), outcome, source))
        self._touch(outcome.after)

    # ------------------------------------------------------------------ signals

    @workflow.signal(name=SignalName.SUBMISSION_REVIEWED)
    def submission_reviewed(self, data: SubmissionReviewed) -> None:
        self._events += 1
        key = str(data.submission_id)
        if key in self._recent:
            return
        self._remember(key)
        now = workflow.now()
        card = self._cards.get(data.problem_id)
        if card is None:
            if data.verdict == Verdict.accepted:
                # Solving is the first review: the card starts scheduled in days, not due now.
                fresh = reviews.new_card(self._data.user_id, data.problem_id, now, data.track_slug)
                self._review(fresh, Rating.good, key, "submission", now)
            return
        if not card.is_due(now) or data.verdict == Verdict.internal_error:
            return  # practice outside the schedule, or not the learner's doing
        attempts = card.open_attempts + 1
        since = card.open_since or now
        rating = reviews.grade_submission(data.verdict, attempts, now - since)
        if rating is None:
            self._touch(card.model_copy(update={"open_attempts": attempts, "open_since": since}))
            return
        self._review(
            card.model_copy(update={"open_attempts": 0, "open_since": None}),
            rating,
            key,
            "submission",
            now,
        )

    @workflow.signal(name=SignalName.REVIEW_SETTINGS)
    def review_settings(self, data: ReviewSettings) -> None:
        self._events += 1
        if data != self._settings:
            self._settings = data
            self._seq += 1  # projected with the next write

    # ------------------------------------------------------------------ updates

    @workflow.update(name=UpdateName.GRADE)
    async def grade(self, data: GradeRequest) -> CardView:
        self._events += 1
        key = str(data.review_id)
        if key not in self._recent:
            # Checked again: a grade accepted in the same task may have changed the card.
            self._refuse(data)
            self._remember(key)
            card = self._cards[data.problem_id]
            self._review(
                card.model_copy(update={"open_attempts": 0, "open_since": None}),
                data.rating,
                key,
                "self",
                workflow.now(),
            )
        return await self._answer(data.problem_id)

    @grade.validator
    def _validate_grade(self, data: GradeRequest) -> None:
        if str(data.review_id) in self._recent:
            if data.problem_id not in self._cards:
                self._refuse(data)
            return  # a retry: answered with the card as it is
        self._refuse(data)

    def _refuse(self, data: GradeRequest) -> None:
        card = self._cards.get(data.problem_id)
        if card is None:
            raise ApplicationError(
                f"no review card for problem {data.problem_id}",
                type=FailureType.REVIEW_CARD_NOT_FOUND,
                non_retryable=True,
            )
        if not data.force and not card.is_due(workflow.now()):
            raise ApplicationError(
                f"problem {data.problem_id} is not due until {_at(card.due)}; "
                "send force: true to review it early",
                card.due.isoformat(),
                type=FailureType.REVIEW_NOT_DUE,
                non_retryable=True,
            )

    # ------------------------------------------------------------------ queries

    @workflow.query(name=QueryName.CARDS)
    def cards(self) -> list[CardView]:
        return [reviews.card_view(c) for c in self._cards.values()]
