"""Submitting through the API and waiting for the verdict (the submission tests and the
resilience tests around them)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.polling import eventually

CODE_PROBLEM = "py-sum-evens"  # python: def sum_evens(numbers)

WAIT = {"Prefer": "wait=30"}


async def submit(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    body: dict[str, Any],
    *,
    wait: bool = True,
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    h = {**headers, **(WAIT if wait else {}), **(extra or {})}
    return await client.post("/v1/submissions", json=body, headers=h)


async def finished(client: httpx.AsyncClient, headers: dict[str, str], sid: str) -> dict[str, Any]:
    body: dict[str, Any] = {}

    async def done() -> bool:
        r = await client.get(f"/v1/submissions/{sid}", headers=headers)
        assert r.status_code == 200, r.text
        body.update(r.json())
        return body["status"] in ("completed", "failed")

    await eventually(done, timeout=30, every=0.1, failure=lambda: f"{sid} did not finish: {body}")
    return body


def code_body(code: str, problem: str = CODE_PROBLEM) -> dict[str, Any]:
    return {"problem_id": problem, "language": "python", "code": code}


SUM_OK = "def sum_evens(xs):\n    return sum(x for x in xs if x % 2 == 0)\n"
# The body of a correct sum_evens, after a first line of a test's own.
RIGHT = "    return sum(x for x in xs if x % 2 == 0)\n"
