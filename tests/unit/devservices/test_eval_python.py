"""Python evaluation through the Eval app: every verdict, what a result may show."""

from __future__ import annotations

import time

import httpx
import pytest

from .conftest import TOKEN, Evaluate, python_request

ADD = "def f(a, b):\n    return a + b\n"


async def test_accepted(evaluate: Evaluate) -> None:
    body = await evaluate(**python_request(ADD, tests=[([1, 2], 3)], hidden=[([2, 2], 4)]))
    assert body["verdict"] == "accepted"
    assert [t["passed"] for t in body["tests"]] == [True, True]
    assert body["memory_kb"] > 0
    assert body["message"] == "All 2 tests passed."


async def test_wrong_answer_shows_public_details(evaluate: Evaluate) -> None:
    code = "def f(a, b):\n    print('adding', a, b)\n    return a - b\n"
    body = await evaluate(**python_request(code, tests=[([5, 2], 7)], hidden=[([1, 1], 2)]))
    assert body["verdict"] == "wrong_answer"
    public, hidden = body["tests"]
    assert public == {
        "index": 0,
        "hidden": False,
        "passed": False,
        "time_ms": public["time_ms"],
        "verdict": "wrong_answer",
        "args": [5, 2],
        "expected": 7,
        "actual": 3,
        "stdout": "adding 5 2\n",
        "error": None,
    }
    assert hidden == {
        "index": 1,
        "hidden": True,
        "passed": False,
        "time_ms": 0,
        "verdict": None,
        "args": None,
        "expected": None,
        "actual": None,
        "stdout": None,
        "error": None,
    }
    assert body["message"] == "0/2 tests passed; test 1 failed: wrong answer."


async def test_values_compare_as_json(evaluate: Evaluate) -> None:
    code = "def f():\n    return (1, 2.0000000000001, {'k': True}, None)\n"
    body = await evaluate(**python_request(code, tests=[([], [1, 2, {"k": True}, None])]))
    assert body["verdict"] == "accepted"
    body = await evaluate(**python_request("def f():\n    return 1\n", tests=[([], True)]))
    assert body["verdict"] == "wrong_answer"  # bool and int are different answers
    body = await evaluate(**python_request("def f():\n    return {1, 2}\n", tests=[([], [1, 2])]))
    assert body["verdict"] == "wrong_answer"
    assert "not JSON data" in body["tests"][0]["error"]


async def test_time_limit_exceeded(evaluate: Evaluate) -> None:
    code = "def f(n):\n    while True:\n        n += 1\n"
    start = time.monotonic()
    body = await evaluate(
        **python_request(code, tests=[([1], 1), ([2], 2)], hidden=[([3], 3)], time_limit_ms=300)
    )
    assert time.monotonic() - start < 5
    assert body["verdict"] == "time_limit_exceeded"
    first, second, hidden = body["tests"]
    assert first["verdict"] == "time_limit_exceeded"
    assert first["error"] == "time limit exceeded"
    assert second["verdict"] is None
    assert second["error"] == "not run"
    assert hidden["passed"] is False


async def test_time_limit_cannot_be_swallowed(evaluate: Evaluate) -> None:
    code = (
        "import signal\n"
        "def f():\n"
        "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "    while True:\n"
        "        try:\n"
        "            pass\n"
        "        except BaseException:\n"
        "            pass\n"
    )
    start = time.monotonic()
    body = await evaluate(**python_request(code, tests=[([], 1)], time_limit_ms=200))
    assert body["verdict"] == "time_limit_exceeded"  # killed by RLIMIT_CPU or the wall clock
    assert time.monotonic() - start < 8


async def test_memory_limit_exceeded(evaluate: Evaluate) -> None:
    code = "def f():\n    blocks = []\n    while True:\n        blocks.append(bytearray(10**6))\n"
    body = await evaluate(**python_request(code, tests=[([], 1)], memory_limit_mb=64))
    assert body["verdict"] == "memory_limit_exceeded"
    body = await evaluate(**python_request("def f():\n    return [0] * 10**9\n", tests=[([], 1)]))
    assert body["verdict"] == "memory_limit_exceeded"


