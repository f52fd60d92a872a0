"""The SSE relay: a tutor turn's Redis Stream, as Server-Sent Events, under a slot lease.

Events (every ``data`` is one JSON object):

``meta``   first, without an id: message id, hint level granted and requested, ``capped``
``token``  ``{"text": ...}`` with ``id:`` = the Redis Stream entry id
``done``   ``{"message_id": ..., "chars": N}`` with an id – the transcript is stored
``error``  ``{"code": ..., "reason": ...}`` – a reason a learner can read; nothing follows
``: ...``  comments keep the connection alive while waiting

Entry ids are the resume cursor: ``Last-Event-ID: <id>`` continues with the entry after
it (``XREAD`` is exclusive), so a client that reconnects misses nothing and gets nothing
twice. The relay holds no database connection while it streams.

A stream can be lost under a client's feet: a Redis restarted without persistence forgets
it, and the turn's next attempt writes the answer again from its first character into a
new stream, whose entry ids all sort after the client's cursor. Read after that cursor,
the client would get the whole answer again behind what it already showed. So every token
carries its character offset, and the relay checks that the cursor is in the stream and
that each token starts where the client's text ends. Otherwise it sends ``error``
``stream_reset`` and closes: the client drops what it showed and reads the answer from the
start (reconnect without ``Last-Event-ID``); a turn whose stream was lost after it was
written ends failed, with what is left of it.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from api.observability import SSE_OPEN
from api.sse_slots import Lease
from domain.tutor import EntryType, MetaEvent, stream_key, stream_state_key

log = logging.getLogger("co.api.tutor_relay")

# An EventSource waits this long before reconnecting on its own (the SSE ``retry:`` field).
CLIENT_RETRY_MS = 2000
BLOCK_MS = 1000
READ_COUNT = 200
_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def valid_entry_id(value: str) -> bool:
    return bool(_ENTRY_ID.match(value))


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _entries(result: Any, key: str) -> list[tuple[str, dict[str, str]]]:
    """XREAD's answer in RESP2 (a list of [key, entries]) or RESP3 (a dict) form."""
    if not result:
        return []
    if isinstance(result, dict):
        return list(result.get(key, []))
    for stream, entries in result:
        if stream == key:
            return list(entries)
    return []


def _event(entry_id: str, fields: dict[str, str], message_id: uuid.UUID) -> ServerSentEvent | None:
    kind = fields.get("type")
    if kind == EntryType.token:
        return ServerSentEvent(_json({"text": fields.get("text", "")}), event="token", id=entry_id)
    if kind == EntryType.done:
        chars = int(fields.get("chars", "0") or 0)
        return ServerSentEvent(
            _json({"message_id": str(message_id), "chars": chars}), event="done", id=entry_id
        )
    if kind == EntryType.error:
        return ServerSentEvent(
            _json({"code": fields.get("code", "error"), "reason": fields.get("reason", "")}),
            event="error",
            id=entry_id,
        )
    return None  # ``restart`` markers are for operators: the text simply carries on


def _reset() -> ServerSentEvent:
    return error_event(
        "stream_reset",
        "The answer was interrupted and starts again: read it from the beginning.",
    )


async def _end_of(redis: Redis, key: str, entry_id: str) -> int | None:
    """Where the text ends after the token ``entry_id``; None if the stream lacks it."""
    found: list[tuple[str, dict[str, str]]] = await redis.xrange(  # type: ignore[assignment]
        key, entry_id, entry_id, count=1
    )
    if not found:
        return None
    fields = found[0][1]
    return int(fields.get("offset", "0") or 0) + len(fields.get("text", ""))


def error_event(code: str, reason: str) -> ServerSentEvent:
    """An error the relay itself reports (no id: resuming after it repeats nothing)."""
    return ServerSentEvent(_json({"code": code, "reason": reason}), event="error")


async def relay(
    redis: Redis,
    meta: MetaEvent,
    *,
    after: str | None,
    idle_timeout: float,
) -> AsyncIterator[ServerSentEvent]:
    """``meta``, then the turn's entries after ``after`` until ``done`` or ``error``."""
    yield ServerSentEvent(meta.model_dump_json(), event="meta", retry=CLIENT_RETRY_MS)
    key = stream_key(meta.message_id)
    cursor = after or "0-0"
    idle = 0.0
    # The offset the next token must start at; None until the resume cursor is found.
    expected: int | None = 0
    try:
        if after is not None:
            expected = await _end_of(redis, key, after)
    except RedisError as exc:
        log.warning("tutor relay lost Redis", extra={"error": repr(exc)[:200]})
        yield error_event(
            "relay_interrupted",
            "The connection to the tutor was interrupted. Reconnect to continue.",
        )
        return
    while True:
        try:
            result = await redis.xread({key: cursor}, count=READ_COUNT, block=BLOCK_MS)
            entries = _entries(result, key)
            if not entries and await redis.hexists(stream_state_key(meta.message_id), "closed"):
                # Closed: whatever follows the cursor is there now (read it without waiting);
                # if nothing does, the client resumed after the end: say how it ended again.
                entries = _entries(await redis.xread({key: cursor}, count=READ_COUNT), key)
                if not entries:
                    last: list[tuple[str, dict[str, str]]] = await redis.xrevrange(  # type: ignore[assignment]
                        key, count=1
                    )
                    entries = list(last)
        except RedisError as exc:
            log.warning("tutor relay lost Redis", extra={"error": repr(exc)[:200]})
            yield error_event(
                "relay_interrupted",
                "The connection to the tutor was interrupted. Reconnect to continue.",
            )
            return
        if not entries:
            idle += BLOCK_MS / 1000
            if idle >= idle_timeout:
                yield error_event(
                    "timeout",
                    "The tutor is taking too long to answer. Reconnect later to read the answer.",
                )
                return
            continue
        idle = 0.0
        for entry_id, fields in entries:
            cursor = entry_id
            if expected is None:
                yield _reset()  # the cursor's stream is gone: whatever follows is another's
                return
            if fields.get("type") == EntryType.token:
                if int(fields.get("offset", "-1") or -1) != expected:
                    yield _reset()  # not the sequel of what the client has
                    return
                expected += len(fields.get("text", ""))
            event = _event(entry_id, fields, meta.message_id)
            if event is None:
                continue
            yield event
            if event.event in ("done", "error"):
                return


class LeasedEventSourceResponse(EventSourceResponse):
    """An SSE response that holds an SSE slot lease for exactly as long as it runs.

    The lease is refreshed in the background and released in a ``finally`` that runs
    whatever ends the response: the generator finished, the client disconnected (the
    task group is cancelled), a send timed out, or the server shuts down. The release is
    shielded, because under a cancelled scope every ``await`` would be cancelled again.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterator[ServerSentEvent],
        status_code: int = 200,
        *,
        lease: Lease,
        **kw: Any,
    ) -> None:
        super().__init__(content, status_code, **kw)
        self._lease = lease

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        SSE_OPEN.inc()
        try:
            async with self._lease.kept_alive():
                await super().__call__(scope, receive, send)
        except SendTimeoutError:
            # The client stopped reading; nobody is left to tell. The turn carries on.
            log.info("SSE client too slow: stream closed", extra={"user_id": self._lease.user_id})
        finally:
            SSE_OPEN.dec()
            with anyio.CancelScope(shield=True):
                try:
                    await self._lease.release()
                except Exception as exc:  # the lease then lapses by itself after its TTL
                    log.warning("SSE slot release failed", extra={"error": repr(exc)[:200]})
