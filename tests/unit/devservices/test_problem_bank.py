"""The Problem Bank: content rules, the public/internal split, errors."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import httpx
import pytest

from devservices.problem_bank import (
    PROBLEMS_DIR,
    SECRET_MARKERS,
    ProblemBankSettings,
    ProblemFileError,
    create_app,
    load_problems,
)
from domain.upstream import Domain, EvalKind, ProblemBundle, ProblemList, ProblemPublic

from .conftest import TOKEN

AUTH = {"X-Internal-Token": TOKEN}

PROBLEMS = load_problems()


def test_content_rules() -> None:
    per_domain = Counter(p.domain for p in PROBLEMS.values())
    assert all(per_domain[d] >= 8 for d in Domain), per_domain
    kinds = {(p.domain, p.kind) for p in PROBLEMS.values()}
    assert (Domain.coding, EvalKind.python) in kinds
    assert {(Domain.math, EvalKind.math_expr), (Domain.math, EvalKind.numeric)} <= kinds
    assert {
        (Domain.systems, EvalKind.numeric),
        (Domain.systems, EvalKind.multiple_choice),
        (Domain.systems, EvalKind.python),
    } <= kinds
    for problem in PROBLEMS.values():
        assert len(problem.hints) == 3
        assert 1 <= problem.difficulty <= 5
        assert problem.skills
        if problem.kind is EvalKind.python:
            assert problem.public_tests
            assert problem.hidden_tests
            # a hint never contains the reference solution's code
            body = [ln.strip() for ln in problem.reference_solution.splitlines()[1:] if ln.strip()]
            for hint in problem.hints:
                assert not any(len(line) > 20 and line in hint for line in body)
        else:
            answer = problem.expected_answer
            assert answer
            if problem.kind is not EvalKind.multiple_choice and len(answer) > 1:
                # the approach hint does not just state the answer
                pattern = rf"(?<![\w.]){re.escape(answer)}(?![\w.])"
                assert not re.search(pattern, problem.hints[2]), problem.id


def test_catalog_lists_every_problem() -> None:
    catalog = (PROBLEMS_DIR.parent / "catalog.md").read_text()
    for problem_id in PROBLEMS:
        assert f"`{problem_id}`" in catalog
    modules = re.findall(r"^\| `([a-z]+-\d)`", catalog, flags=re.M)
    assert len(modules) == 9


def test_secret_markers_are_only_in_hidden_tests() -> None:
    problem = PROBLEMS["py-secret-sum"]
    hidden = json.dumps([t.model_dump() for t in problem.hidden_tests])
    visible = problem.to_public().model_dump_json()
    for marker in SECRET_MARKERS:
        assert marker in hidden
        assert marker not in visible
    for other in PROBLEMS.values():
        if other.id != problem.id:
            text = other.model_dump_json()
            assert not any(m in text for m in SECRET_MARKERS)


async def test_public_endpoints_never_show_hidden_data(bank_client: httpx.AsyncClient) -> None:
    listing = await bank_client.get("/v1/problems", headers=AUTH)
    assert listing.status_code == 200
    items = ProblemList.model_validate(listing.json()).items
    assert [p.id for p in items] == list(PROBLEMS)
    bodies = [listing.text]
    for problem_id in PROBLEMS:
        response = await bank_client.get(f"/v1/problems/{problem_id}", headers=AUTH)
        assert response.status_code == 200
        ProblemPublic.model_validate(response.json())
        bodies.append(response.text)
    for body in bodies:
        for field in ("hidden_tests", "reference_solution", "expected_answer", "wrong_solution"):
            assert field not in body
        assert not any(marker in body for marker in SECRET_MARKERS)
    for problem in PROBLEMS.values():
        snippet = problem.reference_solution.strip().splitlines()[-1].strip()
        if problem.kind is EvalKind.python:
            assert all(snippet not in body for body in bodies), problem.id


async def test_list_filters(bank_client: httpx.AsyncClient) -> None:
    response = await bank_client.get(
        "/v1/problems", params={"ids": "sys-token-bucket,py-two-sum,nope"}, headers=AUTH
    )
    assert [p["id"] for p in response.json()["items"]] == ["sys-token-bucket", "py-two-sum"]
    response = await bank_client.get("/v1/problems", params={"domain": "math"}, headers=AUTH)
    ids = [p["id"] for p in response.json()["items"]]
    assert ids
    assert all(i.startswith("math-") for i in ids)
    response = await bank_client.get("/v1/problems", params={"domain": "biology"}, headers=AUTH)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("headers", [{}, {"X-Internal-Token": "wrong"}, {"X-Internal-Token": ""}])
@pytest.mark.parametrize(
    "path",
    ["/internal/v1/problems/py-secret-sum", "/v1/problems/py-secret-sum", "/v1/problems"],
)
async def test_every_problem_route_needs_the_token(
    bank_client: httpx.AsyncClient, headers: dict[str, str], path: str
) -> None:
    """The public part holds the whole hint ladder: learners read it through CO only."""
    response = await bank_client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401
    assert not any(marker in response.text for marker in SECRET_MARKERS)


async def test_internal_endpoint_returns_the_bundle(bank_client: httpx.AsyncClient) -> None:
    response = await bank_client.get(
        "/internal/v1/problems/py-secret-sum", headers={"X-Internal-Token": TOKEN}
    )
    assert response.status_code == 200
    bundle = ProblemBundle.model_validate(response.json())
    assert bundle.hidden_tests
    assert bundle.reference_solution
    assert "wrong_solution" not in response.text
    response = await bank_client.get(
        "/internal/v1/problems/math-derivative-product", headers={"X-Internal-Token": TOKEN}
    )
    assert ProblemBundle.model_validate(response.json()).expected_answer


@pytest.mark.parametrize(
    "path", ["/v1/problems/no-such-problem", "/internal/v1/problems/no-such-problem"]
)
async def test_unknown_problem_is_404(bank_client: httpx.AsyncClient, path: str) -> None:
    response = await bank_client.get(path, headers={"X-Internal-Token": TOKEN})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "no-such-problem" in response.json()["detail"]


def _copy_bank(tmp_path: Path) -> Path:
    target = tmp_path / "problems"
    shutil.copytree(PROBLEMS_DIR, target)
    return target


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.replace("difficulty: 1", "difficulty: 9"), "difficulty"),
        (lambda t: t + "unexpected_field: 1\n", "unexpected_field"),
        (lambda t: t.replace("id: py-sum-evens", "id: py-other"), "file name"),
        (lambda t: t.replace("function_name: sum_evens", "function_name: 1bad"), "function_name"),
        (lambda t: "[\n" + t, "cannot read"),
        (lambda t: t.replace("numbers if n % 2 == 0)\n", "numbers if\n", 1), "does not compile"),
    ],
)
def test_a_broken_file_fails_loudly(tmp_path: Path, mutate: object, message: str) -> None:
    bank = _copy_bank(tmp_path)
    path = bank / "coding" / "py-sum-evens.yaml"
    path.write_text(mutate(path.read_text()))  # type: ignore[operator]
    with pytest.raises(ProblemFileError) as info:
        create_app(ProblemBankSettings(problems_dir=bank))
    assert "py-sum-evens.yaml" in str(info.value)
    assert message in str(info.value)


def test_duplicate_ids_and_bad_math_are_refused(tmp_path: Path) -> None:
    bank = _copy_bank(tmp_path)
    source = bank / "math" / "math-derivative-power.yaml"
    source.write_text(
        source.read_text().replace("expected_answer: 12*x^2 - 5", "expected_answer: 12*y^2")
    )
    with pytest.raises(ProblemFileError, match="expected_answer does not parse"):
        load_problems(bank)
    bank = _copy_bank(tmp_path / "again")
    (bank / "systems" / "extra.yaml").write_text(
        (bank / "coding" / "py-sum-evens.yaml").read_text()
    )
    with pytest.raises(ProblemFileError):
        load_problems(bank)


async def test_the_internal_endpoint_accepts_only_the_problem_banks_own_token() -> None:
    """Default dev credentials: the Eval's and the Tutor's tokens are refused."""
    from devservices.registry import build_apps
    from domain.settings import DEV_EVAL_TOKEN, DEV_PROBLEM_BANK_TOKEN, DEV_TUTOR_TOKEN

    apps = build_apps()
    transport = httpx.ASGITransport(app=apps["problem_bank"])
    async with httpx.AsyncClient(transport=transport, base_url="http://bank") as client:
        path = "/internal/v1/problems/py-secret-sum"
        for token in (DEV_EVAL_TOKEN, DEV_TUTOR_TOKEN, "dev-internal-token"):
            r = await client.get(path, headers={"X-Internal-Token": token})
            assert r.status_code == 401, token
            assert "ZQX" not in r.text
        r = await client.get(path, headers={"X-Internal-Token": DEV_PROBLEM_BANK_TOKEN})
        assert r.status_code == 200
    eval_transport = httpx.ASGITransport(app=apps["eval"])
    async with httpx.AsyncClient(transport=eval_transport, base_url="http://eval") as client:
        body = {"kind": "numeric", "answer": "1", "expected_answer": "1"}
        for token in (DEV_PROBLEM_BANK_TOKEN, DEV_TUTOR_TOKEN):
            r = await client.post("/v1/evaluate", json=body, headers={"X-Internal-Token": token})
            assert r.status_code == 401
