"""The FastAPI application factory: ``uvicorn api.app:create_app --factory``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from redis.asyncio import Redis
from temporalio.client import Client

from api.auth import JwtVerifier
from api.deps import Resources
from api.docs import install_docs
from api.errors import install_error_handlers
from api.middleware import ProblemCORSMiddleware, install_edge
from api.observability import MetricsServer, RequestObservabilityMiddleware
from api.openapi import TAGS, install_openapi
from api.routers import (
    authoring,
    health,
    problems,
    recommendations,
    reviews,
    sessions,
    submissions,
    tracks,
    tutor,
)
from api.services.tracks import TrackCatalog
from domain.settings import Settings, SettingsError, get_settings
from ops.temporal import API_RETRY, connect, tls_config
from ops.tracing import provider_from_settings, temporal_interceptors
from store.db import make_engine, make_sessionmaker

log = logging.getLogger("co.api")

ROUTERS = (
    health.router,
    tracks.router,
    problems.router,
    authoring.router,
    authoring.listing,
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


async def connect_temporal(
    settings: Settings, tracer_provider: TracerProvider | None = None
) -> Client:
    # Lazy: the API starts (and /readyz reports it) even while Temporal is still booting.
    return await connect(
        settings,
        lazy=True,
        interceptors=temporal_interceptors(tracer_provider),
        retry_config=API_RETRY,
    )


def create_app(
    settings: Settings | None = None, *, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """``tracer_provider``: where spans go (tests pass an in-memory one); by default the
    OTLP exporter of ``CO_OTLP_ENDPOINT``, or no tracing at all."""
    settings = settings or get_settings()
    verifier = _verifier(settings)  # fail at start-up, not on the first request
    tls_config(settings)  # likewise for the Temporal TLS settings
    owns_provider = tracer_provider is None
    if tracer_provider is None:
        tracer_provider = provider_from_settings(settings, "co-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(str(settings.db_url))
        # Bounded waits (the tutor relay blocks 1 s at most): Redis down is a quick 503.
        redis = Redis.from_url(
            str(settings.redis_url),
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
        )
        temporal = await connect_temporal(settings, tracer_provider)
        metrics = MetricsServer(settings.metrics_host, settings.api_metrics_port)
        metrics.start()
        sessionmaker = make_sessionmaker(engine)
        app.state.resources = Resources(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            redis=redis,
            temporal=temporal,
            verifier=verifier,
            catalog=TrackCatalog(
                sessionmaker,
                recheck_seconds=settings.catalog_recheck_seconds,
                max_entries=settings.catalog_cache_entries,
            ),
        )
        try:
            yield
        finally:
            metrics.stop()
            await redis.aclose()
            await engine.dispose()
            if owns_provider and tracer_provider is not None:
                # Flushes the spans still batched: blocking HTTP, so off the event loop.
                await asyncio.to_thread(tracer_provider.shutdown)

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
        openapi_tags=TAGS,
        docs_url=None,  # served from installed assets instead of a CDN (api/docs.py)
        redoc_url=None,
    )
    install_docs(app)
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

    # Outermost: every answer, the edge's 413/422/429 included, gets a request id, a
    # metric and a log line.
    app.add_middleware(RequestObservabilityMiddleware)

    for router in ROUTERS:
        app.include_router(router)
    if tracer_provider is not None:
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=tracer_provider, excluded_urls="/healthz,/readyz"
        )
    return app
