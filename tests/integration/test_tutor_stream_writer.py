"""The writer's side of a turn's Redis Stream: fencing of attempts, compare-and-append,
one final entry, expiry. Real Redis; no Temporal."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from activities.tutor import StreamLost, TurnStream
from domain.tutor import EntryType, stream_state_key


async def entries_of(redis: Redis, key: str) -> list[tuple[str, dict[str, str]]]:
    return list(await redis.xrange(key))  # type: ignore[arg-type]


async def test_a_retried_attempt_takes_over_at_the_committed_offset_and_fences_the_old(
    redis_client: Redis,
) -> None:
    turn = TurnStream(redis_client, uuid.uuid4())
    claim = await turn.claim(1)
    assert (claim.owner, claim.committed) == (True, 0)
    assert await turn.append(1, 0, "Hello") == 1
    assert await turn.append(1, 5, " wor") == 1

    second = await turn.claim(2)
    assert (second.owner, second.committed) == (True, 9)
    assert await turn.committed_text() == "Hello wor"
    # The zombie first attempt cannot write a word any more.
    assert await turn.append(1, 9, "ld") == -1
    # Nor can the owner write anywhere but at the committed end.
    assert await turn.append(2, 5, " world") == -2
    assert await turn.append(2, 9, "ld") == 1
    # An older attempt cannot claim back.
    assert (await turn.claim(1)).owner is False

    entries = await entries_of(redis_client, turn.key)
    kinds = [(f["type"], f.get("attempt"), f.get("offset")) for _, f in entries]
    assert kinds == [
        ("token", None, "0"),
        ("token", None, "5"),
        ("restart", "2", "9"),
        ("token", None, "9"),
    ]
    assert await turn.committed_text() == "Hello world"


async def test_closing_appends_one_final_entry_fences_everyone_and_sets_the_ttl(
    redis_client: Redis,
) -> None:
    turn = TurnStream(redis_client, uuid.uuid4())
    await turn.claim(1)
    await turn.append(1, 0, "Done.")
    assert await turn.complete(1, 5) == 1
    assert await turn.close(EntryType.done, 120, chars=5) is True
    assert await turn.close(EntryType.done, 120, chars=5) is False  # a retried finish
    assert await turn.close(EntryType.error, 120, code="x", reason="y") is False
    assert await turn.append(1, 5, " More") == -1

    entries = await entries_of(redis_client, turn.key)
    assert [f["type"] for _, f in entries] == ["token", "done"]
    assert 0 < await redis_client.ttl(turn.key) <= 120
    assert 0 < await redis_client.ttl(turn.state_key) <= 120
    assert (await turn.claim(3)).owner is False


async def test_an_attempt_after_a_completed_stream_learns_it_has_nothing_to_do(
    redis_client: Redis,
) -> None:
    turn = TurnStream(redis_client, uuid.uuid4())
    await turn.claim(1)
    await turn.append(1, 0, "All of it.")
    assert await turn.complete(1, 10) == 1  # ...and the worker died before reporting it
    claim = await turn.claim(2)
    assert (claim.owner, claim.complete, claim.committed) == (True, True, 10)
    entries = await entries_of(redis_client, turn.key)
    assert [f["type"] for _, f in entries] == ["token"]  # no restart marker: nothing restarts


async def test_a_turn_whose_keys_redis_lost_is_not_read_as_an_empty_answer(
    redis_client: Redis,
) -> None:
    """Redis restarted empty between streaming and storing: the transcript must not be
    stored as "" (the learner saw the text); the turn is lost, and says so."""
    message_id = uuid.uuid4()
    turn = TurnStream(redis_client, message_id)
    await turn.claim(1)
    await turn.append(1, 0, "Hello")
    assert await turn.complete(1, 5) == 1
    await redis_client.delete(turn.key, stream_state_key(message_id))

    with pytest.raises(StreamLost):
        await turn.committed_text()
