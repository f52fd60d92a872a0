"""The problem+json writer and the edge's small pure helpers, on a bare app (no services)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Query
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError

from api.errors import (
    PROBLEM_JSON,
    TYPE_BASE,
    Conflict,
    NotFound,
    Problem,
    install_error_handlers,
    problem_responses,
)
from api.middleware import BodyGuardMiddleware, UnexpectedErrorMiddleware, body_has_nul


class Payload(BaseModel):
    name: str


class PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("boom")
        self.sqlstate = sqlstate


def bare_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodyGuardMiddleware, max_body_bytes=1024)
    app.add_middleware(UnexpectedErrorMiddleware)

    @app.get("/things/{thing_id}")
    async def get_thing(thing_id: int, size: int = Query(default=1, le=10)) -> dict[str, int]:
        if thing_id == 404:
            raise NotFound("no thing 404")
        if thing_id == 409:
            raise Conflict("thing 409 is busy")
        if thing_id == 500:
            raise RuntimeError("password=hunter2 at db.internal:5432")
        if thing_id in (22021, 23505):
            raise DBAPIError("INSERT ...", {"secret": "x"}, PgError(str(thing_id)))
        return {"id": thing_id, "size": size}

    @app.post("/things")
    async def post_thing(body: Payload) -> Payload:
        return body

    return app


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=bare_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    Problem.model_validate(body)
    assert body["type"] == TYPE_BASE + slug
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return dict(body)


async def test_api_errors_keep_their_type_and_detail(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/things/404"), 404, "not-found")
    assert body["detail"] == "no thing 404"
    assert body["instance"] == "/things/404"
    assert_problem(await client.get("/things/409"), 409, "conflict")


async def test_unknown_route_is_a_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/nowhere"), 404, "not-found")
    assert "/nowhere" in str(body["detail"])


async def test_wrong_method_is_a_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/things/1")
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET"


async def test_validation_errors_are_problems_without_echoing_input(
    client: httpx.AsyncClient,
) -> None:
    body = assert_problem(await client.get("/things/abc?size=99"), 422, "validation-error")
    errors = body["errors"]
    assert isinstance(errors, list)
    assert {e["loc"][-1] for e in errors} == {"thing_id", "size"}
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)
    assert "abc" not in str(errors)


async def test_malformed_json_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/things", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation-error")


async def test_unexpected_exception_is_a_500_without_internals(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("ERROR", logger="co.api.errors"):
        response = await client.get("/things/500")
    body = assert_problem(response, 500, "internal")
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert body["detail"] == "An unexpected error occurred; quote the request id when reporting it."
    assert any(r.exc_info and "hunter2" in str(r.exc_info[1]) for r in caplog.records)


async def test_nul_refused_by_postgres_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/things/22021")
    assert_problem(response, 422, "validation-error")
    assert "secret" not in response.text


async def test_other_database_errors_are_a_bare_500(client: httpx.AsyncClient) -> None:
    response = await client.get("/things/23505")
    assert_problem(response, 500, "internal")
    assert "INSERT" not in response.text


def test_problem_responses_document_problem_json() -> None:
    documented = problem_responses(401, 404)
    assert set(documented) == {401, 404}
    assert documented[404]["content"][PROBLEM_JSON]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b'{"a": "x\\u0000y"}', "application/json", True),
        (b'{"a\\u0000": 1}', "application/json", True),
        (b'{"a": "\\\\\\u0000"}', "application/json; charset=utf-8", True),
        (b'{"a": "\\\\u0000"}', "application/json", False),  # an escaped backslash, then text
        (b'{"a": "\\\\\\\\u0000"}', "application/json", False),
        (b'{"a": "x\x00"}', "application/json", True),
        ('{"a": "x"}'.encode("utf-16"), "application/json", True),
        (b'{"a": "\\u00000"}', "application/problem+json", True),
        (b'{"a": "\\u0001"}', "application/json", False),
        (b"name=a%00b", "application/x-www-form-urlencoded", True),
        (b"name=a%2500b", "application/x-www-form-urlencoded", False),
        (b"hello\x00", "text/plain", True),
        (b"\x00\x01binary", "application/octet-stream", False),
        (b"\x00\x01binary", "", False),
    ],
)
def test_body_has_nul(body: bytes, content_type: str, expected: bool) -> None:
    assert body_has_nul(body, content_type) is expected
