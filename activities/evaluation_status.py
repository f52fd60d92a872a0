"""What a submission shows while its evaluation is retried: the attempt running and the
class of the failure that made it retry. Written by the evaluation activity, which owns
the submission's row while it runs; the workflow's commands do not change (the attempt
number comes from ``activity.info().attempt``)."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.submissions import RetryReason
from store import submissions as repo

log = logging.getLogger("co.activities.submissions")


class EvaluationStatus:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], submission_id: uuid.UUID
    ) -> None:
        self._db = sessionmaker
        self._id = submission_id
        self.attempt = activity.info().attempt

    async def _write(self, reason: RetryReason | None) -> None:
        # Best effort: the status is a courtesy to the learner, never a reason to fail.
        try:
            async with self._db() as db, db.begin():
                await repo.note_evaluation_attempt(
                    db, self._id, self.attempt, reason.value if reason else None
                )
        except Exception as exc:  # noqa: BLE001 - logged, and the evaluation goes on
            log.warning("evaluation status not written", extra={"error": repr(exc)[:200]})

    async def started(self) -> None:
        """A retry (attempt > 1) shows its number; a first attempt writes nothing."""
        if self.attempt > 1:
            await self._write(None)

    @contextlib.asynccontextmanager
    async def failing_as(self, reason: RetryReason) -> AsyncIterator[None]:
        """Record ``reason`` when the block fails in a way Temporal will retry."""
        try:
            yield
        except ApplicationError as err:
            if not err.non_retryable:
                await self._write(reason)
            raise
        except Exception:
            await self._write(RetryReason.internal)
            raise
