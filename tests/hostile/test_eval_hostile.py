"""Hostile submissions against the Eval app: a verdict every time, never a 5xx, and no
hidden argument or expected value in the response or in Eval's logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devservices.eval import MathWorkerPool
from devservices.problem_bank import load_problems
from tests.support.hostile import HOSTILE, leaked

from .conftest import TOKEN, eval_app

PROBLEM = load_problems()["py-secret-sum"]
HIDDEN_FIELDS = {"index", "hidden", "passed", "time_ms", "verdict", "args", "expected"}


def secret_sum_request(code: str, time_limit_ms: int = 300) -> dict[str, Any]:
    tests = [{"args": t.args, "expected": t.expected} for t in PROBLEM.public_tests]
    tests += [
        {"args": t.args, "expected": t.expected, "hidden": True} for t in PROBLEM.hidden_tests
    ]
    return {
        "kind": "python",
        "code": code,
        "function_name": PROBLEM.function_name,
        "tests": tests,
        "limits": {"time_limit_ms": time_limit_ms, "memory_limit_mb": 64},
    }


def assert_mute(body: dict[str, Any]) -> None:
    """Hidden tests come back as index and pass/fail only; nothing hidden anywhere."""
    assert leaked(json.dumps(body)) == [], body
    for result in body["tests"]:
        if result["hidden"]:
            filled = {k: v for k, v in result.items() if v not in (None, False, 0)}
            assert set(filled) <= {"index", "hidden", "passed"}, result
            assert result["time_ms"] == 0


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_submission_gets_a_verdict_and_learns_nothing_hidden(
    eval_http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    case = HOSTILE[name]
    caplog.set_level(logging.DEBUG)
    response = await eval_http.post("/v1/evaluate", json=secret_sum_request(case.code))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"] in case.verdicts, body
    assert_mute(body)
    assert leaked(caplog.text) == []


async def test_a_scratch_file_written_by_the_hidden_run_is_gone_for_the_next_run(
    unaudited_http: httpx.AsyncClient,
) -> None:
    code = (
        "import os\n"
        "def secret_sum(label, numbers):\n"
        "    if label in ('total', 'x'):\n"
        "        return [sorted(os.listdir('.')), open('/tmp/leak.txt').read()\n"
        "                if os.path.exists('/tmp/leak.txt') else '']\n"
        "    open('/tmp/leak.txt', 'a').write(label)\n"
        "    return 0\n"
    )
    for _ in range(2):
        response = await unaudited_http.post("/v1/evaluate", json=secret_sum_request(code))
        assert response.status_code == 200
        body = response.json()
        assert body["tests"][0]["actual"] == [[], ""]
        assert_mute(body)


async def test_an_introspecting_public_test_finds_no_hidden_argument(
    eval_http: httpx.AsyncClient,
) -> None:
    """The reported leak: the public run's process holds no hidden data to find."""
    response = await eval_http.post(
        "/v1/evaluate", json=secret_sum_request(HOSTILE["introspect frames and print"].code)
    )
    body = response.json()
    public = [t for t in body["tests"] if not t["hidden"]]
    assert any(t["stdout"] for t in public)  # it did print what it found
    assert leaked(json.dumps(body)) == []


# -- the boundary is required -----------------------------------------------------------


@pytest.mark.parametrize("bwrap", [None, "/bin/false", "/nonexistent/bwrap"])
async def test_eval_refuses_to_run_code_without_the_sandbox(
    hostile_math_pool: MathWorkerPool, caplog: pytest.LogCaptureFixture, bwrap: str | None
) -> None:
    app: FastAPI = eval_app(hostile_math_pool, audit=True, bwrap=bwrap)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://eval") as client:
        response = await client.post(
            "/v1/evaluate",
            json=secret_sum_request("def secret_sum(l, n):\n    return 1\n"),
            headers={"X-Internal-Token": TOKEN},
        )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "sandbox is unavailable" in response.json()["detail"]
    assert "sandbox unavailable" in caplog.text


