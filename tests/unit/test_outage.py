"""Which dependency an exception shows to be down (``api.outage``): the table the error
handler relies on to answer 503 naming it instead of 500."""

from __future__ import annotations

import asyncpg
import pytest
import redis.exceptions as redis_errors
from temporalio.service import RPCError, RPCStatusCode

from api.outage import POSTGRES, REDIS, TEMPORAL, failed_dependency


def _chained(outer: Exception, cause: Exception) -> Exception:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (RPCError("unreachable", RPCStatusCode.UNAVAILABLE, b""), TEMPORAL),
        (RPCError("slow", RPCStatusCode.DEADLINE_EXCEEDED, b""), TEMPORAL),
        (RPCError("bad request", RPCStatusCode.INVALID_ARGUMENT, b""), None),
        # a lazy client whose first connection fails
        (RuntimeError("Failed client connect: Server connection error"), TEMPORAL),
        (RuntimeError("something else broke"), None),
        (redis_errors.ConnectionError("refused"), REDIS),
        (asyncpg.PostgresConnectionError("gone"), POSTGRES),
        (_chained(ValueError("wrapped"), redis_errors.TimeoutError("slow")), REDIS),
        (ValueError("a bug"), None),
    ],
)
def test_failed_dependency(exc: Exception, expected: str | None) -> None:
    assert failed_dependency(exc) == expected
