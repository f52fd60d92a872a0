"""The one polling helper: wait until a check holds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout: float = 15.0,
    every: float = 0.05,
    failure: Callable[[], str] | None = None,
) -> None:
    """Wait until ``check()`` is true (raises TimeoutError after ``timeout`` seconds, or
    AssertionError with ``failure()`` as its message when ``failure`` is given)."""

    async def loop() -> None:
        while not await check():
            await asyncio.sleep(every)

    try:
        await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        if failure is None:
            raise
        raise AssertionError(failure()) from None
