"""The per-user request rate limit, shared by every API replica through Redis.

Strategy: a *moving window*. Shared, it is one Lua script (``_HIT``, atomic across
replicas, on Redis' clock) over a sorted set of the accepted requests' timestamps per key; the
in-process fallback is the ``limits`` library's moving window. Either way a request is
admitted only if fewer than ``limit`` accepted ones lie within the window, so no interval of
``window`` seconds ever holds more than ``limit`` requests:

- a fixed window lets a client spend its quota at the end of one window and again at the
  start of the next, 2x the limit in a few seconds;
- the sliding-window counter fixes most of that by weighting the previous window's count, but
  it is an approximation that assumes the previous window's requests were evenly spread;
- the price of exactness is a set of at most ``limit`` (60) timestamps per active user, which
  expires with the window: negligible.

Refused requests are not recorded, so a client that keeps hammering while limited is
admitted again as soon as its oldest request leaves the window (``Retry-After`` says when).

When Redis is unreachable (a connection fails twice: once more on a fresh connection, since a
restarted Redis leaves closed ones in the pool) the limiter falls back to the same strategy in
process memory, logs a warning, and tries Redis again after ``retry_shared_after`` seconds. A
degraded limit is per replica (N replicas admit up to N x limit), which is better than refusing
every request or admitting all of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

log = logging.getLogger("co.api.ratelimit")

# The shared moving window in one round trip and O(log n) (``limits`` needs two scripts per
# request, the hit then the window stats for the headers, and walks its list of timestamps).
# A sorted set of the accepted requests' timestamps (Redis' own clock, so replicas agree):
# drop those out of the window, admit if fewer than ``limit`` remain. As exact as before: no
# interval of ``window`` holds more than ``limit`` accepted requests; refusals are not recorded.
# The member ``now:count`` is unique: within one millisecond the count only grows.
# Returns ``{allowed, entries in the window after the hit, oldest entry (ms) or -1, now (ms)}``.
_HIT = """
local key, limit, window_ms = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_ms)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, now .. ':' .. count)
  redis.call('PEXPIRE', key, window_ms)
  count = count + 1
  allowed = 1
