"""eventually(): the one polling helper answers with what the check found, waits through
the errors it is told to, and fails with a message that says what never happened."""

from __future__ import annotations

import pytest

from tests.support import eventually


class Counter:
    def __init__(self, ready_after: int) -> None:
        self.calls = 0
        self.ready_after = ready_after

    async def value(self) -> list[int] | None:
        self.calls += 1
        return [] if self.calls >= self.ready_after else None

    async def flaky(self) -> bool:
        self.calls += 1
        if self.calls < self.ready_after:
            raise ConnectionError(f"attempt {self.calls}")
        return True


async def test_the_first_answer_is_returned_and_an_empty_one_counts() -> None:
    counter = Counter(ready_after=3)
    assert await eventually(counter.value, every=0) == []
    assert counter.calls == 3


async def test_named_errors_mean_not_yet_and_others_fail_at_once() -> None:
    counter = Counter(ready_after=3)
    assert await eventually(counter.flaky, every=0, ignoring=(ConnectionError,)) is True
    with pytest.raises(ConnectionError, match="attempt 1"):
        await eventually(Counter(ready_after=3).flaky, every=0)


async def test_a_check_that_never_holds_fails_with_its_message_and_last_error() -> None:
    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match="the row never came"):
        await eventually(never, timeout=0.1, failure=lambda: "the row never came")
    with pytest.raises(TimeoutError) as timed_out:
        await eventually(Counter(ready_after=10**9).flaky, timeout=0.1, ignoring=(OSError,))
    assert isinstance(timed_out.value.__cause__, ConnectionError)
