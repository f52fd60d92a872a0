"""The relay's side of a turn's Redis Stream when the stream is lost under a resuming
client (a Redis restarted without persistence). Real Redis; no Temporal, no HTTP."""

from __future__ import annotations

import json
import uuid

from redis.asyncio import Redis

from activities.tutor import TurnStream
from api.tutor_relay import relay
from domain.tutor import EntryType, MetaEvent, TurnStatus, stream_state_key


def meta_for(message_id: uuid.UUID) -> MetaEvent:
    return MetaEvent(
        message_id=message_id,
        session_id=uuid.uuid4(),
        problem_id="py-two-sum",
        hint_level=1,
        hint_level_requested=None,
        capped=False,
        status=TurnStatus.streaming,
        resumed=True,
    )


async def events(redis: Redis, message_id: uuid.UUID, after: str | None) -> list[tuple[str, str]]:
    """(event, data) of everything the relay sends after ``meta``."""
    got = [
        (str(e.event), str(e.data))
        async for e in relay(redis, meta_for(message_id), after=after, idle_timeout=3)
    ]
    assert got[0][0] == "meta"
    return got[1:]


async def write(turn: TurnStream, attempt: int, parts: list[str], start: int = 0) -> None:
    offset = start
    for part in parts:
        assert await turn.append(attempt, offset, part) == 1
        offset += len(part)


async def test_a_resume_after_the_cursor_continues_with_the_rest(redis_client: Redis) -> None:
    message_id = uuid.uuid4()
    turn = TurnStream(redis_client, message_id)
    await turn.claim(1)
    await write(turn, 1, ["Hello", " wor"])
    # A retried attempt carries on at the committed offset: still one sequel.
    await turn.claim(2)
    await write(turn, 2, ["ld"], start=9)
    await turn.close(EntryType.done, 60, chars=11)
    first_id = str((await redis_client.xrange(turn.key, count=1))[0][0])

    got = await events(redis_client, message_id, after=first_id)
    assert [e for e, _ in got] == ["token", "token", "done"]
    assert "".join(json.loads(d)["text"] for e, d in got if e == "token") == " world"


async def test_a_resume_into_a_stream_written_again_from_the_start_is_told_to_restart(
    redis_client: Redis,
) -> None:
    message_id = uuid.uuid4()
    turn = TurnStream(redis_client, message_id)
    # The client saw "Hello wor" from a stream that Redis has since forgotten (its ids are
    # given here: the lost stream was written before the restart, so they sort before any
    # id written after it, and no later entry can share one).
    for entry_id, text, offset in (("1-0", "Hello", 0), ("1-1", " wor", 5)):
        await redis_client.xadd(
            turn.key, {"type": "token", "text": text, "offset": offset}, id=entry_id
        )
    cursor = "1-1"
    await redis_client.delete(turn.key, stream_state_key(message_id))
    # The next attempt writes the whole answer again into a new stream.
    await turn.claim(2)
    await write(turn, 2, ["Hello", " world"])
    await turn.close(EntryType.done, 60, chars=11)

    got = await events(redis_client, message_id, after=cursor)
    # Not "Hello world" again behind "Hello wor": the client is told to start over.
    assert [e for e, _ in got] == ["error"]
    assert json.loads(got[0][1])["code"] == "stream_reset"
    again = await events(redis_client, message_id, after=None)
    assert "".join(json.loads(d)["text"] for e, d in again if e == "token") == "Hello world"