end
local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local oldest = -1
if first[2] then oldest = tonumber(first[2]) end
return {allowed, count, oldest, now}
"""

POLICY_NAME = "default"


class _HitBatcher:
    """Group commit of the hits of one process: the hits that arrive while a round trip is
    in flight go together in the next one, as one pipeline of ``EVALSHA`` calls.

    Each hit is still its own atomic script on Redis' clock, run in arrival order, so the
    limit stays exactly as shared across replicas as one call per request; what is shared
    is the round trip (one socket write and read, one wake-up of Redis and of this loop, for
    every request waiting at that moment). Idle, a hit waits for no one: it leaves at the
    loop's next turn. Before (one call per request), the Redis round trip was the largest
    cost of a track list served from memory.
    """

    MAX_BATCH = 256

    def __init__(self, redis: Redis, script: str, args: tuple[int, int], *, timeout: float) -> None:
        self._redis = redis
        self._timeout = timeout
        self._script = script
        self._sha = hashlib.sha1(script.encode()).hexdigest()  # how Redis names a script
        self._args = args
        self._queue: list[tuple[str, asyncio.Future[list[int]]]] = []
        self._draining = False
        self._drainer: asyncio.Task[None] | None = None  # held: the loop keeps only weak refs

    async def hit(self, key: str) -> list[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        self._queue.append((key, future))
        if not self._draining:
            self._draining = True
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[str, asyncio.Future[list[int]]]] = []
        try:
            while self._queue:
                batch = self._queue[: self.MAX_BATCH]
                del self._queue[: self.MAX_BATCH]
                try:
                    # One deadline per round trip rather than per request (an
                    # ``asyncio.timeout`` per hit was a measurable share of the edge).
                    async with asyncio.timeout(self._timeout):
                        results = await self._send([key for key, _ in batch])
                except Exception as exc:  # every hit of the batch falls back to memory
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # its request went away meanwhile (disconnect)
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
            batch = []
        finally:
            self._draining = False
            # Only when cancelled (shutdown): nobody may be left waiting for an answer.
            for _, future in [*batch, *self._queue]:
                if not future.done():
                    future.set_exception(ConnectionError("the rate limit's round trip stopped"))
            self._queue.clear()

    async def _send(self, keys: list[str]) -> list[Any]:
        results = await self._pipeline(keys)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:  # a new or flushed Redis: the script did not run; load it and run those
            await self._redis.script_load(self._script)
            again = await self._pipeline([keys[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        return results

    async def _pipeline(self, keys: list[str]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.evalsha(self._sha, 1, key, *self._args)
            return list(await pipe.execute(raise_on_error=False))


@dataclass(frozen=True)
class Decision:
    """The outcome of one hit, with what the rate-limit headers report."""

    allowed: bool
    limit: int
    window_seconds: int
    remaining: int
    reset_after: int  # seconds until the oldest request in the window leaves it
    shared: bool  # False when the per-process fallback decided

    def headers(self) -> dict[str, str]:
        """``RateLimit``/``RateLimit-Policy`` (IETF draft) and the common ``X-RateLimit-*``."""
        headers = {
            "RateLimit-Policy": f'"{POLICY_NAME}";q={self.limit};w={self.window_seconds}',
            "RateLimit": f'"{POLICY_NAME}";r={self.remaining};t={self.reset_after}',
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(time.time()) + self.reset_after),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_after))
        return headers


class RateLimiter:
    """``limit`` requests per ``window_seconds`` per key, in Redis or, failing that, in memory."""

    def __init__(
        self,
        redis_url: str,
        *,
        limit: int,
        window_seconds: int = 60,
        redis_timeout: float = 1.0,
        max_connections: int = 64,
        retry_shared_after: float = 5.0,
        key_prefix: str = "co:ratelimit",
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._item = RateLimitItemPerSecond(limit, window_seconds)
        self._timeout = redis_timeout
        self._retry_shared_after = retry_shared_after
        # A pool of the limiter's own: short timeouts and no retries, because an absent Redis
        # must cost one request a moment once (then memory for ``retry_shared_after`` s), not
        # seconds on every request. Bounded and blocking, so a burst queues for a connection
        # instead of opening hundreds of sockets at once (which is slow enough to time out).
        self._pool: ConnectionPool = BlockingConnectionPool.from_url(
            redis_url,
            max_connections=max_connections,
            timeout=redis_timeout,
            socket_connect_timeout=redis_timeout,
            socket_timeout=redis_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = Redis(connection_pool=self._pool)
        self._hits = _HitBatcher(
            self._redis, _HIT, (limit, window_seconds * 1000), timeout=redis_timeout * 3
        )
        self._key_prefix = key_prefix
        self._local: MovingWindowRateLimiter | None = None
        self._shared_paused_until = 0.0
        self.degraded = False

    def _local_limiter(self) -> MovingWindowRateLimiter:
        # Made on first use: MemoryStorage schedules its expiry task on the running loop.
        if self._local is None:
            self._local = MovingWindowRateLimiter(MemoryStorage())
        return self._local

    async def _decide(self, limiter: MovingWindowRateLimiter, key: str, shared: bool) -> Decision:
        allowed = await limiter.hit(self._item, key)
        stats = await limiter.get_window_stats(self._item, key)
        return Decision(
            allowed=bool(allowed),
            limit=self.limit,
            window_seconds=self.window_seconds,
            remaining=max(0, int(stats.remaining)),
            reset_after=max(0, math.ceil(stats.reset_time - time.time())),
            shared=shared,
        )

    async def _decide_shared(self, key: str) -> Decision:
        allowed, count, oldest, now = await self._hits.hit(f"{self._key_prefix}:fast:{key}")
        window_ms = self.window_seconds * 1000
        reset_ms = (int(oldest) + window_ms - int(now)) if int(oldest) >= 0 else 0
        return Decision(
            allowed=bool(allowed),
            limit=self.limit,
            window_seconds=self.window_seconds,
            remaining=max(0, self.limit - int(count)),
            reset_after=max(0, math.ceil(reset_ms / 1000)),
            shared=True,
        )

    async def _decide_shared_afresh(self, key: str) -> Decision:
        try:
            return await self._decide_shared(key)
        except RedisConnectionError:
            # A restarted Redis closed the connections idle in the pool, and the pool hands
            # them out unchecked: each would fail once and send this process back to its
            # memory for ``retry_shared_after`` (under load: flapping for as long as stale
            # ones are left). Drop the idle ones and ask once more on a fresh connection.
            await self._pool.disconnect(inuse_connections=False)
            return await self._decide_shared(key)

    async def hit(self, key: str) -> Decision:
        """Count one request for ``key`` and say whether it may proceed."""
        if time.monotonic() >= self._shared_paused_until:
            try:
                # Bounded by the batcher: each round trip (the one in flight, this hit's own,
                # and one more on a fresh connection) has a deadline of ``3 x redis_timeout``.
                decision = await self._decide_shared_afresh(key)
            except Exception as exc:  # StorageError, timeouts, anything from the client
                self._shared_paused_until = time.monotonic() + self._retry_shared_after
                if not self.degraded:
                    log.warning(
                        "rate limit store (Redis) unreachable: limiting per process until it "
                        "is back",
                        extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
                    )
                self.degraded = True
            else:
                if self.degraded:
                    log.warning("rate limit store (Redis) reachable again: limits are shared")
                self.degraded = False
                return decision
        return await self._decide(self._local_limiter(), key, shared=False)

    async def clear(self, key: str) -> None:
        """Forget ``key``'s requests (tests and support tooling)."""
        await self._redis.delete(f"{self._key_prefix}:fast:{key}")
        if self._local is not None:
            await self._local.clear(self._item, key)

    async def aclose(self) -> None:
        await self._pool.aclose()
