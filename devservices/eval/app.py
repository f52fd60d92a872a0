"""The Eval reference service (FastAPI): ``POST /v1/evaluate`` (needs ``X-Internal-Token``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI

from devservices.common import install_problem_handlers, internal_token_guard
from devservices.eval.math_worker import MathWorkerPool
from devservices.eval.service import EvalSettings, Evaluator
from domain.upstream import EvalRequest, EvalResponse

log = logging.getLogger(__name__)


def create_app(
    settings: EvalSettings | None = None, *, math_pool: MathWorkerPool | None = None
) -> FastAPI:
    """Build the app. Pass ``math_pool`` to share sympy workers (the caller then owns it);
    otherwise the app creates one and closes it at shutdown."""
    settings = settings or EvalSettings()
    owns_pool = math_pool is None
    pool = math_pool or MathWorkerPool(
        settings.math_workers, memory_limit_mb=settings.math_worker_memory_mb
    )
    evaluator = Evaluator(settings, pool)
    require_token = internal_token_guard(settings.internal_token)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        warm: asyncio.Future[None] | None = None
        if settings.warm_up_math:
            warm = asyncio.ensure_future(asyncio.to_thread(pool.warm_up))
        try:
            yield
        finally:
            if owns_pool:
                pool.close()  # also stops a worker that is still starting
            if warm is not None:
                with contextlib.suppress(Exception):
                    await warm

    app = FastAPI(
        title="SciMigo Eval (dev)",
        version="1",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.state.evaluator = evaluator

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/v1/evaluate",
        response_model=EvalResponse,
        response_model_exclude_none=False,
        dependencies=[Depends(require_token)],
    )
    async def evaluate(request: EvalRequest) -> EvalResponse:
        return await evaluator.evaluate(request)

    return app
