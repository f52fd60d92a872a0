"""Every problem in the bank is solvable: its reference solution (or expected answer) is
accepted by the real Eval app, and its wrong solution is not."""

from __future__ import annotations

from typing import Any

import pytest

from devservices.problem_bank import ProblemFile, load_problems
from domain.upstream import EvalKind

from .conftest import Evaluate

PROBLEMS = load_problems()


def eval_request(problem: ProblemFile, submission: str) -> dict[str, Any]:
    """What the submission activity sends: the bundle's data plus the learner's answer."""
    bundle = problem.to_bundle()
    public = bundle.problem
    if public.kind is EvalKind.python:
        tests = [{"args": t.args, "expected": t.expected} for t in public.public_tests]
        tests += [
            {"args": t.args, "expected": t.expected, "hidden": True} for t in bundle.hidden_tests
        ]
        return {
            "kind": "python",
            "code": submission,
            "function_name": public.function_name,
            "tests": tests,
            "limits": {
                "time_limit_ms": public.time_limit_ms,
                "memory_limit_mb": public.memory_limit_mb,
            },
        }
    return {
        "kind": public.kind.value,
        "answer": submission,
        "expected_answer": bundle.expected_answer,
        "variables": public.variables,
        "tolerance": public.tolerance,
        "choices": [c.id for c in public.choices],
    }


def reference(problem: ProblemFile) -> str:
    if problem.kind is EvalKind.python:
        return problem.reference_solution
    assert problem.expected_answer is not None
    return problem.expected_answer


@pytest.mark.parametrize("problem_id", list(PROBLEMS))
async def test_reference_is_accepted(evaluate: Evaluate, problem_id: str) -> None:
    problem = PROBLEMS[problem_id]
    body = await evaluate(**eval_request(problem, reference(problem)))
    assert body["verdict"] == "accepted", body


@pytest.mark.parametrize("problem_id", list(PROBLEMS))
async def test_wrong_solution_is_not_accepted(evaluate: Evaluate, problem_id: str) -> None:
    problem = PROBLEMS[problem_id]
    body = await evaluate(**eval_request(problem, problem.wrong_solution))
    assert body["verdict"] == "wrong_answer", body


@pytest.mark.parametrize(
    "problem_id", [p.id for p in PROBLEMS.values() if p.kind is EvalKind.python]
)
async def test_starter_code_is_not_accepted(evaluate: Evaluate, problem_id: str) -> None:
    problem = PROBLEMS[problem_id]
    assert problem.starter_code is not None
    body = await evaluate(**eval_request(problem, problem.starter_code))
    assert body["verdict"] == "wrong_answer", body  # the stub returns None
