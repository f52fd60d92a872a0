"""The FastAPI application factory: ``uvicorn api.app:create_app --factory``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request, Response
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.auth import JwtVerifier
from api.deps import Resources
from api.errors import install_error_handlers
from api.middleware import ProblemCORSMiddleware, install_edge
from api.openapi import install_openapi
from api.routers import (
    authoring,
    health,
    recommendations,
    reviews,
    sessions,
    submissions,
    tracks,
    tutor,
)
from domain.settings import Settings, SettingsError, get_settings
from store.db import make_engine, make_sessionmaker

log = logging.getLogger("co.api")

ROUTERS = (
    health.router,
    tracks.router,
    authoring.router,
    sessions.router,
    submissions.router,
    tutor.router,
    reviews.router,
    recommendations.router,
)


def _verifier(settings: Settings) -> JwtVerifier:
    pem = settings.public_key_pem()
    jwks_url = str(settings.jwt_jwks_url) if settings.jwt_jwks_url else None
    if not pem and not jwks_url:
        raise SettingsError(
            "Configuration error:\n  CO_JWT_PUBLIC_KEY (or CO_JWT_JWKS_URL) is required"
        )
    return JwtVerifier.from_pem(
        pem,
        jwks_url=jwks_url,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway_seconds=settings.jwt_leeway_seconds,
        max_bytes=settings.jwt_max_bytes,
        roles_claim=settings.jwt_roles_claim,
    )


async def connect_temporal(settings: Settings) -> Client:
    # Lazy: the API starts (and /readyz reports it) even while Temporal is still booting.
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        lazy=True,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    verifier = _verifier(settings)  # fail at start-up, not on the first request

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(str(settings.db_url))
        redis = Redis.from_url(str(settings.redis_url), decode_responses=True)
        temporal = await connect_temporal(settings)
        app.state.resources = Resources(
            settings=settings,
            engine=engine,
            sessionmaker=make_sessionmaker(engine),
            redis=redis,
            temporal=temporal,
            verifier=verifier,
        )
        try:
            yield
        finally:
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="SciMigo Curriculum Orchestrator",
        version="1.0.0",
        description=(
            "The public gateway of the SciMigo learning platform: tracks, sessions, "
            "submissions, the tutor (SSE), spaced-repetition reviews (FSRS) and "
            "recommendations with reasons. Every endpoint but the health "
            "probes needs a JWT bearer token; errors are application/problem+json."
        ),
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_openapi(app)
    install_edge(app, settings)  # before CORS, so CORS wraps 413/422/429 answers
    app.add_middleware(
        ProblemCORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "Last-Event-ID",
            "Prefer",
        ],
        expose_headers=[
            "X-Request-ID",
            "Retry-After",
            "RateLimit",
            "RateLimit-Policy",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "Location",
        ],
    )

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        incoming = request.headers.get("x-request-id", "")
        rid = incoming if 8 <= len(incoming) <= 64 and incoming.isascii() else uuid.uuid4().hex
        request.state.request_id = rid
        structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            response = await call_next(request)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        response.headers["X-Request-ID"] = rid
        return response

    for router in ROUTERS:
        app.include_router(router)
    return app
