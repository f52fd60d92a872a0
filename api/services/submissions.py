"""Creating and reading submissions.

One owner per row: the POST commits the submission row *first*, then starts
``SubmissionWorkflow`` with the row's facts (ids, problem, kind, session), so the
workflow never waits for the API's commit; from then on only the workflow's activities
write the row. The workflow id is derived from the submission id, which a given
``Idempotency-Key`` fixes, and the start uses ``USE_EXISTING`` (attach to a running
run) and ``REJECT_DUPLICATE`` (never a second run once finished): starting it again is
always safe and never evaluates twice.

When the start fails after the commit (Temporal unreachable: ``503
dependency-unavailable`` naming it), the row is marked ``failed`` with no verdict and a
reason ("not started") in a second transaction, so it neither stays queued for ever
nor holds one of the learner's in-flight slots:

- with an ``Idempotency-Key``, a retried POST puts that row back in the queue and
  starts the workflow: the answer the learner gets is the evaluation of the first POST;
- without one, the learner submits again (a new submission); the old row stays
  ``failed`` with its reason;
- a start that *did* succeed although the call failed (a timeout after the server
  accepted it) still runs: its activity treats "not started" as provisional, marks the
  row running and stores the verdict, which replaces the mark. A retry then attaches
  to that run (or, finished, is answered from the row).

A process that dies between the commit and the start (no error to react to) leaves a
``queued`` row: a retry with the key starts it; without a key it stays queued and
counts as in flight, which the per-user cap bounds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from api.auth import Principal
from api.errors import NotFound, PayloadTooLarge, TooManyRequests, Unprocessable
from api.idempotency import check_idempotency_key
from api.pagination import decode_cursor, encode_cursor
from api.problem_types import DependencyUnavailable, IdempotencyKeyReused
from api.services import session_rules as sessions_rules
from api.temporal import start_workflow as temporal_start
from domain.contracts import (
    CO_PROBLEM_ID,
    CO_SESSION_ID,
    CO_STATUS,
    CO_USER_ID,
    WorkflowName,
    submission_workflow_id,
)
from domain.settings import Settings
from domain.submissions import (
    EvaluationProgress,
    ResultOut,
    RetryReason,
    SubmissionCreate,
    SubmissionInput,
    SubmissionOut,
    SubmissionPage,
    SubmissionStatus,
    TestResultOut,
    submission_id_for_key,
)
from domain.upstream import EvalKind, Verdict
from store import submissions as repo
from store import tracks as track_repo
from store.models import Result, Submission

MAX_WAIT_SECONDS = 30


def parse_prefer_wait(prefer: str | None) -> float:
    """Seconds from ``Prefer: wait=N`` (RFC 7240), capped at 30; 0 when absent."""
    if not prefer:
        return 0.0
    for part in prefer.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "wait":
            try:
                return float(min(max(int(value.strip()), 0), MAX_WAIT_SECONDS))
            except ValueError:
                raise Unprocessable("Prefer: wait must be a whole number of seconds") from None
    return 0.0


def _request_hash(body: SubmissionCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_body(body: SubmissionCreate, kind: EvalKind, settings: Settings) -> None:
    if body.code is not None and len(body.code.encode()) > settings.max_code_bytes:
        raise PayloadTooLarge(f"code is larger than {settings.max_code_bytes} bytes")
    if body.answer is not None and len(body.answer.encode()) > settings.max_answer_bytes:
        raise PayloadTooLarge(f"answer is larger than {settings.max_answer_bytes} bytes")
    if kind == EvalKind.python:
        if not body.code or not body.code.strip():
            raise Unprocessable(f"problem {body.problem_id} is a code problem: 'code' is required")
        if body.answer is not None:
            raise Unprocessable("a code problem takes 'code', not 'answer'")
        if body.language not in (None, "python"):
            raise Unprocessable(f"language '{body.language}' is not supported; use 'python'")
    else:
        if body.answer is None or not body.answer.strip():
            raise Unprocessable(f"problem {body.problem_id} takes an 'answer'")
        if body.code is not None:
            raise Unprocessable("an answer problem takes 'answer', not 'code'")


# A submission is typically evaluated within seconds.
IN_FLIGHT_RETRY_AFTER_SECONDS = 5


NOT_STARTED_REASON = (
    "The submission was recorded but could not be started because the evaluation service "
    "was unreachable; it was not your fault. Send it again (with the same Idempotency-Key "
    "to resume this one)."
)


async def start_workflow(
    temporal: Client, settings: Settings, row: Submission
) -> WorkflowHandle[Any, Any] | None:
    """Start (or find) the row's workflow; ``None`` when it already finished (the stored
    result is then the answer). Every attribute an operator filters on is set here, once,
    so the workflow itself only says how far it got."""
    attributes: list[SearchAttributePair[Any]] = [
        SearchAttributePair(CO_USER_ID, row.user_id),
        SearchAttributePair(CO_PROBLEM_ID, row.problem_id),
        SearchAttributePair(CO_STATUS, SubmissionStatus.queued.value),
    ]
    if row.session_id is not None:
        attributes.append(SearchAttributePair(CO_SESSION_ID, str(row.session_id)))
    return await temporal_start(
        temporal,
        WorkflowName.SUBMISSION,
        SubmissionInput(
            submission_id=row.id,
            user_id=row.user_id,
            problem_id=row.problem_id,
            kind=EvalKind(row.kind),
            session_id=row.session_id,
        ),
        id=submission_workflow_id(row.id),
        task_queue=settings.temporal_task_queue,
        attributes=attributes,
        unavailable="submissions cannot be evaluated right now",
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A finished evaluation is never run again for the same id.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        # The first workflow task comes back in the answer when this process runs a
        # worker on the queue (CO_API_WORKFLOW_WORKER); otherwise the SDK drops the flag.
        request_eager_start=True,
    )


async def create(
    db: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    body: SubmissionCreate,
    *,
    idempotency_key: str | None,
    wait_seconds: float,
) -> SubmissionOut:
    item = await track_repo.published_item(db, body.problem_id)
    if item is None:
        raise NotFound(f"problem '{body.problem_id}' is not part of any published track")
    kind = EvalKind(item.kind)
    _check_body(body, kind, settings)
    key = check_idempotency_key(idempotency_key)
    submission_id = (
        submission_id_for_key(principal.user_id, key) if key is not None else uuid.uuid4()
    )
    request_hash = _request_hash(body)
    # A retry is answered before the session rules: the learner may have moved on since
    # the first POST, which must not turn a retry of an accepted submission into a 409.
    earlier = await repo.get_owned(db, submission_id, principal.user_id) if key else None
    if earlier is None and body.session_id is not None:
        await sessions_rules.check_submission(
            db, principal.user_id, body.session_id, body.problem_id
        )
    if earlier is None and not await repo.exists(db, submission_id):  # retries pass
        in_flight = await repo.count_in_flight_locked(db, principal.user_id)
        if in_flight >= settings.max_submissions_in_flight:
            raise TooManyRequests(
                f"you already have {in_flight} submissions being evaluated (at most "
                f"{settings.max_submissions_in_flight}); wait for one to finish",
                headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER_SECONDS)},
            )

    # Insert and commit, then start the workflow (the module docstring says why and what
    # happens when the start fails). A concurrent retry with the same key waits on the
    # unique index and then sees this row.
    row = await repo.insert_if_absent(
        db,
        {
            "id": submission_id,
            "user_id": principal.user_id,
            "problem_id": body.problem_id,
            "session_id": body.session_id,
            "kind": kind.value,
            "language": "python" if kind == EvalKind.python else None,
            "code": body.code,
            "answer": body.answer,
            "idempotency_key": key,
            "request_hash": request_hash,
            "status": SubmissionStatus.queued.value,
        },
    )
    if row.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body"
        )
    if repo.is_not_started(row):  # a retry of a POST whose start failed: start it now
        await repo.requeue_not_started(db, submission_id)
        await db.refresh(row)
    await db.commit()

    handle = None
    if row.status not in repo.TERMINAL:  # a finished one is answered from its row
        try:
            handle = await start_workflow(temporal, settings, row)
        except DependencyUnavailable:
            await repo.mark_not_started(db, submission_id, NOT_STARTED_REASON)
            await db.commit()
            raise

    if wait_seconds > 0 and handle is not None:
        await _wait_for_result(handle, wait_seconds)
        await db.refresh(row)
    return await to_out(db, row)


# The result is awaited in slices, each a fresh long poll: once in ~160 measured waits a
# long poll stayed open after the run had closed, until the server's 20 s poll expiry; a
# new poll on a closed run answers at once.
RESULT_POLL_SLICE_SECONDS = 2.0


async def _wait_for_result(handle: WorkflowHandle[Any, Any], seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            await asyncio.wait_for(handle.result(), min(left, RESULT_POLL_SLICE_SECONDS))
            return
        except TimeoutError:
            continue
        except WorkflowFailureError:
            return


def _result_out(result: Result, kind: EvalKind) -> ResultOut:
    answer = kind != EvalKind.python
    return ResultOut(
        verdict=Verdict(result.verdict),
        message=result.message,
        passed=None if answer else result.passed,
        total=None if answer else result.total,
        time_ms=result.time_ms,
        memory_kb=result.memory_kb,
        tests=[TestResultOut.model_validate(t) for t in result.tests],
    )


def _evaluation(row: Submission) -> EvaluationProgress | None:
    if row.status != SubmissionStatus.running.value:
        return None
    attempt = max(1, row.evaluation_attempt)
    return EvaluationProgress(
        attempt=attempt,
        retrying=attempt > 1 or row.retry_reason is not None,
        last_failure=RetryReason(row.retry_reason) if row.retry_reason else None,
    )


def links(row: Submission) -> dict[str, str]:
    out = {
        "self": f"/v1/submissions/{row.id}",
        "problem": f"/v1/problems/{row.problem_id}",
    }
    if row.session_id is not None:
        out["session"] = f"/v1/sessions/{row.session_id}"
        out["problem"] += f"?session_id={row.session_id}"
    return out


def _out(row: Submission, result: Result | None) -> SubmissionOut:
    kind = EvalKind(row.kind)
    duration = (
        max(0, round((row.completed_at - row.created_at).total_seconds() * 1000))
        if row.completed_at is not None
        else None
    )
    return SubmissionOut(
        id=row.id,
        problem_id=row.problem_id,
        session_id=row.session_id,
        kind=kind,
        language=row.language,
        status=SubmissionStatus(row.status),
        verdict=Verdict(row.verdict) if row.verdict else None,
        failure_reason=row.failure_reason,
        evaluation=_evaluation(row),
        created_at=row.created_at,
        completed_at=row.completed_at,
        duration_ms=duration,
        result=_result_out(result, kind) if result is not None else None,
        links=links(row),
    )


async def to_out(db: AsyncSession, row: Submission) -> SubmissionOut:
    return _out(row, await repo.get_result(db, row.id))


async def get(db: AsyncSession, principal: Principal, submission_id: uuid.UUID) -> SubmissionOut:
    row = await repo.get_owned(db, submission_id, principal.user_id)
    if row is None:
        raise NotFound(f"no submission {submission_id}")
    return await to_out(db, row)


async def list_(
    db: AsyncSession,
    principal: Principal,
    *,
    problem_id: str | None,
    session_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> SubmissionPage:
    before = decode_cursor(cursor) if cursor else None
    rows = await repo.list_owned(
        db,
        principal.user_id,
        problem_id=problem_id,
        session_id=session_id,
        limit=limit + 1,
        before=before,
    )
    page, more = rows[:limit], len(rows) > limit
    results = await repo.results_for(db, [r.id for r in page])
    return SubmissionPage(
        items=[_out(r, results.get(r.id)) for r in page],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more and page else None,
    )
