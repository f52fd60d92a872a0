"""The one polling helper: wait until a check holds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = 15.0,
    every: float = 0.05,
    failure: Callable[[], str] | None = None,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """Wait until ``check()`` returns something other than ``False`` or ``None`` and return
    it (an empty list is an answer); raises TimeoutError after ``timeout`` seconds, or
    AssertionError with ``failure()`` as its message when ``failure`` is given. An
    exception of a type in ``ignoring`` counts as "not yet" (a server still starting);
    the last one is the cause of the timeout."""
    last: Exception | None = None

    async def loop() -> T:
        nonlocal last
        while True:
            try:
                value = await check()
            except ignoring as e:
                last = e
            else:
                if value is not None and value is not False:
                    return value
            await asyncio.sleep(every)

    try:
        return await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        if failure is None:
            raise TimeoutError(f"not true after {timeout} s") from last
        raise AssertionError(failure()) from last