async def test_runtime_error_names_the_line_not_server_paths(evaluate: Evaluate) -> None:
    code = "def f(x):\n    y = 1\n    return {}[x]\n"
    body = await evaluate(**python_request(code, tests=[(["key"], 1)]))
    assert body["verdict"] == "runtime_error"
    error = body["tests"][0]["error"]
    assert error == "KeyError: 'key' (line 3)"
    text = str(body)
    assert not any(s in text for s in ("Traceback", "File ", "/tmp", "/root", "/work", "harness"))


async def test_recursion_and_exit_are_runtime_errors(evaluate: Evaluate) -> None:
    body = await evaluate(**python_request("def f():\n    return f()\n", tests=[([], 1)]))
    assert body["verdict"] == "runtime_error"
    assert body["tests"][0]["error"].startswith("RecursionError")
    body = await evaluate(
        **python_request("import sys\ndef f():\n    sys.exit(0)\n", tests=[([], 1)])
    )
    assert body["verdict"] == "runtime_error"
    code = "import os\ndef f():\n    os._exit(0)\n"
    body = await evaluate(**python_request(code, tests=[([], 1)]))
    assert body["verdict"] == "runtime_error"


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("def f(:\n    pass\n", "SyntaxError"),
        ("def f():\n  return 1\n   x = 2\n", "IndentationError"),
        ("x = 1\n", "must define a function named 'f'"),
        ("f = 3\n", "must define a function named 'f'"),
    ],
)
async def test_compile_error(evaluate: Evaluate, code: str, fragment: str) -> None:
    body = await evaluate(**python_request(code, tests=[([], 1)]))
    assert body["verdict"] == "compile_error"
    assert fragment in body["message"]


async def test_errors_while_loading_the_module(evaluate: Evaluate) -> None:
    body = await evaluate(**python_request("raise ValueError('boom')\n", tests=[([], 1)]))
    assert body["verdict"] == "runtime_error"
    assert "ValueError: boom (line 1)" in body["message"]
    body = await evaluate(
        **python_request("while True:\n    pass\n", tests=[([], 1)], time_limit_ms=200)
    )
    assert body["verdict"] == "time_limit_exceeded"


async def test_allowed_standard_library(evaluate: Evaluate) -> None:
    code = (
        "import collections, heapq, itertools, functools, math, re, bisect, json\n"
        "def f(xs):\n"
        "    return [heapq.nsmallest(2, xs), collections.Counter(xs).most_common(1)[0][0],\n"
        "            math.isqrt(17), bisect.bisect(sorted(xs), 2)]\n"
    )
    body = await evaluate(**python_request(code, tests=[([[3, 1, 2, 1]], [[1, 1], 1, 4, 3])]))
    assert body["verdict"] == "accepted", body


async def test_needs_the_internal_token(eval_client: httpx.AsyncClient) -> None:
    request = python_request(ADD, tests=[([1, 2], 3)])
    for headers in ({}, {"X-Internal-Token": "nope"}):
        response = await eval_client.post("/v1/evaluate", json=request, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "cobol", "code": "x"},
        {"kind": "python", "function_name": "f", "tests": [{"args": []}]},  # no code
        {"kind": "python", "code": ADD, "function_name": "f", "tests": []},
        {"kind": "python", "code": ADD, "function_name": "not valid", "tests": [{"args": []}]},
        {"kind": "python", "code": "x" * 70_000, "function_name": "f", "tests": [{"args": []}]},
        {"kind": "math_expr", "answer": "x"},
        {"kind": "math_expr", "answer": "x", "expected_answer": "x +", "variables": ["x"]},
        {"kind": "numeric", "answer": "1"},
        {"kind": "multiple_choice", "expected_answer": "a"},
        {"kind": "python", "tests": "not a list"},
    ],
)
async def test_malformed_requests_are_422(
    eval_client: httpx.AsyncClient, payload: dict[str, object]
) -> None:
    response = await eval_client.post(
        "/v1/evaluate", json=payload, headers={"X-Internal-Token": TOKEN}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 422


async def test_not_json_is_a_problem(eval_client: httpx.AsyncClient) -> None:
    response = await eval_client.post(
        "/v1/evaluate",
        content=b"{not json",
        headers={"X-Internal-Token": TOKEN, "content-type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"
