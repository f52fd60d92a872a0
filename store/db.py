"""Async engine and session factory: one of each per process."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Bounded waits: a database that is down or unreachable fails a request within seconds
# (the API answers 503) instead of hanging it.
CONNECT_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 30.0
POOL_TIMEOUT_SECONDS = 10.0


def make_engine(db_url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine that survives a database restart: stale connections are re-checked."""
    return create_async_engine(
        db_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={
            "timeout": CONNECT_TIMEOUT_SECONDS,
            "command_timeout": COMMAND_TIMEOUT_SECONDS,
        },
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
