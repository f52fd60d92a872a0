"""The published contract: ``openapi/co.v1.yaml`` is what the app generates, and it describes
every response, errors included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI

from tests.support.edge import client_of
from tools import openapi as tool

METHODS = ("get", "put", "post", "delete", "patch")
PROBLEM = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    return tool.generate()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, item[method])
        for path, item in spec["paths"].items()
        for method in METHODS
        if method in item
    ]


def test_published_spec_is_what_the_app_generates(generated: dict[str, Any]) -> None:
    expected = tool.render(generated)
    current = tool.SPEC_PATH.read_text(encoding="utf-8") if tool.SPEC_PATH.exists() else ""
    if current != expected:
        pytest.fail(
            f"{tool.SPEC_PATH.relative_to(tool.ROOT)} is out of date; regenerate it with\n"
            f"    {tool.REGENERATE}\n\n{tool.diff(expected, current)[:6000]}",
            pytrace=False,
        )


def test_published_spec_is_valid_yaml_of_openapi_3_1() -> None:
    spec = yaml.safe_load(tool.SPEC_PATH.read_text(encoding="utf-8"))
    assert spec["openapi"].startswith("3.1")
    assert spec["paths"]


async def test_served_spec_does_not_depend_on_settings(
    app: FastAPI, generated: dict[str, Any]
) -> None:
    # The test app has other settings than the generator's placeholders: same document.
    async with client_of(app) as client:
        served = (await client.get("/openapi.json")).json()
    assert served == generated


def test_every_operation_documents_the_edge_errors(generated: dict[str, Any]) -> None:
    missing: list[str] = []
    for method, path, operation in operations(generated):
        wanted = {"422", "500"}
        if operation.get("security"):
            wanted |= {"401", "429"}
        if "requestBody" in operation:
            wanted.add("413")
        if "{" in path:
            wanted.add("404")
        absent = wanted - set(operation["responses"])
        if absent:
            missing.append(f"{method} {path}: {sorted(absent)}")
    assert not missing, "\n".join(missing)


def test_errors_are_problem_json_only(generated: dict[str, Any]) -> None:
    for method, path, operation in operations(generated):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                assert response["content"] == {
                    "application/problem+json": {"schema": PROBLEM}
                }, f"{method} {path} {status}"
    assert "HTTPValidationError" not in generated["components"]["schemas"]


def test_every_api_operation_is_secured_by_bearer_jwt(generated: dict[str, Any]) -> None:
    scheme = generated["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme == scheme | {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for method, path, operation in operations(generated):
        if path.startswith("/v1/"):
            assert operation.get("security") == [{"HTTPBearer": []}], f"{method} {path}"


def test_rate_limit_and_auth_headers_are_documented(generated: dict[str, Any]) -> None:
    _, _, operation = next(o for o in operations(generated) if o[1] == "/v1/tracks")
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(
        operation["responses"]["429"]["headers"]
    )
    assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
    assert "X-RateLimit-Remaining" in operation["responses"]["200"]["headers"]


def test_check_command_fails_on_a_stale_file_and_says_how_to_fix_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "co.v1.yaml"
    stale.write_text("openapi: 3.1.0\n", encoding="utf-8")
    assert tool.main(["check", "--path", str(stale)]) == 1
    assert "make openapi" in capsys.readouterr().err
    assert tool.main(["write", "--path", str(stale)]) == 0
    assert tool.main(["check", "--path", str(stale)]) == 0
