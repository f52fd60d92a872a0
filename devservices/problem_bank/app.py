"""The Problem Bank reference service (FastAPI).

``GET /v1/problems``, ``GET /v1/problems/{id}`` (public data only) and
``GET /internal/v1/problems/{id}`` (hidden tests, expected answer and reference solution).
Every route but ``/healthz`` needs ``X-Internal-Token``: the public part includes the
whole hint ladder, and learners read problems through CO, which cuts the ladder at the
level they have unlocked. Errors are ``application/problem+json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Query

from devservices.common import ProblemError, install_problem_handlers, internal_token_guard
from devservices.problem_bank.loader import PROBLEMS_DIR, ProblemFile, load_problems
from devservices.settings import DEFAULT_INTERNAL_TOKEN
from domain.upstream import Domain, ProblemBundle, ProblemList, ProblemPublic


@dataclass(frozen=True, slots=True)
class ProblemBankSettings:
    internal_token: str = DEFAULT_INTERNAL_TOKEN
    problems_dir: Path = field(default=PROBLEMS_DIR)


def create_app(settings: ProblemBankSettings | None = None) -> FastAPI:
    """Build the app; loads and validates every problem file now (raises if one is broken)."""
    settings = settings or ProblemBankSettings()
    problems: dict[str, ProblemFile] = load_problems(settings.problems_dir)
    public = {pid: p.to_public() for pid, p in problems.items()}
    require_token = internal_token_guard(settings.internal_token)

    app = FastAPI(
        title="SciMigo Problem Bank (dev)",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    app.state.problems = problems

    def find(problem_id: str) -> ProblemFile:
        problem = problems.get(problem_id)
        if problem is None:
            raise ProblemError(404, f"No problem with id {problem_id!r}.")
        return problem

    @app.get("/healthz")
    async def healthz() -> dict[str, str | int]:
        return {"status": "ok", "problems": len(problems)}

    @app.get("/v1/problems", response_model=ProblemList, dependencies=[Depends(require_token)])
    async def list_problems(
        ids: Annotated[str | None, Query(description="Comma-separated problem ids")] = None,
        domain: Domain | None = None,
    ) -> ProblemList:
        if ids is not None:
            wanted = [i.strip() for i in ids.split(",") if i.strip()]
            items = [public[i] for i in dict.fromkeys(wanted) if i in public]
        else:
            items = list(public.values())
        if domain is not None:
            items = [p for p in items if p.domain is domain]
        return ProblemList(items=items)

    @app.get(
        "/v1/problems/{problem_id}",
        response_model=ProblemPublic,
        dependencies=[Depends(require_token)],
    )
    async def get_problem(problem_id: str) -> ProblemPublic:
        return public[find(problem_id).id]

    @app.get(
        "/internal/v1/problems/{problem_id}",
        response_model=ProblemBundle,
        dependencies=[Depends(require_token)],
    )
    async def get_bundle(problem_id: str) -> ProblemBundle:
        return find(problem_id).to_bundle()

    return app
