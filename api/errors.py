"""One error hierarchy and one handler that writes ``application/problem+json`` (RFC 9457).

Services raise ``ApiError`` subclasses; nothing raises ``HTTPException``. Every
problem carries the request id that also appears in the logs.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.outage import DEPENDENCY_ERRORS, failed_dependency

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://co.scimigo.com/problems/"

log = logging.getLogger("co.api.errors")


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=[TYPE_BASE + "not-found"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Field-level problems of a validation error."
    )


class ApiError(Exception):
    """Base of every error the API answers on purpose."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.errors = errors


class Unauthorized(ApiError):
    """401 with an RFC 6750 challenge; ``error=None`` when no credentials were sent at all."""

    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        challenge = 'Bearer realm="co"'
        if error:
            challenge += f', error="{error}", error_description="{_header_safe(detail)}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(ApiError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(ApiError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ApiError):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(ApiError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class Unprocessable(ApiError):
    status, slug, title = 422, "validation-error", "The request is not valid"


class TooManyRequests(ApiError):
    status, slug, title = 429, "too-many-requests", "Too many requests"


class ServiceUnavailable(ApiError):
    status, slug, title = 503, "unavailable", "Service unavailable"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        # Every 503 says when to come back, as the dependency-unavailable ones do.
        super().__init__(
            detail, headers={"Retry-After": str(DEPENDENCY_RETRY_AFTER_SECONDS), **(headers or {})}
        )


_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    410: ("gone", "Gone"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "The request is not valid"),
    429: ("too-many-requests", "Too many requests"),
    500: ("internal", "Internal error"),
    503: ("unavailable", "Service unavailable"),
}


def status_title(status: int) -> str:
    """The stable title of a status, as problem documents and the spec use it."""
    return _STATUS_SLUGS.get(status, ("error", "Error"))[1]


def _header_safe(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and c not in '"\\')[:200]


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    default_slug, default_title = _STATUS_SLUGS.get(status, ("error", "Error"))
    body = Problem(
        type=TYPE_BASE + (slug or default_slug),
        title=title or default_title,
        status=status,
        detail=detail,
        instance=request.url.path,
        request_id=request_id_of(request),
        errors=errors,
    )
    hdrs = dict(headers or {})
    if rid := request_id_of(request):
        hdrs["X-Request-ID"] = rid
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        headers=hdrs,
        media_type=PROBLEM_JSON,
    )


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Field errors without echoing the submitted input back (it may be huge or secret)."""
    out = []
    for err in exc.errors():
        out.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Route every error, expected or not, through the problem+json writer."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return problem_response(
            request,
            exc.status,
            exc.detail,
            slug=exc.slug,
            title=exc.title,
            headers=exc.headers,
            errors=exc.errors,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _clean_validation_errors(exc)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"]) or "request"
        return problem_response(request, 422, f"{where}: {first['msg']}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route for {request.url.path}"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem_response(request, exc.status_code, detail, headers=dict(exc.headers or {}))

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # Text PostgreSQL cannot store (NUL, bad encodings) is the client's fault, not ours:
        # the edge middleware refuses NUL up front, this catches whatever slips past it.
        if getattr(exc.orig, "sqlstate", None) in _TEXT_SQLSTATES:
            return problem_response(request, 422, "text may not contain NUL characters")
        return unexpected_error_response(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_error_response(request, exc)

    # An outage of PostgreSQL, Redis or Temporal is a 503 naming it (handled here, inside
    # the app, so that it is not re-raised to the server as a crash).
    for error in DEPENDENCY_ERRORS:
        app.add_exception_handler(error, _unexpected)


DEPENDENCY_RETRY_AFTER_SECONDS = 5
DEPENDENCY_SLUG, DEPENDENCY_TITLE = "dependency-unavailable", "A dependency is down"


def dependency_unavailable_response(
    request: Request, dependency: str, exc: BaseException
) -> JSONResponse:
    """503 ``dependency-unavailable`` naming ``dependency``: the learner retries later."""
    log.warning(
        "dependency unavailable",
        extra={
            "request_id": request_id_of(request),
            "path": request.url.path,
            "dependency": dependency,
            "error": type(exc).__name__,
        },
    )
    return problem_response(
        request,
        503,
        f"{dependency} cannot be reached right now; retry later",
        slug=DEPENDENCY_SLUG,
        title=DEPENDENCY_TITLE,
        headers={"Retry-After": str(DEPENDENCY_RETRY_AFTER_SECONDS)},
    )


# character_not_in_repertoire (how PostgreSQL refuses NUL in text), untranslatable_character
_TEXT_SQLSTATES = frozenset({"22021", "22P05"})

UNEXPECTED_DETAIL = "An unexpected error occurred; quote the request id when reporting it."


def unexpected_error_response(request: Request, exc: BaseException) -> JSONResponse:
    """Log ``exc`` with its traceback and the request id; answer a bare 500 problem.

    The client gets neither the traceback nor the exception's text: both may hold
    internals (SQL, hostnames, secrets).
    """
    if (dependency := failed_dependency(exc)) is not None:
        return dependency_unavailable_response(request, dependency, exc)
    log.error(
        "unhandled error",
        exc_info=exc,
        extra={"request_id": request_id_of(request), "path": request.url.path},
    )
    return problem_response(request, 500, UNEXPECTED_DETAIL)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry that documents problem+json errors of a route."""
    return {
        s: {
            "model": Problem,
            "description": status_title(s),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }
