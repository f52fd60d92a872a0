"""Submissions through the real path:
API -> Temporal -> activities -> dev services -> PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from store.models import Result, Submission
from tests.conftest import Stack
from tests.support.submissions import CODE_PROBLEM, RIGHT, SUM_OK, code_body, finished, submit

MATH_EXPR_PROBLEM = "math-derivative-product"  # d/dx x^2 sin(x)
NUMERIC_PROBLEM = "math-definite-integral"  # numeric with tolerance
SYSTEMS_CHOICE_PROBLEM = "sys-tcp-handshake"  # multiple choice
SYSTEMS_NUMERIC_PROBLEM = "sys-amdahl-speedup"
SYSTEMS_CODE_PROBLEM = "sys-lru-eviction-order"

CODE_VERDICTS = [
    (SUM_OK, "accepted"),
    ("def sum_evens(xs):\n    return 0\n", "wrong_answer"),
    ("def sum_evens(xs):\n    while True:\n        pass\n", "time_limit_exceeded"),
    (
        "def sum_evens(xs):\n    a = bytearray(2 * 1024 ** 3)\n    return len(a)\n",
        "memory_limit_exceeded",
    ),
    ("def sum_evens(xs):\n    return xs[10 ** 9]\n", "runtime_error"),
    ("def sum_evens(xs)\n    return 1\n", "compile_error"),
]


@pytest.mark.parametrize(("code", "verdict"), CODE_VERDICTS, ids=[v for _, v in CODE_VERDICTS])
async def test_code_verdicts(stack: Stack, auth: dict[str, str], code: str, verdict: str) -> None:
    r = await submit(stack.client, auth, code_body(code))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed"
    assert body["verdict"] == verdict, body["result"]["message"]
    assert body["result"]["verdict"] == verdict
    assert r.headers["location"] == f"/v1/submissions/{body['id']}"


ANSWER_VERDICTS = [
    (MATH_EXPR_PROBLEM, "2*x*sin(x) + x^2*cos(x)", "accepted"),
    (MATH_EXPR_PROBLEM, "x*(2*sin(x) + x*cos(x))", "accepted"),
    (MATH_EXPR_PROBLEM, "2*x*cos(x)", "wrong_answer"),
    (MATH_EXPR_PROBLEM, "2*x*sin(x +", "invalid_answer"),
    (MATH_EXPR_PROBLEM, "__import__('os').system('true')", "invalid_answer"),
    (MATH_EXPR_PROBLEM, "9**9**9**9", "invalid_answer"),
    (SYSTEMS_CHOICE_PROBLEM, "zz-not-a-choice", "invalid_answer"),
    (SYSTEMS_NUMERIC_PROBLEM, "not a number", "invalid_answer"),
]


@pytest.mark.parametrize(
    ("problem", "answer", "verdict"),
    ANSWER_VERDICTS,
    ids=[f"{p}-{v}" for p, _, v in ANSWER_VERDICTS],
)
async def test_answer_verdicts(
    stack: Stack, auth: dict[str, str], problem: str, answer: str, verdict: str
) -> None:
    r = await submit(stack.client, auth, {"problem_id": problem, "answer": answer})
    assert r.status_code == 200, r.text
    assert r.json()["verdict"] == verdict, r.json()["result"]


async def test_reference_answers_of_answer_problems_are_accepted(
    stack: Stack, auth: dict[str, str], bundle_of: Callable[[str], Awaitable[dict[str, Any]]]
) -> None:
    for problem in (NUMERIC_PROBLEM, SYSTEMS_CHOICE_PROBLEM, SYSTEMS_NUMERIC_PROBLEM):
        answer = str((await bundle_of(problem))["expected_answer"])
        r = await submit(stack.client, auth, {"problem_id": problem, "answer": answer})
        assert r.json()["verdict"] == "accepted", (problem, r.json()["result"])


async def test_systems_code_problem_reference_solution_is_accepted(
    stack: Stack, auth: dict[str, str], bundle_of: Callable[[str], Awaitable[dict[str, Any]]]
) -> None:
    code = (await bundle_of(SYSTEMS_CODE_PROBLEM))["reference_solution"]
    r = await submit(stack.client, auth, code_body(code, SYSTEMS_CODE_PROBLEM))
    assert r.json()["verdict"] == "accepted", r.json()["result"]


async def test_without_prefer_the_post_answers_202_and_the_verdict_arrives(
    stack: Stack, auth: dict[str, str]
) -> None:
    r = await submit(stack.client, auth, code_body(SUM_OK), wait=False)
    assert r.status_code == 202
    assert r.json()["status"] in ("queued", "running", "completed")
    done = await finished(stack.client, auth, r.json()["id"])
    assert done["verdict"] == "accepted"
    assert done["result"]["passed"] == done["result"]["total"] > 0


async def test_duplicate_idempotency_key_gives_one_submission_and_one_workflow(
    stack: Stack, auth: dict[str, str], user_id: str
) -> None:
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    responses = await asyncio.gather(
        *(submit(stack.client, auth, code_body(SUM_OK), wait=False, extra=key) for _ in range(5))
    )
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1, [r.text for r in responses]
    sid = ids.pop()
    await finished(stack.client, auth, sid)
    again = await submit(stack.client, auth, code_body(SUM_OK), wait=False, extra=key)
    assert again.status_code == 200
    assert again.json()["id"] == sid
    sm = stack.app.state.resources.sessionmaker
    async with sm() as db:
        n_subs = await db.scalar(select(func.count()).where(Submission.user_id == user_id))
        n_results = await db.scalar(
            select(func.count()).select_from(Result).where(Result.submission_id == uuid.UUID(sid))
        )
    assert (n_subs, n_results) == (1, 1)
    runs = [w async for w in stack.temporal.list_workflows(f"WorkflowId = 'submission-{sid}'")]
    assert len(runs) == 1


async def test_same_key_with_another_body_is_refused(stack: Stack, auth: dict[str, str]) -> None:
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await submit(stack.client, auth, code_body(SUM_OK), wait=False, extra=key)
    assert first.status_code in (200, 202)
    other = await submit(stack.client, auth, code_body("def sum_evens(xs): return 1"), extra=key)
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert "Idempotency-Key" in other.json()["detail"]


async def test_unknown_problem_is_404(stack: Stack, auth: dict[str, str]) -> None:
    r = await submit(stack.client, auth, {"problem_id": "no-such-problem", "answer": "1"})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_oversized_code_and_answer_are_413(stack: Stack, auth: dict[str, str]) -> None:
    big_code = (
        "# " + "x" * (64 * 1024) + "\ndef sum_evens(xs): return sum(x for x in xs if x % 2 == 0)\n"
    )
    r = await submit(stack.client, auth, code_body(big_code), wait=False)
    assert r.status_code == 413, r.text
    r = await submit(
        stack.client, auth, {"problem_id": MATH_EXPR_PROBLEM, "answer": "x+" * 2100 + "x"}
    )
    assert r.status_code == 413


async def test_missing_or_mismatched_fields_are_422(stack: Stack, auth: dict[str, str]) -> None:
    r = await submit(stack.client, auth, {"problem_id": CODE_PROBLEM, "answer": "3"}, wait=False)
    assert r.status_code == 422
    r = await submit(stack.client, auth, {"problem_id": MATH_EXPR_PROBLEM, "code": "x"})
    assert r.status_code == 422
    r = await submit(stack.client, auth, {"problem_id": CODE_PROBLEM, "code": SUM_OK, "x": 1})
    assert r.status_code == 422


async def test_another_users_submission_is_404_and_not_listed(
    stack: Stack, auth: dict[str, str], token_for: Callable[..., str]
) -> None:
    r = await submit(stack.client, auth, code_body(SUM_OK))
    sid = r.json()["id"]
    other = {"Authorization": f"Bearer {token_for('someone-else-' + uuid.uuid4().hex[:6])}"}
    r = await stack.client.get(f"/v1/submissions/{sid}", headers=other)
    assert r.status_code == 404
    assert "sum" not in r.text
    listing = await stack.client.get("/v1/submissions", headers=other)
    assert listing.status_code == 200
    assert listing.json()["items"] == []


async def test_listing_is_newest_first_filtered_and_paginated(
    stack: Stack, auth: dict[str, str]
) -> None:
    ids = []
    for _ in range(3):
        ids.append((await submit(stack.client, auth, code_body(SUM_OK), wait=False)).json()["id"])
    await submit(stack.client, auth, {"problem_id": MATH_EXPR_PROBLEM, "answer": "1"}, wait=False)
    page1 = await stack.client.get(
        "/v1/submissions", params={"problem_id": CODE_PROBLEM, "limit": 2}, headers=auth
    )
    assert page1.status_code == 200
    body = page1.json()
    assert [i["id"] for i in body["items"]] == ids[::-1][:2]
    page2 = await stack.client.get(
        "/v1/submissions",
        params={"problem_id": CODE_PROBLEM, "limit": 2, "cursor": body["next_cursor"]},
        headers=auth,
    )
    assert [i["id"] for i in page2.json()["items"]] == ids[:1]
    assert page2.json()["next_cursor"] is None
    bad = await stack.client.get("/v1/submissions", params={"cursor": "!!"}, headers=auth)
    assert bad.status_code == 422


# Each would be accepted if the escape worked, so "not accepted" means contained.
SANDBOX_ESCAPES = {
    "fork_bomb": "import os\ndef sum_evens(xs):\n    while True:\n        os.fork()\n",
    "memory_hog": (
        "def sum_evens(xs):\n    x = []\n    while True:\n        x.append('a' * 10**6)\n"
    ),
    "infinite_loop": "def sum_evens(xs):\n    while True:\n        pass\n",
    "huge_file": (
        "def sum_evens(xs):\n    with open('big', 'w') as f:\n"
        "        while True:\n            f.write('x' * 10**6)\n"
    ),
    "read_env": (
        "import os\ndef sum_evens(xs):\n"
        "    assert 'CO_INTERNAL_TOKEN' in os.environ or 'PGHOST' in os.environ\n" + RIGHT
    ),
    "read_outside": "def sum_evens(xs):\n    open('/etc/passwd').read()\n" + RIGHT,
    "read_problem_bank": (
        "import glob\ndef sum_evens(xs):\n"
        "    assert glob.glob('/work/**/problems/**/*.yaml', recursive=True)\n" + RIGHT
    ),
    "network": (
        "import socket\ndef sum_evens(xs):\n"
        "    socket.create_connection(('127.0.0.1', 5432), timeout=1)\n" + RIGHT
    ),
}


@pytest.mark.parametrize("name", list(SANDBOX_ESCAPES))
async def test_sandbox_escapes_are_contained(stack: Stack, auth: dict[str, str], name: str) -> None:
    r = await submit(stack.client, auth, code_body(SANDBOX_ESCAPES[name]))
    body = r.json()
    assert body["status"] == "completed", body
    assert body["verdict"] != "accepted", (name, body["result"])
    assert "CO_INTERNAL_TOKEN" not in json.dumps(body)
