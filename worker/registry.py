"""What the worker runs: every workflow class and the activities bound to their
dependencies. Adding a workflow or an activity class means adding it here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.settings import Settings


@dataclass
class ActivityDeps:
    """Long-lived clients shared by every activity of one worker process."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    http: httpx.AsyncClient


def workflows() -> Sequence[type]:
    return []


def activities(deps: ActivityDeps) -> Sequence[Callable[..., Any]]:
    del deps
    return []
