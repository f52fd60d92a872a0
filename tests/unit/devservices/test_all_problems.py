"""Every problem in the bank is solvable: its reference solution (or expected answer) is
accepted by the real Eval app, and its wrong solution is not."""

from __future__ import annotations

from typing import Any

import pytest

from activities.submissions import build_eval_request
from devservices.problem_bank import ProblemFile, load_problems
from domain.upstream import EvalKind
from store.models import Submission

from .conftest import Evaluate

PROBLEMS = load_problems()


def eval_request(problem: ProblemFile, submission: str) -> dict[str, Any]:
    """What the submission activity sends: the production ``build_eval_request`` on the
    bundle and an unsaved submission row, serialised as the activity posts it."""
    bundle = problem.to_bundle()
    if bundle.problem.kind is EvalKind.python:
        row = Submission(problem_id=problem.id, language="python", code=submission)
    else:
        row = Submission(problem_id=problem.id, answer=submission)
    request: dict[str, Any] = build_eval_request(row, bundle).model_dump(mode="json")
    return request


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
