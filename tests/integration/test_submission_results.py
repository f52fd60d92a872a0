"""Results that say what happened: answers without test counts, real timings, and a
submission that shows its evaluation being retried while Eval fails."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
from temporalio.client import Client

from devservices.testing import serve
from domain.settings import Settings
from tests.conftest import DevServices, Stack, isolated_stack
from tests.support import FaultyProxy, eventually

SUM_OK = "def sum_evens(xs):\n    return sum(x for x in xs if x % 2 == 0)\n"
WAIT = {"Prefer": "wait=30"}


async def _poll(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    path: str,
    ready: Callable[[dict[str, Any]], bool],
    seconds: float = 30,
) -> dict[str, Any]:
    body: dict[str, Any] = {}

    async def there() -> bool:
        body.clear()
        body.update((await client.get(path, headers=headers)).json())
        return ready(body)

    await eventually(there, timeout=seconds, failure=lambda: f"{path} never got there: {body}")
    return body


async def test_an_answer_result_has_no_test_counts_and_real_timings(
    stack: Stack, auth: dict[str, str], bundle_of: Callable[[str], Awaitable[dict[str, Any]]]
) -> None:
    client = stack.client
    right = (await bundle_of("math-derivative-power"))["expected_answer"]
    r = await client.post(
        "/v1/submissions",
        json={"problem_id": "math-derivative-power", "answer": right},
        headers={**auth, **WAIT},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    result = body["result"]
    assert (result["verdict"], result["passed"], result["total"]) == ("accepted", None, None)
    assert result["tests"] == []
    assert "test" not in result["message"].lower()
    assert result["time_ms"] >= 1
    assert body["duration_ms"] >= result["time_ms"]
    assert body["evaluation"] is None
    assert body["links"]["problem"] == "/v1/problems/math-derivative-power"

    code = await client.post(
        "/v1/submissions",
        json={"problem_id": "py-sum-evens", "language": "python", "code": SUM_OK},
        headers={**auth, **WAIT},
    )
    counted = code.json()["result"]
    assert counted["passed"] == counted["total"] >= 1
    assert counted["time_ms"] >= 1


async def test_a_submission_shows_its_evaluation_being_retried(
    stack: Stack,
    make_settings: Callable[..., Settings],
    temporal_client: Client,
    devservices: DevServices,
    auth: dict[str, str],
) -> None:
    async with AsyncExitStack() as es:
        proxy = FaultyProxy(devservices.eval, [503, 503])
        url = await es.enter_async_context(serve(proxy))
        iso = await es.enter_async_context(
            isolated_stack(make_settings, temporal_client, devservices, eval_base=url)
        )
        r = await iso.client.post(
            "/v1/submissions",
            json={"problem_id": "py-sum-evens", "language": "python", "code": SUM_OK},
            headers=auth,
        )
        assert r.status_code == 202, r.text
        assert r.headers["retry-after"] == "1"
        path = r.headers["location"]
        retried = await _poll(
            iso.client,
            auth,
            path,
            lambda s: (s["evaluation"] or {}).get("attempt", 0) >= 2,
        )
        assert retried["status"] == "running"
        assert retried["evaluation"]["retrying"] is True
        assert retried["evaluation"]["last_failure"] == "eval_unavailable"
        assert "503" not in json.dumps(retried)  # a class, never upstream internals
        done = await _poll(iso.client, auth, path, lambda s: s["status"] == "completed")
        assert done["verdict"] == "accepted"
        assert done["evaluation"] is None
        assert proxy.forwarded == 1
