"""Which dependency an exception says is down: PostgreSQL, Redis or Temporal.

The error handler asks this before answering 500: a refused connection, a dropped
connection, a timeout or a server shutting down is an outage (503, ``Retry-After``),
not a bug. The exception's chain (``__cause__``/``__context__``) is walked, and a bare
``OSError``/``TimeoutError`` is attributed by the library its traceback ends in.
"""

from __future__ import annotations

import asyncpg
import redis.exceptions as redis_errors
from sqlalchemy import exc as sa_errors
from temporalio.service import RPCError, RPCStatusCode

# The names `/readyz` uses for its checks.
POSTGRES, REDIS, TEMPORAL = "postgres", "redis", "temporal"

_TEMPORAL_DOWN = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})
_LAZY_CONNECT_FAILED = "client connect"

# Module prefixes of the libraries that talk to each dependency.
_MODULE_OWNERS = (
    ("asyncpg", POSTGRES),
    ("sqlalchemy", POSTGRES),
    ("redis", REDIS),
    ("temporalio", TEMPORAL),
)


# The exception classes the API's error handler hands to ``failed_dependency`` (anything
# else that escapes a route is a bug, answered 500).
DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    RPCError,
    sa_errors.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.QueryCanceledError,
    OSError,  # also ConnectionError and TimeoutError
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or any(cur is s for s in seen) or len(seen) > 20:
            continue
        seen.append(cur)
        todo.extend((cur.__cause__, cur.__context__))
        if isinstance(cur, BaseExceptionGroup):
            todo.extend(cur.exceptions)
        if isinstance(cur, sa_errors.DBAPIError) and isinstance(cur.orig, BaseException):
            todo.append(cur.orig)
    return seen


def _by_traceback(exc: BaseException) -> str | None:
    owner = None
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        for prefix, name in _MODULE_OWNERS:
            if module == prefix or module.startswith(prefix + "."):
                owner = name
        tb = tb.tb_next
    return owner


def _direct(exc: BaseException) -> str | None:
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return REDIS
    if isinstance(exc, RPCError):
        return TEMPORAL if exc.status in _TEMPORAL_DOWN else None
    if isinstance(exc, RuntimeError) and _LAZY_CONNECT_FAILED in str(exc):
        # The API's client is lazy: when its first connection fails, the SDK raises a plain
        # RuntimeError ("Failed client connect: ..."), not an RPCError.
        return TEMPORAL
    if isinstance(exc, sa_errors.DBAPIError) and exc.connection_invalidated:
        return POSTGRES
    if isinstance(exc, sa_errors.OperationalError):
        return POSTGRES
    if isinstance(exc, sa_errors.TimeoutError):  # the pool's checkout timeout
        return POSTGRES
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.OperatorInterventionError  # shutting down, cannot connect now
        | asyncpg.QueryCanceledError,  # statement timeout
    ):
        return POSTGRES
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return _by_traceback(exc)
    return None


def failed_dependency(exc: BaseException) -> str | None:
    """The dependency ``exc`` shows to be down, or ``None`` if it is some other error."""
    for cur in _chain(exc):
        if (name := _direct(cur)) is not None:
            return name
    return None
