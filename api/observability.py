"""What the API tells operators: Prometheus metrics and one log line per request.

- ``RequestObservabilityMiddleware`` (pure ASGI, the outermost layer) gives every request
  its id (``X-Request-ID``, bound to the log context), counts it and times it by *route
  template* and status, and writes one ``request`` log line with the request id, user,
  route, status and latency.
- The metrics are served by ``MetricsServer`` on a port of its own
  (``CO_METRICS_HOST``:``CO_API_METRICS_PORT``), not on the public listener: the ALB
  forwards only the API port, so the series (routes, users' traffic shape) never reach the
  internet, scrapes need no JWT, and they are neither rate limited nor counted as traffic.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import Counter, Gauge, Histogram, start_http_server
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("co.api.request")

# Module-level: the default registry is process-wide, so several apps in one process (the
# tests) share these series instead of registering them twice.
REQUESTS = Counter(
    "co_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "co_http_request_duration_seconds",
    "Time from the request to the end of the response (for SSE: the whole stream).",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RATE_LIMITED = Counter(
    "co_rate_limit_rejections_total",
    "Requests refused with 429 by the per-user rate limit, by key kind (user or ip).",
    ["key"],
)
SSE_OPEN = Gauge("co_sse_open_streams", "SSE streams open in this API process.")
SSE_SLOTS = Counter(
    "co_sse_slot_acquisitions_total",
    "Attempts to take an SSE slot lease, by outcome (granted or refused).",
    ["outcome"],
)
SSE_LEASES = Gauge("co_sse_slot_leases_held", "SSE slot leases held by this API process.")
SUBMISSIONS = Counter(
    "co_submissions_total",
    "Submissions answered by POST /v1/submissions, by verdict ('pending' when the answer "
    "came before the verdict; the worker counts every verdict in co_submission_verdicts).",
    ["verdict"],
)

UNMATCHED = "<unmatched>"


def route_template(scope: Scope) -> str:
    """``/v1/sessions/{session_id}`` rather than the path: bounded label values."""
    path: object = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    # Answered before routing (429, 413, a 401 from the edge): find the route it was for
    # among the published paths (FastAPI's included routers are not plain route lists).
    app = scope.get("app")
    if app is None or not hasattr(app, "openapi"):
        return UNMATCHED
    table: list[tuple[re.Pattern[str], str]] | None = getattr(app.state, "route_templates", None)
    if table is None:
        table = [
            (re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$"), path)
            for path in sorted(app.openapi().get("paths", {}), key=lambda p: (p.count("{"), p))
        ]
        app.state.route_templates = table
    for pattern, template in table:
        if pattern.match(scope["path"]):
            return template
    return UNMATCHED


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            incoming = bytes(value).decode("latin-1")
            if 8 <= len(incoming) <= 64 and incoming.isascii() and incoming.isprintable():
                return incoming
            break
    # A request id must be unique, not secret: Python's generator (seeded from the OS once)
    # instead of ``uuid4``, whose ``os.urandom`` is a system call on every request.
    return f"{_ids.getrandbits(128):032x}"


_ids = random.Random()


class _Series:
    """``labels(...)`` children by label values, found with one dict lookup: prometheus
    client's ``labels`` takes a lock and validates on every call (two per request)."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: str, elapsed: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (REQUESTS.labels(*key), LATENCY.labels(*key))
            self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)


_series = _Series()


class RequestObservabilityMiddleware:
    """Request id, metrics and the access log line, for every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=rid):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                method = scope["method"]
                route = route_template(scope)
                _series.observe(method, route, str(status), elapsed)
                principal = scope.get("state", {}).get("principal")
                log.info(
                    "request",
                    extra={
                        "method": method,
                        "route": route,
                        "path": scope["path"],
                        "status": status,
                        "latency_ms": round(elapsed * 1000, 1),
                        "user_id": getattr(principal, "user_id", None),
                    },
                )


class MetricsServer:
    """prometheus-client's HTTP exposition on its own port, for the life of the app."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.port == 0:
            return
        self._server, self._thread = start_http_server(self.port, addr=self.host)
        log.info("metrics served", extra={"url": f"http://{self.host}:{self.port}/metrics"})

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
