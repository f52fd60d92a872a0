"""Calling Problem Bank, Eval and Tutor: failures classified for Temporal's retries.

- Connection errors, timeouts, 502/503/504, 408 and 429 are transient: they raise a
  retryable ``ApplicationError`` (429 with ``next_retry_delay`` from ``Retry-After``), and
  the caller's retry policy gives them its long budget.
- 500 and 501 say the upstream failed on *this* request (a learner's input can cause it):
  retryable too, but :func:`bound_server_errors` makes the activity give up after
  :data:`SERVER_ERROR_ATTEMPTS` attempts instead of re-running it for the whole budget.
- Other 4xx and malformed bodies cannot get better by retrying: non-retryable.

Error texts are bounded so an upstream's HTML error page never lands in history.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

from domain.contracts import FailureType
from domain.upstream import INTERNAL_TOKEN_HEADER

M = TypeVar("M", bound=BaseModel)

MAX_ERROR_CHARS = 300
MAX_RETRY_AFTER_SECONDS = 300.0
# Attempts of an activity (counted by Temporal, whatever failed before) after which an
# upstream's 500 is final.
SERVER_ERROR_ATTEMPTS = 3


class ErrorType:
    """The classes of upstream failure (names from ``domain.contracts.FailureType``)."""

    UNAVAILABLE = FailureType.UPSTREAM_UNAVAILABLE
    REJECTED = FailureType.UPSTREAM_REJECTED
    MALFORMED = FailureType.UPSTREAM_MALFORMED
    NOT_FOUND = FailureType.UPSTREAM_NOT_FOUND
    SERVER_ERROR = FailureType.UPSTREAM_SERVER_ERROR


def bounded(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP-date: let the retry policy's backoff decide
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def classify(service: str, response: httpx.Response) -> ApplicationError | None:
    """The error a non-2xx response stands for, or None for success."""
    if response.is_success:
        return None
    status = response.status_code
    summary = f"{service} answered {status}: {bounded(response.text)}"
    if status == 429:
        delay = retry_after_seconds(response.headers.get("retry-after"))
        return ApplicationError(
            summary,
            type=ErrorType.UNAVAILABLE,
            next_retry_delay=timedelta(seconds=delay) if delay is not None else None,
        )
    if status in (500, 501):
        return ApplicationError(summary, type=ErrorType.SERVER_ERROR)
    if status >= 500 or status == 408:
        return ApplicationError(summary, type=ErrorType.UNAVAILABLE)
    if status == 404:
        return ApplicationError(summary, type=ErrorType.NOT_FOUND, non_retryable=True)
    return ApplicationError(summary, type=ErrorType.REJECTED, non_retryable=True)


def bound_server_errors(
    error: ApplicationError, attempt: int, limit: int = SERVER_ERROR_ATTEMPTS
) -> ApplicationError:
    """The error to raise from attempt ``attempt``: a 500 becomes final at ``limit``.

    Decided inside the activity (``activity.info().attempt``) so that the workflow's retry
    policy, and so its command sequence, stay as they are.
    """
    if error.type != ErrorType.SERVER_ERROR or error.non_retryable or attempt < limit:
        return error
    return ApplicationError(
        f"{error.message} (final after {attempt} attempts)",
        type=ErrorType.SERVER_ERROR,
        non_retryable=True,
    )


class UpstreamClient:
    """One upstream service behind a shared ``httpx.AsyncClient``."""

    def __init__(self, http: httpx.AsyncClient, service: str, base_url: str, token: str) -> None:
        self._http = http
        self.service = service
        self._base = base_url.rstrip("/")
        self._headers = {INTERNAL_TOKEN_HEADER: token}

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: object | None = None,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method,
                self._base + path,
                json=json,
                headers={**self._headers, **(headers or {})},
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as exc:
            raise ApplicationError(
                f"{self.service} timed out: {type(exc).__name__}", type=ErrorType.UNAVAILABLE
            ) from None
        except httpx.TransportError as exc:
            raise ApplicationError(
                f"{self.service} unreachable: {bounded(str(exc)) or type(exc).__name__}",
                type=ErrorType.UNAVAILABLE,
            ) from None
        if (error := classify(self.service, response)) is not None:
            raise error
        return response

    async def call(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        json: object | None = None,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> M:
        response = await self.request(method, path, json=json, timeout=timeout, headers=headers)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ApplicationError(
                f"{self.service} sent a malformed {model.__name__}: {exc.error_count()} errors",
                type=ErrorType.MALFORMED,
                non_retryable=True,
            ) from None
