"""SessionWorkflow (id ``session-{session_id}``): one learner working through one track.

The workflow owns the session's progress; PostgreSQL holds a projection of it for
reads, and ``session.project`` is the only writer of its state columns (the API
inserts the row's identity and the one-active-session claim before starting the
workflow, then never writes it again). It runs on the plan of the version it started
with (its input), so publishing a new version never changes a running session.

- Signals: ``submission_finished`` (from SubmissionWorkflow), ``hint_given`` (from the
  tutor). A redelivered submission is recognised by its id and ignored.
- Updates: ``advance`` (its validator refuses to move past an item whose mastery rule
  is unmet unless the item may be skipped; nothing is written to history then) and
  ``end``. Both return the new view once it is projected (or after a short wait).
- Queries: ``state`` (the learner's view) and ``snapshot`` (the raw carried state).
- Idle timeout: a durable timer to ``last_activity_at + idle_timeout``; every
  learner action moves ``last_activity_at`` and so re-arms it. When it fires, the
  session is closed as ``abandoned``.
- Continue-as-new after ``max_events_per_run`` handled signals/updates or when the
  server suggests it, once every handler has finished and the state is projected.
  The idle clock is part of the carried state, so continuing never extends it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows import steps

with workflow.unsafe.imports_passed_through():
    from domain import progression
    from domain.contracts import (
        CO_PROBLEM_ID,
        CO_SESSION_ID,
        CO_STATUS,
        CO_TRACK_SLUG,
        CO_USER_ID,
        DB_RETRY,
        DB_TIMEOUT,
        ActivityName,
        FailureType,
        QueryName,
        SignalName,
        Step,
        UpdateName,
        WorkflowName,
    )
    from domain.progression import Progress, SessionStatus, SessionView
    from domain.sessions import (
        RECENT_SUBMISSIONS,
        AdvanceRequest,
        EndRequest,
        HintGiven,
        SessionCarry,
        SessionDocument,
        SessionInput,
        SessionOutcome,
        SessionProjection,
        SubmissionFinished,
    )

# How long an update waits for its projection before answering with the new state anyway.
UPDATE_PROJECTION_WAIT = timedelta(seconds=10)
# A timer closer than this to the idle deadline is not worth starting.
MIN_TIMER = timedelta(seconds=1)

STATUS_BEFORE_WRITE_PATCH = "session-status-before-projection"
# The API inserts only the row's identity and the active claim; the workflow writes the
# state columns alone, starting with the state it starts from. Runs started before this
# patch had their first state written by the API and skip that first projection.
FIRST_PROJECTION_PATCH = "session-writes-first-projection"


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


@workflow.defn(name=WorkflowName.SESSION)
class SessionWorkflow:
    @workflow.init
    def __init__(self, data: SessionInput) -> None:
        self._data = data
        self._plan = data.plan
        self._progress: Progress
        if data.carried is not None:
            self._progress = data.carried.progress
            self._recent = list(data.carried.recent_submissions)
        else:
            self._progress = progression.start(self._plan, data.started_at)
            self._recent = []
        # A previous run projected everything it carried over: nothing is pending. A
        # fresh run projects its first state (see ``FIRST_PROJECTION_PATCH`` in ``run``).
        self._projected_seq = self._progress.seq
        self._events = 0  # signals and updates handled by this run
        self._search: tuple[str, str | None] | None = None
        self._step: str | None = None  # CoStep last published by this run

    # ------------------------------------------------------------------ main loop

    @workflow.run
    async def run(self, data: SessionInput) -> SessionOutcome:
        if data.carried is None and workflow.patched(FIRST_PROJECTION_PATCH):
            self._projected_seq = self._progress.seq - 1  # nobody has written it yet
        while True:
            if self._dirty():
                if workflow.patched(STATUS_BEFORE_WRITE_PATCH):
                    # CoStatus says what the workflow decided, even while the write of
                    # that decision is still retrying (the runbook finds it by this).
                    self._publish_search_attributes()
                    self._enter(Step.DATABASE)
                await self._project()
                continue
            self._publish_search_attributes()
            if not self._progress.active or self._should_continue_as_new():
                # Handlers still running (an update waiting for its projection) must
                # finish first: leaving them would lose their answer.
                if not workflow.all_handlers_finished():
                    await workflow.wait_condition(
                        lambda: workflow.all_handlers_finished() or self._dirty()
                    )
                    continue
                if not self._progress.active:
                    break
                workflow.continue_as_new(self._next_input())
            now = workflow.now()
            deadline = self._progress.last_activity_at + data.idle_timeout
            if deadline - now < MIN_TIMER:
                self._progress = progression.close(self._progress, SessionStatus.abandoned, now)
                continue
            self._describe(deadline)
            self._enter(Step.LEARNER)
            try:
                await workflow.wait_condition(
                    lambda: self._dirty() or self._should_continue_as_new(),
                    timeout=deadline - now,
                    timeout_summary="idle-timeout",
                )
            except TimeoutError:
                pass  # the loop re-checks the deadline: activity may have moved it
        self._enter(Step.DONE)
        ended = self._progress.ended_at
        workflow.set_current_details(
            f"Session {self._progress.status.value}"
            + (f" at {_at(ended)}." if ended is not None else ".")
        )
        return SessionOutcome(
            session_id=data.session_id, status=self._progress.status, seq=self._progress.seq
        )

    def _dirty(self) -> bool:
        return self._progress.seq > self._projected_seq

    def _should_continue_as_new(self) -> bool:
        return (
            self._events >= self._data.max_events_per_run
            or workflow.info().is_continue_as_new_suggested()
        )

    def _next_input(self) -> SessionInput:
        return self._data.model_copy(
            update={
                "carried": SessionCarry(
                    progress=self._progress, recent_submissions=list(self._recent)
                )
            }
        )

    async def _project(self) -> None:
        """Write the current state; only the main loop writes, so writes go in order
        (``state_seq`` still guards against a late retried attempt)."""
        snapshot = self._progress
        data = self._data
        await workflow.execute_activity(
            ActivityName.SESSION_PROJECT,
            SessionProjection(
                session_id=data.session_id,
                user_id=data.user_id,
                track_id=data.track_id,
                track_version_id=data.track_version_id,
                document=SessionDocument(
                    progress=snapshot, summary=progression.summary(self._plan, snapshot)
                ),
            ),
            result_type=bool,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._projected_seq = max(self._projected_seq, snapshot.seq)

    def _enter(self, step: str) -> None:
        if step != self._step:
            steps.enter(step)
            self._step = step

    def _publish_search_attributes(self) -> None:
        position = self._progress.position
        current = (self._progress.status.value, position.problem_id if position else None)
        if current == self._search:
            return
        updates = [
            CO_STATUS.value_set(current[0]),
            CO_PROBLEM_ID.value_set(current[1]) if current[1] else CO_PROBLEM_ID.value_unset(),
        ]
        if self._search is None:  # first time in this run
            updates += [
                CO_USER_ID.value_set(self._data.user_id),
                CO_TRACK_SLUG.value_set(self._data.track_slug),
                CO_SESSION_ID.value_set(str(self._data.session_id)),
            ]
        workflow.upsert_search_attributes(updates)
        self._search = current

    def _describe(self, deadline: datetime) -> None:
        position = self._progress.position
        since = _at(self._progress.last_activity_at)
        if position is not None:
            what = (
                f"Waiting for a submission on problem {position.problem_id} "
                f"(module {position.module_slug}) since {since}"
            )
        else:
            what = f"Waiting for the learner since {since}"
        workflow.set_current_details(f"{what}; closes as abandoned if idle until {_at(deadline)}.")

    async def _answer(self) -> SessionView:
        """The view after a change, once projected so a read that follows sees it."""
        seq = self._progress.seq
        try:
            await workflow.wait_condition(
                lambda: self._projected_seq >= seq,
                timeout=UPDATE_PROJECTION_WAIT,
                timeout_summary="projection-wait",
            )
        except TimeoutError:
            workflow.logger.warning("projection of seq %s is late; answering anyway", seq)
        return progression.view(self._plan, self._progress)

    # ------------------------------------------------------------------ signals

    @workflow.signal(name=SignalName.SUBMISSION_FINISHED)
    def submission_finished(self, data: SubmissionFinished) -> None:
        self._events += 1
        if not self._progress.active or data.submission_id in self._recent:
            return
        self._recent = [*self._recent, data.submission_id][-RECENT_SUBMISSIONS:]
        self._progress = progression.record_submission(
            self._plan, self._progress, data.problem_id, data.verdict, workflow.now()
        )

    @workflow.signal(name=SignalName.HINT_GIVEN)
    def hint_given(self, data: HintGiven) -> None:
        self._events += 1
        self._progress = progression.record_hint(
            self._plan, self._progress, data.problem_id, data.level, workflow.now()
        )

    # ------------------------------------------------------------------ updates

    @workflow.update(name=UpdateName.ADVANCE)
    async def advance(self, data: AdvanceRequest) -> SessionView:
        self._events += 1
        # Checked again: another update accepted in the same task may have moved on.
        self._refuse_advance(data)
        self._progress = progression.advance(self._plan, self._progress, workflow.now())
        return await self._answer()

    @advance.validator
    def _validate_advance(self, data: AdvanceRequest) -> None:
        self._refuse_advance(data)

    def _refuse_advance(self, data: AdvanceRequest) -> None:
        refusal = progression.advance_refusal(self._plan, self._progress, data.from_problem_id)
        if refusal is not None:
            raise ApplicationError(
                refusal.message, refusal.code, type=FailureType.ADVANCE_REFUSED, non_retryable=True
            )

    @workflow.update(name=UpdateName.END)
    async def end(self, _request: EndRequest) -> SessionView:
        self._events += 1
        self._progress = progression.close(self._progress, SessionStatus.ended, workflow.now())
        return await self._answer()

    # ------------------------------------------------------------------ queries

    @workflow.query(name=QueryName.STATE)
    def state(self) -> SessionView:
        return progression.view(self._plan, self._progress)

    @workflow.query(name=QueryName.SNAPSHOT)
    def snapshot(self) -> SessionCarry:
        return SessionCarry(progress=self._progress, recent_submissions=list(self._recent))
