"""The main API's notifications, for local runs and tests (FastAPI).

Speaks the notifications contract in ``domain/upstream.py``: ``POST
/internal/v1/notifications`` with ``X-Internal-Token`` and ``Idempotency-Key``. It records
each notification once per key (a repeat answers ``200`` with ``duplicate: true``) and
counts every delivery, so tests can assert "exactly once per batch" end to end:
``GET /internal/v1/notifications?user_id=`` lists what it recorded, with the number of
deliveries of each.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from devservices.common import ProblemError, install_problem_handlers, internal_token_guard
from devservices.settings import DEFAULT_INTERNAL_TOKEN
from domain.upstream import NOTIFICATIONS_PATH, Notification, NotificationReceipt

MAX_RECORDED = 100_000


class Recorded(BaseModel):
    id: str
    idempotency_key: str
    notification: Notification
    deliveries: int


class RecordedList(BaseModel):
    items: list[Recorded]


@dataclass
class NotificationLog:
    """What the stand-in received, by idempotency key (in memory, per app instance)."""

    by_key: dict[str, Recorded] = field(default_factory=dict)
    fail_next: int = 0  # answer 503 to the next N requests (transient failures)

    def for_user(self, user_id: str) -> list[Recorded]:
        return [r for r in self.by_key.values() if r.notification.user_id == user_id]


def create_app(
    internal_token: str = DEFAULT_INTERNAL_TOKEN, log: NotificationLog | None = None
) -> Any:
    log = log if log is not None else NotificationLog()
    app = FastAPI(title="Main API (dev stand-in): notifications")
    install_problem_handlers(app)
    require_token = internal_token_guard(internal_token)
    app.state.log = log

    @app.post(NOTIFICATIONS_PATH, dependencies=[Depends(require_token)])
    async def notify(
        body: Notification,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> JSONResponse:
        if not idempotency_key:
            raise ProblemError(422, "Idempotency-Key is required.")
        if log.fail_next > 0:
            log.fail_next -= 1
            raise ProblemError(503, "injected fault")
        seen = log.by_key.get(idempotency_key)
        if seen is not None:
            seen.deliveries += 1
            receipt = NotificationReceipt(id=seen.id, duplicate=True)
            return JSONResponse(receipt.model_dump(), status_code=200)
        if len(log.by_key) >= MAX_RECORDED:
            raise ProblemError(503, "the stand-in is full")
        record = Recorded(
            id=str(uuid.uuid4()), idempotency_key=idempotency_key, notification=body, deliveries=1
        )
        log.by_key[idempotency_key] = record
        return JSONResponse(NotificationReceipt(id=record.id).model_dump(), status_code=202)

    @app.get(NOTIFICATIONS_PATH, dependencies=[Depends(require_token)])
    async def recorded(
        user_id: Annotated[str | None, Query(max_length=200)] = None,
    ) -> RecordedList:
        items = log.for_user(user_id) if user_id else list(log.by_key.values())
        return RecordedList(items=items)

    return app