async def test_a_harness_that_dies_before_learner_code_is_a_503_not_a_verdict(
    hostile_math_pool: MathWorkerPool,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Our failure, not the learner's: retryable for CO, never a final internal_error."""
    from devservices.eval import sandbox

    app: FastAPI = eval_app(hostile_math_pool, audit=True)
    monkeypatch.setattr(sandbox, "HARNESS_SOURCE", "import os\nos._exit(4)\n")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://eval") as client:
        response = await client.post(
            "/v1/evaluate",
            json=secret_sum_request("def secret_sum(l, n):\n    return 1\n"),
            headers={"X-Internal-Token": TOKEN},
        )
    assert response.status_code == 503
    assert "failed to start" in response.json()["detail"]
    assert "eval sandbox failed to start" in caplog.text


# -- math answers -----------------------------------------------------------------------

MATH_HOSTILE = {
    "long flat chain": "x+" * 999 + "x",
    "long flat product": "2*" * 1500 + "x",
    "long juxtaposition": "x" * 4000,
    "deep parentheses": "(" * 1500 + "x" + ")" * 1500,
    "deep unary minus": "-" * 3000 + "x",
    "deep function calls": "sin(" * 800 + "x" + ")" * 800,
    "power tower": "x^" * 200 + "x",
    "huge exponent": "x^(10^300)",
    "huge constant power": "9^9^9^9",
    "over-long input": "1" * 100_000,
    "slow simplification": "(" + "+".join(f"sin({k}*x)^{k}" for k in range(1, 40)) + ")^7",
    "python in the answer": "__import__('os').system('id')",
    "lambda": "(lambda: 1)()",
}


@pytest.mark.parametrize("name", list(MATH_HOSTILE))
async def test_hostile_math_answer_gets_a_verdict(
    unaudited_http: httpx.AsyncClient, name: str
) -> None:
    response = await unaudited_http.post(
        "/v1/evaluate",
        json={
            "kind": "math_expr",
            "answer": MATH_HOSTILE[name],
            "expected_answer": "x^2 + 2*x + 1",
            "variables": ["x"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["verdict"] in ("invalid_answer", "wrong_answer"), response.text


# -- properties -------------------------------------------------------------------------

_ATOMS = st.sampled_from(["x", "y", "1", "2.5", "pi", "e", "0", "1e300", "10"])


def _expressions() -> st.SearchStrategy[str]:
    return st.recursive(
        _ATOMS,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "^", "**", " ", ""]), inner).map(
                "".join
            ),
            st.tuples(st.sampled_from(["sin", "exp", "log", "sqrt", "abs", "-", ""]), inner).map(
                lambda p: f"{p[0]}({p[1]})"
            ),
            st.tuples(inner, st.integers(1, 400), st.sampled_from(["+", "*", "^"])).map(
                lambda p: p[2].join([p[0]] * p[1])
            ),
        ),
        max_leaves=30,
    )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(answer=_expressions())
async def test_any_answer_of_the_math_grammar_gets_a_verdict(
    unaudited_http: httpx.AsyncClient, answer: str
) -> None:
    response = await unaudited_http.post(
        "/v1/evaluate",
        json={
            "kind": "math_expr",
            "answer": answer,
            "expected_answer": "x*y + 1",
            "variables": ["x", "y"],
        },
    )
    assert response.status_code == 200, (answer, response.text)
    assert response.json()["verdict"] in ("accepted", "wrong_answer", "invalid_answer")


_SHAPES = st.one_of(
    st.integers(0, 30_000).map(lambda n: f"v = []\n    for _ in range({n}):\n        v = [v]"),
    st.integers(0, 30_000).map(
        lambda n: f"v = {{}}\n    for _ in range({n}):\n        v = {{'k': v}}"
    ),
    st.integers(0, 255).map(lambda n: f"import os; os._exit({n})"),
    st.sampled_from(["SIGKILL", "SIGTERM", "SIGSEGV", "SIGXCPU", "SIGALRM", "SIGUSR1"]).map(
        lambda s: f"import os, signal; os.kill(os.getpid(), signal.{s})"
    ),
    st.integers(0, 10**7).map(lambda n: f"print('z' * {n}); v = 0"),
    st.integers(1, 10**6).map(lambda n: f"import sys; sys.setrecursionlimit({n}); v = 0"),
    st.text(max_size=40).map(lambda t: f"raise ValueError({t!r} + label)"),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(shape=_SHAPES, in_hidden_only=st.booleans())
async def test_any_hostile_code_shape_gets_a_verdict_without_leaks(
    unaudited_http: httpx.AsyncClient, shape: str, in_hidden_only: bool
) -> None:
    guard = "    if label in ('total', 'x'):\n        return f'{label}:{sum(numbers)}'\n"
    code = (
        "def secret_sum(label, numbers):\n"
        + (guard if in_hidden_only else "")
        + "    v = None\n"
        + f"    {shape}\n"
        + "    return v\n"
    )
    response = await unaudited_http.post("/v1/evaluate", json=secret_sum_request(code))
    assert response.status_code == 200, (shape, response.text)
    body = response.json()
    assert body["verdict"] != "accepted"
    assert_mute(body)
