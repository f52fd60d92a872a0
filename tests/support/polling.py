"""The one polling helper: wait until a check holds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 15.0, every: float = 0.05
) -> None:
    """Wait until ``check()`` is true (raises TimeoutError after ``timeout`` seconds)."""

    async def loop() -> None:
        while not await check():
            await asyncio.sleep(every)

    await asyncio.wait_for(loop(), timeout)
