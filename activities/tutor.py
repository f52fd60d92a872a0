"""Activities of TutorTurnWorkflow: stream the answer, close the turn.

``stream`` calls the Tutor and appends each token to the Redis Stream ``tutor:{id}``
(see ``domain.tutor``). How a retried attempt avoids duplicated text:

- **Resume from the committed offset, never re-send.** The stream is append-only and a
  client only ever sees what is in it, so nothing shown can be taken back. A retried
  attempt therefore never starts over: it reads what is committed (N characters), writes
  a ``restart`` marker (attempt, N) for operators, and asks the Tutor to *continue from
  character N* (``TutorRequest.continue_from``). The relay skips the marker; the client
  sees one clean answer.
- **Compare-and-append.** Each token is appended by a Lua script that checks, atomically,
  that the caller is the attempt that owns the turn (a fencing number kept in the state
  hash beside the stream) and that the token starts exactly at the committed length. A
  zombie attempt (one Temporal already timed out and retried) cannot write a word, and a
  Tutor that repeats itself is trimmed rather than trusted.

``finish`` stores the transcript (the concatenation of the stream's tokens, so it equals
what the client saw), *then* appends ``done`` and sets the stream's TTL: a client that
has seen ``done`` can read the transcript at once. ``fail`` does the same with ``error``.
The Tutor only ever gets the public problem (``GET /v1/problems/{id}``, never the
internal bundle) and the public part of the learner's last result.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

import httpx
from pydantic import ValidationError
from redis.asyncio import Redis
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deps import ActivityDeps
from activities.submissions import heartbeating
from activities.upstream import ErrorType, UpstreamClient, bounded, classify
from domain.contracts import (
    ActivityName,
    FailureType,
)
from domain.hints import solution_allowed, visible_ladder
from domain.tutor import (
    BeginTurnInput,
    EntryType,
    FailTurnInput,
    FinishTurnInput,
    StreamOutcome,
    StreamTurnInput,
    TurnStatus,
    public_last_result,
    stream_key,
    stream_state_key,
)
from domain.upstream import (
    INTERNAL_TOKEN_HEADER,
    ProblemPublic,
    TutorChunk,
    TutorRequest,
)
from store import tutor as repo
from store.models import Result, TutorMessage

log = logging.getLogger("co.activities.tutor")

# Keys of a turn that never finishes (every worker died) still go away.
SAFETY_TTL_SECONDS = 24 * 3600
# ``begin`` (runs started before the API committed first): the API committed the row
# right after starting the workflow, so look for it briefly before failing the attempt.
ROW_WAIT_SECONDS = 3.0
ROW_POLL_SECONDS = 0.01
# Public problems change rarely; a worker may use one for this long.
PROBLEM_CACHE_SECONDS = 60.0
PROBLEM_CACHE_SIZE = 1000
# Larger than any attempt number: once a turn is closed, no attempt may append.
CLOSED_FENCE = 1 << 30

_CLAIM = """
local mine = tonumber(ARGV[1])
local st = redis.call('HMGET', KEYS[2], 'attempt', 'len', 'complete', 'closed')
if tonumber(st[1] or '0') > mine then return {0, 0, 0, 0} end
redis.call('HSET', KEYS[2], 'attempt', mine)
redis.call('EXPIRE', KEYS[2], ARGV[2])
local len = tonumber(st[2] or '0')
local complete = tonumber(st[3] or '0')
local closed = st[4] and 1 or 0
if mine > 1 and complete == 0 and closed == 0 then
  redis.call('XADD', KEYS[1], '*', 'type', 'restart', 'attempt', ARGV[1], 'offset', len)
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return {1, len, complete, closed}
"""

_APPEND = """
local st = redis.call('HMGET', KEYS[2], 'attempt', 'len')
if tonumber(st[1] or '0') ~= tonumber(ARGV[1]) then return -1 end
if tonumber(st[2] or '0') ~= tonumber(ARGV[2]) then return -2 end
redis.call('XADD', KEYS[1], '*', 'type', 'token', 'text', ARGV[4], 'offset', ARGV[2])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
redis.call('HSET', KEYS[2], 'len', ARGV[3])
return 1
"""

_COMPLETE = """
local st = redis.call('HMGET', KEYS[1], 'attempt', 'len')
if tonumber(st[1] or '0') ~= tonumber(ARGV[1]) then return -1 end
if tonumber(st[2] or '0') ~= tonumber(ARGV[2]) then return -2 end
redis.call('HSET', KEYS[1], 'complete', 1)
return 1
"""

# ARGV: type, ttl, fence, then field/value pairs of the entry.
_CLOSE = """
local first = redis.call('HSETNX', KEYS[2], 'closed', ARGV[1])
if first == 1 then
  local entry = {'type', ARGV[1]}
  for i = 4, #ARGV do entry[#entry + 1] = ARGV[i] end
  redis.call('XADD', KEYS[1], '*', unpack(entry))
  redis.call('HSET', KEYS[2], 'attempt', ARGV[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return first
"""


@dataclass(frozen=True)
class Claim:
    owner: bool
    committed: int
    complete: bool
    closed: bool


class StreamLost(RuntimeError):
    """The stream's entries are gone (Redis restarted without persistence, or flushed)."""


class TurnStream:
    """The writer's side of one turn's Redis Stream."""

    def __init__(self, redis: Redis, message_id: uuid.UUID) -> None:
        self._redis = redis
        self.key = stream_key(message_id)
        self.state_key = stream_state_key(message_id)
        self._claim = redis.register_script(_CLAIM)
        self._append = redis.register_script(_APPEND)
        self._complete = redis.register_script(_COMPLETE)
        self._close = redis.register_script(_CLOSE)

    async def claim(self, attempt: int) -> Claim:
        owner, committed, complete, closed = await self._claim(
            keys=[self.key, self.state_key], args=[attempt, SAFETY_TTL_SECONDS]
        )
        return Claim(bool(owner), int(committed), bool(complete), bool(closed))

    async def append(self, attempt: int, offset: int, text: str) -> int:
        """1 when appended; -1 when another attempt owns the turn; -2 on an offset mismatch."""
        result = await self._append(
            keys=[self.key, self.state_key],
            args=[attempt, offset, offset + len(text), text, SAFETY_TTL_SECONDS],
        )
        return int(result)

    async def complete(self, attempt: int, length: int) -> int:
        return int(await self._complete(keys=[self.state_key], args=[attempt, length]))

    async def close(self, kind: EntryType, ttl_seconds: int, **fields: str | int) -> bool:
        """Append the final ``done``/``error`` entry once and let the keys expire."""
        pairs = [str(x) for item in fields.items() for x in item]
        first = await self._close(
            keys=[self.key, self.state_key],
            args=[kind.value, ttl_seconds, CLOSED_FENCE, *pairs],
        )
        return bool(first)

    async def committed_text(self) -> str:
        """The answer so far: the stream's tokens, checked against the committed length."""
        entries: list[tuple[str, dict[str, str]]] = await self._redis.xrange(self.key)  # type: ignore[assignment]
        text = "".join(
            fields.get("text", "") for _, fields in entries if fields.get("type") == "token"
        )
        committed = await self._redis.hget(self.state_key, "len")
        if committed is None and not await self._redis.exists(self.state_key):
            # Every attempt's claim writes the state: without it the turn's keys are gone
            # (Redis restarted empty), and an empty text here would be stored as the answer.
            raise StreamLost(f"{self.state_key} is gone")
        length = int(committed or 0)
        if len(text) != length:
            raise StreamLost(f"{self.key} holds {len(text)} characters, expected {length}")
        return text


def _unavailable(message: str) -> ApplicationError:
    return ApplicationError(bounded(message), type=ErrorType.UNAVAILABLE)


class TutorActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        settings = deps.settings
        self._db = deps.sessionmaker
        self._redis = deps.redis
        self._http = deps.http
        self._settings = settings
        self._bank = UpstreamClient(
            deps.http, "Problem Bank", str(settings.problem_bank_base), settings.problem_bank_token
        )
        self._problems: dict[str, tuple[float, ProblemPublic]] = {}
        self._tutor_url = str(settings.tutor_base).rstrip("/") + "/v1/hints/stream"
        self._tutor_headers = {INTERNAL_TOKEN_HEADER: settings.tutor_token}
        self._tutor_timeout = httpx.Timeout(
            connect=5.0, read=settings.upstream_timeout_seconds, write=5.0, pool=5.0
        )

    @activity.defn(name=ActivityName.TUTOR_BEGIN)
    async def begin(self, data: BeginTurnInput) -> bool:
        """Wait until the API has committed the turn's row. Only runs started before the
        patch ``tutor-api-commits-first`` call this (the API started them first)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ROW_WAIT_SECONDS
        while True:
            async with self._db() as db:
                if await db.get(TutorMessage, data.message_id) is not None:
                    return True
            if loop.time() >= deadline:
                raise ApplicationError(
                    f"tutor message {data.message_id} is not recorded yet",
                    type=FailureType.TUTOR_MESSAGE_NOT_RECORDED,
                )
            await asyncio.sleep(ROW_POLL_SECONDS)

    async def _problem(self, problem_id: str) -> ProblemPublic:
        """The public problem, cached briefly: every turn on a problem needs it, and a
        learner waits for the first token while it is fetched."""
        now = time.monotonic()
        cached = self._problems.get(problem_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        # The public problem only: the internal bundle (hidden tests, reference solution)
        # never reaches this activity, so no prompt can make the Tutor reveal it.
        problem = await self._bank.call("GET", f"/v1/problems/{problem_id}", ProblemPublic)
        if len(self._problems) >= PROBLEM_CACHE_SIZE:
            self._problems.clear()
        self._problems[problem_id] = (now + PROBLEM_CACHE_SECONDS, problem)
        return problem

    async def _turn(self, message_id: uuid.UUID) -> tuple[TutorMessage, Result | None]:
        async with self._db() as db:
            found = await repo.turn_context(db, message_id)
        if found is None:
            raise ApplicationError(
                f"tutor message {message_id} does not exist",
                type=FailureType.TUTOR_MESSAGE_MISSING,
                non_retryable=True,
            )
        return found

    @staticmethod
    def _request(
        data: StreamTurnInput,
        turn: tuple[TutorMessage, Result | None],
        problem: ProblemPublic,
        prefix: str,
    ) -> TutorRequest:
        row, last = turn
        # The Tutor learns the ladder only up to the granted level: what it does not know
        # it cannot be talked into revealing.
        problem = problem.model_copy(
            update={"hints": visible_ladder(problem.hints, data.hint_level)}
        )
        return TutorRequest(
            turn_id=str(data.message_id),
            problem=problem,
            hint_level=data.hint_level,
            message=row.message,
            last_result=(
                public_last_result(last.verdict, last.message, last.tests)
                if last is not None
                else None
            ),
            failed_attempts=data.failed_attempts,
            allow_solution=solution_allowed(
                data.hint_level, data.failed_attempts, problem.solution_reveal_allowed
            ),
            continue_from=len(prefix),
            prefix=prefix,
        )

    @activity.defn(name=ActivityName.TUTOR_STREAM)
    async def stream(self, data: StreamTurnInput) -> StreamOutcome:
        attempt = activity.info().attempt
        turn = TurnStream(self._redis, data.message_id)
        # The claim, the turn's row and the public problem at once: the learner waits
        # for the first token behind all three.
        claim, context, problem = await asyncio.gather(
            turn.claim(attempt), self._turn(data.message_id), self._problem(data.problem_id)
        )
        if not claim.owner:
            raise ApplicationError(
                "a newer attempt owns this turn",
                type=FailureType.TUTOR_ATTEMPT_SUPERSEDED,
                non_retryable=True,
            )
        if claim.complete or claim.closed:
            # An earlier attempt streamed everything but its completion was lost.
            return StreamOutcome(chars=claim.committed, tokens=0, attempt=attempt)
        # Nothing committed yet (every first attempt): no text to read back, so the
        # learner's first token does not wait for a read of an empty stream.
        prefix = ""
        if claim.committed:
            try:
                prefix = await turn.committed_text()
            except StreamLost as exc:
                raise ApplicationError(
                    str(exc), type=FailureType.TUTOR_STREAM_LOST, non_retryable=True
                ) from None
        request = self._request(data, context, problem, prefix)
        restarted_at = len(prefix) if attempt > 1 else None
        if restarted_at is not None:
            log.info(
                "tutor turn resumed",
                extra={"message_id": str(data.message_id), "attempt": attempt, "at": len(prefix)},
            )
        async with heartbeating():
            length, tokens = await self._relay_tutor(turn, attempt, request, len(prefix))
        return StreamOutcome(
            chars=length, tokens=tokens, attempt=attempt, restarted_at=restarted_at
        )

    async def _relay_tutor(
        self, turn: TurnStream, attempt: int, request: TutorRequest, committed: int
    ) -> tuple[int, int]:
        """Stream the Tutor's answer into Redis; returns (answer length, tokens written)."""
        tokens = 0
        try:
            async with self._http.stream(
                "POST",
                self._tutor_url,
                json=request.model_dump(mode="json"),
                headers=self._tutor_headers,
                timeout=self._tutor_timeout,
            ) as response:
                if not response.is_success:
                    await response.aread()
                    error = classify("Tutor", response)
                    assert error is not None
                    raise error
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        chunk = TutorChunk.model_validate_json(line)
                    except ValidationError:
                        raise ApplicationError(
                            "Tutor sent a malformed chunk",
                            type=ErrorType.MALFORMED,
                            non_retryable=True,
                        ) from None
                    if chunk.type == "error":
                        raise _unavailable(f"Tutor failed mid-stream: {chunk.text}")
                    if chunk.type == "done":
                        if chunk.offset is not None and chunk.offset != committed:
                            raise _unavailable(
                                f"Tutor said done at {chunk.offset}, have {committed} characters"
                            )
                        if await turn.complete(attempt, committed) != 1:
                            raise _superseded()
                        return committed, tokens
                    committed, wrote = await self._append(turn, attempt, chunk, committed)
                    tokens += wrote
        except httpx.TimeoutException as exc:
            raise _unavailable(f"Tutor timed out: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            raise _unavailable(
                f"Tutor stream broke: {type(exc).__name__}: {exc}".rstrip(": ")
            ) from None
        raise _unavailable("Tutor stream ended without done")

    async def _append(
        self, turn: TurnStream, attempt: int, chunk: TutorChunk, committed: int
    ) -> tuple[int, int]:
        """Append one token at the committed offset; returns (new length, tokens written)."""
        text = chunk.text
        offset = committed if chunk.offset is None else chunk.offset
        if offset > committed:
            raise _unavailable(f"Tutor skipped text: token at {offset}, have {committed}")
        if offset < committed:
            text = text[committed - offset :]  # the Tutor repeated itself: keep only the new
        if not text:
            return committed, 0
        result = await turn.append(attempt, committed, text)
        if result != 1:
            raise _superseded()
        return committed + len(text), 1

    @activity.defn(name=ActivityName.TUTOR_FINISH)
    async def finish(self, data: FinishTurnInput) -> int:
        """Store the transcript, then tell the relays ``done``. Idempotent."""
        turn = TurnStream(self._redis, data.message_id)
        try:
            text = await turn.committed_text()
        except StreamLost as exc:
            raise ApplicationError(
                str(exc), type=FailureType.TUTOR_STREAM_LOST, non_retryable=True
            ) from None
        async with self._db() as db, db.begin():
            await repo.finish(db, data.message_id, TurnStatus.completed, text)
        await turn.close(EntryType.done, self._settings.tutor_stream_ttl_seconds, chars=len(text))
        return len(text)

    @activity.defn(name=ActivityName.TUTOR_FAIL)
    async def fail(self, data: FailTurnInput) -> None:
        """Close a turn that cannot be answered: keep what was said, tell the relays why."""
        turn = TurnStream(self._redis, data.message_id)
        try:
            text = await turn.committed_text()
        except StreamLost:
            text = ""
        async with self._db() as db, db.begin():
            await repo.finish(db, data.message_id, TurnStatus.failed, text, error=data.reason)
        await turn.close(
            EntryType.error,
            self._settings.tutor_stream_ttl_seconds,
            code=data.code,
            reason=data.reason,
        )


def _superseded() -> ApplicationError:
    return ApplicationError(
        "another attempt owns this turn",
        type=FailureType.TUTOR_ATTEMPT_SUPERSEDED,
        non_retryable=True,
    )
