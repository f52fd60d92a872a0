"""Activities of SessionWorkflow: the projection of its state into PostgreSQL."""

from __future__ import annotations

from temporalio import activity

from activities.deps import ActivityDeps
from domain.contracts import (
    ActivityName,
)
from domain.sessions import SessionProjection
from store import sessions as repo


class SessionActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self._db = deps.sessionmaker

    @activity.defn(name=ActivityName.SESSION_PROJECT)
    async def project(self, data: SessionProjection) -> bool:
        """Write the session's state columns, keyed by its id and guarded by
        ``state_seq``: a retried or late write of an older state changes nothing. The row
        is the API's (committed before the workflow started); this never creates one."""
        async with self._db() as db, db.begin():
            return await repo.write_projection(db, data)
