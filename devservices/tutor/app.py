"""The Tutor reference service (FastAPI): ``POST /v1/hints/stream``, NDJSON, token by token.

Speaks the contract in ``domain/upstream.py`` ("The Tutor contract"): needs
``X-Internal-Token``, answers a stream of ``TutorChunk`` lines at a configurable pace, and
resumes at ``continue_from``. For tests it can misbehave on purpose (``TutorFaults``):
answer 503 to the first requests, or drop the connection part-way through a stream.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse
from pydantic_settings import BaseSettings, SettingsConfigDict

from devservices.common import ProblemError, install_problem_handlers, internal_token_guard
from devservices.settings import DEFAULT_INTERNAL_TOKEN
from devservices.tutor.compose import compose_answer, tokens_from
from domain.upstream import TutorChunk, TutorRequest

NDJSON = "application/x-ndjson"


class TutorSettings(BaseSettings):
    """``CO_INTERNAL_TOKEN`` and ``CO_DEV_TUTOR_TOKEN_DELAY_MS`` (the pace of the stream)."""

    model_config = SettingsConfigDict(env_prefix="CO_", extra="ignore")

    internal_token: str = DEFAULT_INTERNAL_TOKEN
    dev_tutor_token_delay_ms: float = 20.0


class TutorConnectionDropped(RuntimeError):
    """Raised inside a stream to cut it short the way a crashed upstream would."""


@dataclass
class TutorFaults:
    """Injected failures, counted per app instance; mutable, so a test can re-arm them.

    - ``fail_first``: answer ``fail_status`` (problem+json) to the next N requests;
    - ``break_after_tokens`` / ``break_times``: on the next ``break_times`` streams, drop
      the connection after that many tokens (no ``done``, an incomplete chunked body).
    """

    fail_first: int = 0
    fail_status: int = 503
    break_after_tokens: int = 0
    break_times: int = 0
    requests: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=50)
    )

    def arm(
        self,
        *,
        fail_first: int = 0,
        fail_status: int = 503,
        break_after_tokens: int = 0,
        break_times: int = 0,
    ) -> None:
        """Set the next faults and forget the requests seen so far."""
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.break_after_tokens = break_after_tokens
        self.break_times = break_times
        self.requests.clear()


def create_app(settings: TutorSettings | None = None, faults: TutorFaults | None = None) -> FastAPI:
    settings = settings or TutorSettings()
    faults = faults or TutorFaults()
    delay = max(settings.dev_tutor_token_delay_ms, 0.0) / 1000
    require_token = internal_token_guard(settings.internal_token)

    app = FastAPI(title="SciMigo Tutor (dev)", version="1", docs_url=None, redoc_url=None)
    install_problem_handlers(app)
    app.state.faults = faults

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/v1/hints/stream",
        dependencies=[Depends(require_token)],
        response_class=StreamingResponse,
        responses={200: {"content": {NDJSON: {}}, "description": "TutorChunk lines"}},
    )
    async def hints_stream(body: TutorRequest) -> StreamingResponse:
        # What the Tutor was told, so tests can prove what it was never told.
        faults.requests.append(body.model_dump(mode="json"))
        if faults.fail_first > 0:
            faults.fail_first -= 1
            raise ProblemError(faults.fail_status, "The tutor model is overloaded; retry later.")
        break_after = 0
        if faults.break_times > 0 and faults.break_after_tokens > 0:
            faults.break_times -= 1
            break_after = faults.break_after_tokens

        answer = compose_answer(body)
        tokens = tokens_from(answer, min(body.continue_from, len(answer)))

        async def lines() -> AsyncIterator[bytes]:
            for sent, (offset, text) in enumerate(tokens):
                if break_after and sent >= break_after:
                    raise TutorConnectionDropped("fault injection: connection dropped")
                if delay:
                    await asyncio.sleep(delay)
                yield _line(TutorChunk(type="token", text=text, offset=offset))
            yield _line(TutorChunk(type="done", offset=len(answer)))

        return StreamingResponse(lines(), media_type=NDJSON)

    return app


def _line(chunk: TutorChunk) -> bytes:
    return (json.dumps(chunk.model_dump(exclude_none=True), ensure_ascii=False) + "\n").encode()
