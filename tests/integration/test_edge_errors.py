"""Every error is application/problem+json with a request id: 404, 405, 413 (before parsing),
422 (validation, NUL text), 500 (no internals; the id is in the log line)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from domain.settings import Settings
from tests.support.edge import assert_problem, client_of, new_app, running_app

MAX_BODY = 4096


class Note(BaseModel):
    text: str


@pytest.fixture(scope="module")
async def edge_app(make_settings: Callable[..., Settings]) -> AsyncIterator[FastAPI]:
    app = new_app(make_settings(max_body_bytes=MAX_BODY))
    app.state.reached = []

    @app.get("/__test__/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("connection to db.internal:5432 failed, password=hunter2")

    @app.post("/__test__/echo", include_in_schema=False)
    async def echo(request: Request) -> dict[str, int]:
        app.state.reached.append(request.url.path)
        return {"length": len(await request.body())}

    @app.post("/__test__/note", include_in_schema=False)
    async def note(body: Note) -> Note:
        app.state.reached.append("note")
        return body

    async with running_app(app) as started:
        yield started


@pytest.fixture
async def client(edge_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    edge_app.state.reached.clear()
    async with client_of(edge_app) as c:
        yield c


@pytest.fixture
def auth(token_for: Callable[..., str], user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user_id)}"}


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404)


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.delete("/v1/tracks", headers=auth)
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_validation_error_is_422_problem(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = assert_problem(await client.get("/v1/tracks?domain=astrology", headers=auth), 422)
    assert body["type"] == "https://co.scimigo.com/problems/validation-error"
    assert body["errors"]


async def test_incoming_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here", headers={"X-Request-ID": "req-1234567890"})
    assert assert_problem(response, 404)["request_id"] == "req-1234567890"


async def test_unexpected_exception_is_500_without_internals_and_logged_with_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await client.get("/__test__/boom")
    body = assert_problem(response, 500)
    for secret in ("hunter2", "db.internal", "RuntimeError", "Traceback"):
        assert secret not in response.text
    assert "request id" in str(body["detail"])
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert logged, caplog.text
    assert getattr(logged[-1], "request_id", None) == response.headers["x-request-id"]
    assert logged[-1].exc_info is not None  # the traceback is in the log, not the body


async def test_declared_oversized_body_is_413_before_the_route(
    edge_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post("/__test__/echo", content=b"x" * (MAX_BODY + 1))
    assert_problem(response, 413)
    assert edge_app.state.reached == []


async def test_streamed_oversized_body_is_413_without_reading_it_all(
    edge_app: FastAPI,
    client: httpx.AsyncClient,
) -> None:
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(100):  # 100 KiB, no Content-Length: chunked
            sent.append(i)
            yield b"y" * 1024

    response = await client.post("/__test__/echo", content=chunks())
    assert_problem(response, 413)
    assert len(sent) <= MAX_BODY // 1024 + 2  # it stopped reading at the limit
    assert edge_app.state.reached == []


async def test_streamed_body_under_the_limit_reaches_the_route(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"z" * 1000

    response = await client.post("/__test__/echo", content=chunks())
    assert response.status_code == 200
    assert response.json() == {"length": 3000}


async def test_body_at_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/__test__/echo", content=b"x" * MAX_BODY)
    assert response.json() == {"length": MAX_BODY}


async def test_oversized_submission_is_413(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = {"problem_id": "p", "code": "x" * (MAX_BODY * 2)}
    assert_problem(await client.post("/v1/submissions", json=body, headers=auth), 413)


@pytest.mark.parametrize(
    "payload",
    [{"text": "a\u0000b"}, {"text\u0000": "a"}, {"text": "ok", "extra": ["\u0000"]}],
    ids=["value", "key", "nested"],
)
async def test_nul_in_json_is_422_before_the_route(
    edge_app: FastAPI, client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    response = await client.post("/__test__/note", json=payload)
    assert "NUL" in str(assert_problem(response, 422)["detail"])
    assert edge_app.state.reached == []


async def test_nul_in_a_real_route_body_is_422(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = {"problem_id": "p\u0000", "answer": "42"}
    assert_problem(await client.post("/v1/submissions", json=body, headers=auth), 422)


async def test_escaped_backslash_u0000_is_just_text(client: httpx.AsyncClient) -> None:
    response = await client.post("/__test__/note", json={"text": "\\u0000"})
    assert response.status_code == 200
    assert response.json() == {"text": "\\u0000"}


async def test_nul_in_query_or_path_is_422(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    assert_problem(await client.get("/v1/tracks?domain=%00", headers=auth), 422)
    assert_problem(await client.get("/v1/tracks/ab%00c", headers=auth), 422)
    assert_problem(await client.get("/v1/submissions?cursor=a%00", headers=auth), 422)
