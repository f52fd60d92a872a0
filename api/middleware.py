"""The HTTP edge: pure ASGI middleware that runs before any route.

Order, outermost first (``install_edge`` adds them; the request-id middleware and CORS of
``api.app`` sit outside them, so every answer here has a request id and CORS headers):

1. ``UnexpectedErrorMiddleware`` turns an exception nobody handled into a 500 problem while
   the request id is still bound to the log context.
2. ``RateLimitMiddleware`` verifies the bearer token once (the principal is cached for
   ``api.deps.current_principal``) and counts the request against the user's quota, or the
   client address's when there is no valid token. Health probes are exempt.
3. ``BodyGuardMiddleware`` refuses bodies over ``CO_MAX_BODY_BYTES`` with 413 before anything
   parses them (``Content-Length`` first, then counting the bytes of chunked bodies), and NUL
   characters, which PostgreSQL cannot store, in the path, the query or a JSON/text body with
   422.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import JwtVerifier, Principal
from api.errors import ApiError, problem_response, unexpected_error_response
from api.observability import RATE_LIMITED
from api.ratelimit import RateLimiter
from domain.settings import Settings

log = logging.getLogger("co.api.edge")

#: Paths never rate limited: the load balancer's probes must not compete with users.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz"})

# A JSON ``\u0000`` escape that is not itself escaped (an even run of backslashes before it).
_JSON_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _is_checked_text(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return (
        media == "application/json"
        or media.endswith("+json")
        or media == "application/x-www-form-urlencoded"
        or media.startswith("text/")
    )


def body_has_nul(body: bytes, content_type: str) -> bool:
    """Whether a JSON, form or text body carries a NUL character, raw or escaped."""
    if not _is_checked_text(content_type):
        return False  # binary uploads may hold NUL bytes legitimately
    if b"\x00" in body:
        return True  # also catches UTF-16/32 JSON, which RFC 8259 does not allow anyway
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        return b"%00" in body
    return _JSON_NUL_ESCAPE.search(body) is not None


async def _send_problem(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> None:
    response = problem_response(Request(scope), status, detail, headers=dict(headers or {}))
    await response(scope, receive, send)


class UnexpectedErrorMiddleware:
    """Answer an unhandled exception with a 500 problem, logged with the request id.

    It sits inside the request-id middleware, so the log line carries the id in its context,
    the response gets ``X-Request-ID`` and CORS headers, and nothing is re-raised to the
    server (which would log the traceback a second time, without the id).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # too late for a problem document: let the server cut the stream
                raise
            response = unexpected_error_response(Request(scope), exc)
            await response(scope, receive, send)


class RateLimitMiddleware:
    """Count each request against its user's (or address's) quota; 429 when it is spent."""

    def __init__(
        self, app: ASGIApp, limiter: RateLimiter, exempt: frozenset[str] = UNLIMITED_PATHS
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.exempt = exempt

    @staticmethod
    def _verifier(scope: Scope) -> JwtVerifier | None:
        resources = getattr(getattr(scope.get("app"), "state", None), "resources", None)
        return getattr(resources, "verifier", None)

    async def _principal(self, scope: Scope) -> Principal | None:
        """The caller's principal if the request carries a valid token; cached for the route."""
        authorization = Headers(scope=scope).get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        verifier = self._verifier(scope)
        if scheme.lower() != "bearer" or not token.strip() or verifier is None:
            return None
        try:
            principal = await verifier.averify(token.strip())
        except ApiError:
            return None  # the route's dependency answers the 401 with the precise reason
        scope.setdefault("state", {})["principal"] = principal
        return principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        principal = await self._principal(scope)
        if principal is not None:
            key = f"user:{principal.user_id}"
        else:
            client = scope.get("client")
            key = f"ip:{client[0] if client else 'unknown'}"
        decision = await self.limiter.hit(key)
        headers = decision.headers()
        if not decision.allowed:
            RATE_LIMITED.labels(key.partition(":")[0]).inc()
            await _send_problem(
                scope,
                receive,
                send,
                429,
                f"more than {decision.limit} requests in {decision.window_seconds} s; "
                f"retry in {headers['Retry-After']} s",
                headers=headers,
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                raw.extend((k.lower().encode(), v.encode()) for k, v in headers.items())
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyGuardMiddleware:
    """413 for bodies over the limit before they are parsed; 422 for NUL characters."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_body_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            await _send_problem(
                scope, receive, send, 422, "the path and query may not contain NUL characters"
            )
            return

        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if declared is not None:
            if not declared.isdigit():
                await _send_problem(scope, receive, send, 400, "Content-Length is not a number")
                return
            if int(declared) > self.max_body_bytes:
                await _send_problem(scope, receive, send, 413, self._too_large())
                return
        if not chunked and (declared is None or int(declared) == 0):
            await self.app(scope, receive, send)
            return

        # Read the (bounded) body here: counting what actually arrives also covers chunked
        # bodies, and the whole body is needed anyway to look for NUL before a parser does.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away; nobody is left to answer
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _send_problem(scope, receive, send, 413, self._too_large())
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if body_has_nul(body, headers.get("content-type", "")):
            await _send_problem(
                scope, receive, send, 422, "the request body may not contain NUL characters"
            )
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later messages: http.disconnect, for streaming routes

        await self.app(scope, replay, send)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, except that an origin that is not approved gets no ``Access-Control-*``
    header at all (Starlette still sends ``Allow-Credentials`` and ``Expose-Headers`` to it),
    and a refused preflight is a problem document rather than plain text."""

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if (
            message["type"] == "http.response.start"
            and origin is not None
            and not self.is_allowed_origin(origin)
        ):
            headers = MutableHeaders(scope=message)
            for name in {k for k in headers.keys() if k.lower().startswith("access-control-")}:
                del headers[name]
            headers.add_vary_header("Origin")
            await send(message)
            return
        await super().send(message, send, request_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                response: Response = self.preflight_response(request_headers=headers)
                if response.status_code >= 400:
                    reason = bytes(response.body).decode(errors="replace")
                    await _send_problem(
                        scope, receive, send, 400, reason, headers={"Vary": "Origin"}
                    )
                    return
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _close_on_shutdown(app: FastAPI, close: Callable[[], Awaitable[None]]) -> None:
    """Run ``close`` after the app's own lifespan, whoever drives it (uvicorn or a test)."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        try:
            async with inner(application) as state:
                yield state
        finally:
            await close()

    app.router.lifespan_context = lifespan


def install_edge(app: FastAPI, settings: Settings) -> RateLimiter:
    """Add the edge middleware to ``app``; call it *before* adding CORS (so CORS wraps it)."""
    limiter = RateLimiter(str(settings.redis_url), limit=settings.rate_limit_per_minute)
    app.state.rate_limiter = limiter
    # Starlette wraps in reverse order of addition: the first added runs innermost.
    app.add_middleware(BodyGuardMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RateLimitMiddleware, limiter=limiter)
    app.add_middleware(UnexpectedErrorMiddleware)
    _close_on_shutdown(app, limiter.aclose)
    return limiter
