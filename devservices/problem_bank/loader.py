"""Problem files: schema, validation and loading.

One YAML file per problem, ``problems/<domain>/<problem_id>.yaml``. Every file is loaded
and validated when the app is created, so a broken file stops the service at start-up
with the file name and the reason.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devservices.eval import mathexpr
from domain.upstream import (
    Choice,
    Domain,
    EvalKind,
    ProblemBundle,
    ProblemPublic,
    TestCase,
)

PROBLEMS_DIR = Path(__file__).with_name("problems")
ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ID_PREFIX: dict[Domain, str] = {
    Domain.coding: "py-",
    Domain.math: "math-",
    Domain.systems: "sys-",
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ProblemFileError(ValueError):
    """A problem file is missing, unreadable or invalid."""


class ProblemFile(BaseModel):
    """The schema of a problem file (stricter than the public contract)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: Annotated[str, Field(min_length=3, max_length=120)]
    domain: Domain
    kind: EvalKind
    statement: Annotated[str, Field(min_length=10)]
    skills: Annotated[list[str], Field(min_length=1)]
    difficulty: Annotated[int, Field(ge=1, le=5)]
    hints: Annotated[list[str], Field(min_length=3, max_length=3)]
    public_tests: list[TestCase] = Field(default_factory=list)
    hidden_tests: list[TestCase] = Field(default_factory=list)
    function_name: str | None = None
    starter_code: str | None = None
    choices: list[Choice] = Field(default_factory=list)
    variables: list[str] = Field(default_factory=list)
    tolerance: float | None = None
    time_limit_ms: Annotated[int, Field(ge=100, le=10_000)] = 2000
    memory_limit_mb: Annotated[int, Field(ge=16, le=1024)] = 256
    solution_reveal_allowed: bool = False
    expected_answer: str | None = None
    reference_solution: Annotated[str, Field(min_length=1)]
    # Used only by the test suite: a plausible answer that must NOT be accepted.
    wrong_solution: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not ID_RE.match(self.id):
            raise ValueError(f"id {self.id!r} is not kebab-case")
        prefix = ID_PREFIX[self.domain]
        if not self.id.startswith(prefix):
            raise ValueError(f"{self.domain} problem ids start with {prefix!r}")
        if any(not h.strip() for h in self.hints):
            raise ValueError("hints must not be empty")
        if self.kind is EvalKind.python:
            self._check_python()
        else:
            if self.public_tests or self.hidden_tests or self.function_name:
                raise ValueError(f"{self.kind} problems have no tests or function_name")
            if not self.expected_answer:
                raise ValueError(f"{self.kind} problems need expected_answer")
            if self.kind is EvalKind.math_expr:
                self._check_math()
            elif self.kind is EvalKind.numeric:
                self._check_numeric()
            else:
                self._check_choices()
        return self

    def _check_python(self) -> None:
        if not self.function_name or not _IDENTIFIER.match(self.function_name):
            raise ValueError("python problems need a valid function_name")
        if not self.starter_code or f"def {self.function_name}(" not in self.starter_code:
            raise ValueError("starter_code must define the function")
        if not self.public_tests or not self.hidden_tests:
            raise ValueError("python problems need public and hidden tests")
        if self.expected_answer is not None:
            raise ValueError("python problems have no expected_answer")
        for name, code in (
            ("reference_solution", self.reference_solution),
            ("wrong_solution", self.wrong_solution),
            ("starter_code", self.starter_code),
        ):
            try:
                compile(code, f"<{name}>", "exec", dont_inherit=True)  # compile only, no exec
            except SyntaxError as exc:
                raise ValueError(f"{name} does not compile: {exc}") from exc

    def _check_math(self) -> None:
        if not self.variables:
            raise ValueError("math_expr problems declare their variables")
        try:
            mathexpr.parse(str(self.expected_answer), self.variables)
        except mathexpr.MathSyntaxError as exc:
            raise ValueError(f"expected_answer does not parse: {exc}") from exc

    def _check_numeric(self) -> None:
        if self.tolerance is None or self.tolerance < 0:
            raise ValueError("numeric problems need a tolerance >= 0")
        try:
            value = mathexpr.evaluate(mathexpr.parse(str(self.expected_answer)), {})
        except (mathexpr.MathSyntaxError, ArithmeticError, ValueError) as exc:
            raise ValueError(f"expected_answer is not a number: {exc}") from exc
        if not math.isfinite(value):
            raise ValueError("expected_answer is not finite")

    def _check_choices(self) -> None:
        ids = [c.id for c in self.choices]
        if len(ids) < 2 or len(set(ids)) != len(ids):
            raise ValueError("multiple_choice problems need at least two distinct choices")
        if self.expected_answer not in ids:
            raise ValueError("expected_answer must be one of the choice ids")

    def to_public(self) -> ProblemPublic:
        return ProblemPublic(
            id=self.id,
            title=self.title,
            domain=self.domain,
            kind=self.kind,
            statement=self.statement,
            skills=self.skills,
            difficulty=self.difficulty,
            hints=self.hints,
            public_tests=self.public_tests,
            function_name=self.function_name,
            starter_code=self.starter_code,
            choices=self.choices,
            variables=self.variables,
            tolerance=self.tolerance,
            time_limit_ms=self.time_limit_ms,
            memory_limit_mb=self.memory_limit_mb,
            solution_reveal_allowed=self.solution_reveal_allowed,
        )

    def to_bundle(self) -> ProblemBundle:
        return ProblemBundle(
            problem=self.to_public(),
            hidden_tests=self.hidden_tests,
            expected_answer=self.expected_answer,
            reference_solution=self.reference_solution,
        )


def _format_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts)


def load_problem_file(path: Path) -> ProblemFile:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProblemFileError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise ProblemFileError(f"{path}: expected a mapping at the top level")
    try:
        problem = ProblemFile.model_validate(data)
    except ValidationError as exc:
        raise ProblemFileError(f"{path}: {_format_error(exc)}") from exc
    if problem.id != path.stem:
        raise ProblemFileError(f"{path}: id {problem.id!r} does not match the file name")
    if problem.domain.value != path.parent.name:
        raise ProblemFileError(f"{path}: domain {problem.domain} but folder {path.parent.name}")
    return problem


def load_problems(directory: Path = PROBLEMS_DIR) -> dict[str, ProblemFile]:
    """Load every ``<domain>/<id>.yaml`` under ``directory``, ordered by domain then id."""
    if not directory.is_dir():
        raise ProblemFileError(f"{directory}: problems directory not found")
    problems: dict[str, ProblemFile] = {}
    for child in sorted(directory.iterdir()):
        if child.is_dir() and child.name not in {d.value for d in Domain}:
            raise ProblemFileError(f"{child}: unknown domain folder")
    for domain in Domain:
        folder = directory / domain.value
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix not in (".yaml", ".yml"):
                raise ProblemFileError(f"{path}: not a .yaml problem file")
            problem = load_problem_file(path)
            if problem.id in problems:
                raise ProblemFileError(f"{path}: duplicate problem id {problem.id!r}")
            problems[problem.id] = problem
    if not problems:
        raise ProblemFileError(f"{directory}: no problems found")
    return problems
