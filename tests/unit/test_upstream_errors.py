"""Failure classification of upstream calls (mock transports: error handling only)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.upstream import (
    SERVER_ERROR_ATTEMPTS,
    ErrorType,
    UpstreamClient,
    bound_server_errors,
)
from domain.upstream import ProblemPublic


def client_answering(handler: httpx.MockTransport) -> UpstreamClient:
    http = httpx.AsyncClient(transport=handler)
    return UpstreamClient(http, "Eval", "http://eval.test", "token-123456")


async def _call(status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
    transport = httpx.MockTransport(
        lambda _request: httpx.Response(status, content=body, headers=headers or {})
    )
    await client_answering(transport).call("GET", "/x", ProblemPublic)


@pytest.mark.parametrize("status", [502, 503, 504, 408])
async def test_unavailable_is_retryable_with_the_long_budget(status: int) -> None:
    with pytest.raises(ApplicationError) as err:
        await _call(status)
    assert not err.value.non_retryable
    assert err.value.type == ErrorType.UNAVAILABLE
    assert bound_server_errors(err.value, attempt=50) is err.value  # never made final


@pytest.mark.parametrize("status", [500, 501])
async def test_a_server_error_is_retried_a_few_times_then_final(status: int) -> None:
    with pytest.raises(ApplicationError) as err:
        await _call(status)
    assert err.value.type == ErrorType.SERVER_ERROR
    assert not err.value.non_retryable
    for attempt in range(1, SERVER_ERROR_ATTEMPTS):
        assert not bound_server_errors(err.value, attempt).non_retryable
    final = bound_server_errors(err.value, SERVER_ERROR_ATTEMPTS)
    assert final.non_retryable
    assert final.type == ErrorType.SERVER_ERROR
    assert f"Eval answered {status}" in final.message


async def test_429_honours_retry_after() -> None:
    with pytest.raises(ApplicationError) as err:
        await _call(429, headers={"Retry-After": "7"})
    assert not err.value.non_retryable
    assert err.value.next_retry_delay == timedelta(seconds=7)


@pytest.mark.parametrize("status", [400, 401, 403, 409, 422])
async def test_4xx_is_not_retryable(status: int) -> None:
    with pytest.raises(ApplicationError) as err:
        await _call(status)
    assert err.value.non_retryable


async def test_malformed_body_is_not_retryable() -> None:
    with pytest.raises(ApplicationError) as err:
        await _call(200, b'{"not": "a problem"}')
    assert err.value.non_retryable
    assert err.value.type == ErrorType.MALFORMED


async def test_connection_errors_are_retryable_and_bounded() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused " + "x" * 5000)

    with pytest.raises(ApplicationError) as err:
        await client_answering(httpx.MockTransport(refuse)).call("GET", "/x", ProblemPublic)
    assert not err.value.non_retryable
    assert len(str(err.value)) < 400


async def test_error_pages_are_truncated() -> None:
    with pytest.raises(ApplicationError) as err:
        await _call(502, b"<html>" + b"x" * 100_000)
    assert len(str(err.value)) < 400


async def test_internal_token_is_sent() -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.headers)
        return httpx.Response(503)

    with pytest.raises(ApplicationError):
        await client_answering(httpx.MockTransport(handler)).call("GET", "/x", ProblemPublic)
    assert seen["x-internal-token"] == "token-123456"
