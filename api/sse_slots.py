"""Per-user SSE slots: at most ``CO_SSE_MAX_STREAMS`` open streams per user, across replicas.

A slot is a *lease* in Redis: one sorted set per user, ``co:sse:slots:{user}``, whose
members are lease ids scored by their expiry time (Redis's own clock, in ms, so replicas
with skewed clocks agree). Acquiring is one Lua script – drop expired leases, count, add
if below the limit – so two replicas can never both take the last slot.

- A streaming response refreshes its lease every ``ttl / 3`` seconds.
- It releases the lease in a ``finally`` whatever ends the stream: the answer is done,
  the client disconnected, a send timed out, the server is shutting down.
- A process that dies stops refreshing: its leases lapse after ``ttl`` seconds and the
  next acquire drops them. The key itself expires with its newest lease, so an idle user
  leaves nothing behind. No slot can leak for longer than the TTL.

``limits`` (the rate limiter's library) counts hits in windows; it has no leases that can
be released early, hence this small script.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis

from api.observability import SSE_LEASES, SSE_SLOTS

log = logging.getLogger("co.api.sse_slots")

KEY_PREFIX = "co:sse:slots:"

# ARGV: max streams, ttl ms, lease id. Returns {1, 0} or {0, ms until the soonest expiry}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local soonest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(soonest[2]) - now}
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, 0}
"""

# ARGV: ttl ms, lease id. Returns 1 when the lease was still held, 0 when it had lapsed
# (then it is taken again: the stream is still open and does use a slot).
_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local held = redis.call('ZSCORE', KEYS[1], ARGV[2])
local alive = held and tonumber(held) > now
redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
if alive then return 1 end
return 0
"""


def slots_key(user_id: str) -> str:
    return KEY_PREFIX + user_id


@dataclass(frozen=True)
class Refusal:
    """No slot is free; ``retry_after`` (seconds) is a hint for the client."""

    retry_after: int


class Lease:
    """One held slot. ``release`` is idempotent."""

    def __init__(self, slots: SseSlots, user_id: str, lease_id: str) -> None:
        self._slots = slots
        self.user_id = user_id
        self.lease_id = lease_id
        self.released = False

    async def refresh(self) -> bool:
        return await self._slots.refresh(self)

    async def release(self) -> None:
        if not self.released:
            self.released = True
            SSE_LEASES.dec()
            await self._slots.release(self)

    @contextlib.asynccontextmanager
    async def kept_alive(self) -> AsyncIterator[None]:
        """Refresh the lease in the background for as long as the block runs."""

        async def refresher() -> None:
            while True:
                await asyncio.sleep(self._slots.ttl_seconds / 3)
                try:
                    if not await self.refresh():
                        log.warning("SSE slot lease had lapsed", extra={"user_id": self.user_id})
                except Exception as exc:  # a Redis blip must not end the stream
                    log.warning("SSE slot refresh failed", extra={"error": repr(exc)[:200]})

        task = asyncio.create_task(refresher())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class SseSlots:
    """``max_streams`` leases of ``ttl_seconds`` per user."""

    def __init__(self, redis: Redis, *, max_streams: int, ttl_seconds: float) -> None:
        self.redis = redis
        self.max_streams = max_streams
        self.ttl_seconds = ttl_seconds
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._acquire = redis.register_script(_ACQUIRE)
        self._refresh = redis.register_script(_REFRESH)

    async def acquire(self, user_id: str) -> Lease | Refusal:
        lease_id = uuid.uuid4().hex
        granted, wait_ms = await self._acquire(
            keys=[slots_key(user_id)], args=[self.max_streams, self._ttl_ms, lease_id]
        )
        if int(granted) == 1:
            SSE_SLOTS.labels("granted").inc()
            SSE_LEASES.inc()
            return Lease(self, user_id, lease_id)
        SSE_SLOTS.labels("refused").inc()
        # The soonest expiry bounds the wait only if its holder died; a live stream
        # usually ends within seconds, so advise a short retry.
        return Refusal(retry_after=max(1, min(math.ceil(int(wait_ms) / 1000), 5)))

    async def refresh(self, lease: Lease) -> bool:
        held = await self._refresh(
            keys=[slots_key(lease.user_id)], args=[self._ttl_ms, lease.lease_id]
        )
        return bool(int(held))

    async def release(self, lease: Lease) -> None:
        await self.redis.zrem(slots_key(lease.user_id), lease.lease_id)

    async def in_use(self, user_id: str) -> int:
        """Live leases of a user (for tests and support tooling)."""
        t_sec, t_us = await self.redis.time()
        now_ms = int(t_sec) * 1000 + int(t_us) // 1000
        return int(await self.redis.zcount(slots_key(user_id), f"({now_ms}", "+inf"))
