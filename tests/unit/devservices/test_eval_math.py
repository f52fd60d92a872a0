"""math_expr, numeric and multiple_choice evaluation through the Eval app."""

from __future__ import annotations

import time

import httpx
import pytest

from devservices.eval import EvalSettings, MathWorkerPool, create_app

from .conftest import TOKEN, Evaluate

PRODUCT = "2*x*sin(x) + x^2*cos(x)"  # d/dx x**2*sin(x)


def math_request(
    answer: str, expected: str = PRODUCT, variables: list[str] | None = None
) -> dict[str, object]:
    return {
        "kind": "math_expr",
        "answer": answer,
        "expected_answer": expected,
        "variables": variables if variables is not None else ["x"],
    }


@pytest.mark.parametrize(
    "answer",
    [
        PRODUCT,
        "x**2*cos(x) + 2*x*sin(x)",
        "2x sin(x) + x^2 cos(x)",
        "x*(2*sin(x) + x*cos(x))",
        "cos(x) x^2 + sin(x)(2x)",
        "(2 sin(x) + x cos(x)) * x",
    ],
)
async def test_equivalent_forms_are_accepted(evaluate: Evaluate, answer: str) -> None:
    body = await evaluate(**math_request(answer))
    assert body["verdict"] == "accepted", body


@pytest.mark.parametrize(
    ("answer", "expected", "variables"),
    [
        ("x + 1", "(x^2 - 1)/(x - 1)", ["x"]),
        ("1", "sin(x)^2 + cos(x)^2", ["x"]),
        ("exp(2 ln(x))", "x^2", ["x"]),  # only where both are defined (x > 0)
        ("(1 - log(x))/x^2", "(1 - ln(x))/x^2", ["x"]),
        ("x*y + y*x", "2 x y", ["x", "y"]),
        ("sqrt(x^2)", "abs(x)", ["x"]),
    ],
)
async def test_identities(
    evaluate: Evaluate, answer: str, expected: str, variables: list[str]
) -> None:
    body = await evaluate(**math_request(answer, expected, variables))
    assert body["verdict"] == "accepted", body


@pytest.mark.parametrize(
    "answer", ["2*x*cos(x)", "2*x*sin(x) + x^2*cos(x) + 1", "x^2*sin(x)", "2*x*sin(x) - x^2*cos(x)"]
)
async def test_wrong_answers_are_rejected(evaluate: Evaluate, answer: str) -> None:
    body = await evaluate(**math_request(answer))
    assert body["verdict"] == "wrong_answer", body


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        ("2*x*sin(x) +", "unexpected end of input at column 13"),
        ("2*x*sin(x", "expected ')'"),
        ("2*y", "unknown name 'y'"),
        ("", "empty answer"),
        ("x" * 5000, "longer than 4096"),
    ],
)
async def test_unreadable_answers_are_invalid(
    evaluate: Evaluate, answer: str, fragment: str
) -> None:
    body = await evaluate(**math_request(answer))
    assert body["verdict"] == "invalid_answer"
    assert fragment in body["message"]


@pytest.mark.parametrize(
    "answer",
    [
        "9**9**9**9",
        "__import__('os').system('x')",
        "x.__class__",
        "(lambda: 1)()",
        "exec('1')",
        "2^(10^10)",
    ],
)
async def test_hostile_answers_get_a_clean_verdict_quickly(evaluate: Evaluate, answer: str) -> None:
    start = time.monotonic()
    body = await evaluate(**math_request(answer))
    assert time.monotonic() - start < 2
    assert body["verdict"] in ("invalid_answer", "wrong_answer")


async def test_symbolic_budget_falls_back_to_numbers() -> None:
    """With a tiny budget the sympy worker is killed mid-job and the numeric check decides;
    the pool then starts a fresh worker for the next job."""
    pool = MathWorkerPool(1)
    app = create_app(EvalSettings(internal_token=TOKEN, math_timeout_s=0.001), math_pool=pool)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://eval") as client:
            verdicts = []
            for answer, expected in (("sin(x)^2 + cos(x)^2", "1"), ("x^2", "x^3")):
                response = await client.post(
                    "/v1/evaluate",
                    json=math_request(answer, expected),
                    headers={"X-Internal-Token": TOKEN},
                )
                verdicts.append(response.json()["verdict"])
    finally:
        pool.close()
    assert verdicts == ["accepted", "wrong_answer"]


@pytest.mark.parametrize(
    ("answer", "expected", "tolerance", "verdict"),
    [
        ("0.85", "0.85", 0.001, "accepted"),
        ("0.8504", "0.85", 0.001, "accepted"),
        ("0.852", "0.85", 0.001, "wrong_answer"),
        ("17/20", "0.85", 0.001, "accepted"),
        ("8.5e-1", "0.85", 0.001, "accepted"),
        (" 3.3333 ", "10/3", 0.01, "accepted"),
        ("10/3", "3.3333333", None, "accepted"),  # default absolute tolerance 1e-6
        ("3.33", "10/3", None, "wrong_answer"),
        ("1000000.5", "1000000", 1, "accepted"),
        ("62", "62", 0, "accepted"),
        ("62.0000000001", "62", 0, "accepted"),  # relative 1e-9
        ("63", "62", 0, "wrong_answer"),
        ("sixty-two", "62", 0, "invalid_answer"),
        ("1/0", "62", 0, "invalid_answer"),
        ("x", "62", 0, "invalid_answer"),
        ("9**9**9**9", "62", 0, "invalid_answer"),
    ],
)
async def test_numeric(
    evaluate: Evaluate, answer: str, expected: str, tolerance: float | None, verdict: str
) -> None:
    body = await evaluate(
        kind="numeric", answer=answer, expected_answer=expected, tolerance=tolerance
    )
    assert body["verdict"] == verdict, body


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("b", "accepted"),
        (" B ", "accepted"),
        ("a", "wrong_answer"),
        ("e", "invalid_answer"),
        ("", "invalid_answer"),
        ("   ", "invalid_answer"),
    ],
)
async def test_multiple_choice(evaluate: Evaluate, answer: str, verdict: str) -> None:
    body = await evaluate(
        kind="multiple_choice", answer=answer, expected_answer="b", choices=["a", "b", "c", "d"]
    )
    assert body["verdict"] == verdict, body


async def test_multiple_choice_without_a_choice_list(evaluate: Evaluate) -> None:
    body = await evaluate(kind="multiple_choice", answer="z", expected_answer="b")
    assert body["verdict"] == "wrong_answer"
