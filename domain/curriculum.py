"""Curriculum specs (what an author writes) and the rules that make one valid.

Pure functions: the API and the demo loader call ``validate_curriculum`` with
the set of problem ids Problem Bank knows, and publish only what passes.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.upstream import Domain

Slug = Annotated[
    str, StringConstraints(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$")
]
ProblemId = Annotated[
    str, StringConstraints(min_length=1, max_length=120, pattern=r"^[a-z0-9][a-z0-9-]*$")
]


class ItemSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    problem_id: ProblemId
    mastery_threshold: int = Field(
        default=1, ge=1, le=10, description="Accepted submissions needed to master the item."
    )
    required: bool = True
    skippable: bool = False


class ModuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: Slug
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    prerequisites: list[Slug] = Field(default_factory=list, max_length=50)
    items: list[ItemSpec] = Field(max_length=200)


class CurriculumSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    modules: list[ModuleSpec] = Field(max_length=100)


class TrackSpec(BaseModel):
    """A whole track as the demo files and the author API describe it."""

    model_config = ConfigDict(extra="forbid")

    slug: Slug
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    domain: Domain
    description: Annotated[str, StringConstraints(max_length=4000)] = ""
    modules: list[ModuleSpec] = Field(max_length=100)

    def curriculum(self) -> CurriculumSpec:
        return CurriculumSpec(modules=self.modules)


class CurriculumIssue(BaseModel):
    loc: list[str]
    msg: str
    type: str


# A session's workflow input carries the whole plan: keep it a few kilobytes.
MAX_CURRICULUM_ITEMS = 500


def validate_curriculum(
    spec: CurriculumSpec, known_problems: Collection[str] | None
) -> list[CurriculumIssue]:
    """Every reason the curriculum cannot be published; empty when it can.

    With ``known_problems=None`` only the structure is checked (no Problem Bank
    answer is needed for that), so the API can refuse a malformed draft at once.
    """
    issues: list[CurriculumIssue] = []

    def add(loc: list[str], msg: str, kind: str) -> None:
        issues.append(CurriculumIssue(loc=loc, msg=msg, type=kind))

    if not spec.modules:
        add(["modules"], "a curriculum needs at least one module", "empty_curriculum")
    slugs = [m.slug for m in spec.modules]
    seen: set[str] = set()
    problem_home: dict[str, str] = {}
    for i, module in enumerate(spec.modules):
        loc = ["modules", str(i)]
        if module.slug in seen:
            add([*loc, "slug"], f"module slug '{module.slug}' is used twice", "duplicate_module")
        seen.add(module.slug)
        if not module.items:
            add([*loc, "items"], f"module '{module.slug}' has no items", "empty_module")
        if len(set(module.prerequisites)) != len(module.prerequisites):
            add(
                [*loc, "prerequisites"],
                f"module '{module.slug}' lists a prerequisite twice",
                "duplicate_prerequisite",
            )
        for prereq in module.prerequisites:
            if prereq not in slugs:
                add(
                    [*loc, "prerequisites"],
                    f"module '{module.slug}' requires unknown module '{prereq}'",
                    "unknown_prerequisite",
                )
            elif prereq == module.slug:
                add([*loc, "prerequisites"], f"module '{module.slug}' requires itself", "cycle")
        for j, item in enumerate(module.items):
            iloc = [*loc, "items", str(j), "problem_id"]
            if known_problems is not None and item.problem_id not in known_problems:
                add(iloc, f"unknown problem id '{item.problem_id}'", "unknown_problem")
            # A session keys progress by problem id, so a problem may appear only once.
            if item.problem_id in problem_home:
                add(
                    iloc,
                    f"problem '{item.problem_id}' appears twice "
                    f"(already in module '{problem_home[item.problem_id]}')",
                    "duplicate_item",
                )
            else:
                problem_home[item.problem_id] = module.slug
    total = sum(len(m.items) for m in spec.modules)
    if total > MAX_CURRICULUM_ITEMS:
        add(
            ["modules"],
            f"a curriculum may have at most {MAX_CURRICULUM_ITEMS} items; this one has {total}",
            "too_many_items",
        )
    cycle = find_prerequisite_cycle(spec)
    if cycle:
        add(["modules"], "prerequisites form a cycle: " + " -> ".join(cycle), "cycle")
    return issues


def find_prerequisite_cycle(spec: CurriculumSpec) -> list[str] | None:
    """A cycle among module prerequisites (as a path that returns to its start), if any."""
    graph = {m.slug: [p for p in m.prerequisites if p != m.slug] for m in spec.modules}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if state.get(nxt) is None and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for slug in graph:
        if state.get(slug) is None and (found := visit(slug)):
            return found
    return None


def domain_mismatches(
    spec: CurriculumSpec, track_domain: Domain, problem_domains: dict[str, Domain]
) -> list[CurriculumIssue]:
    """Items whose problem belongs to another domain than the track (a coding problem
    in a math track). Problems not in ``problem_domains`` are left to the unknown-id
    check."""
    issues = []
    for i, module in enumerate(spec.modules):
        for j, item in enumerate(module.items):
            found = problem_domains.get(item.problem_id)
            if found is not None and found != track_domain:
                issues.append(
                    CurriculumIssue(
                        loc=["modules", str(i), "items", str(j), "problem_id"],
                        msg=(
                            f"problem '{item.problem_id}' is a {found.value} problem; "
                            f"this is a {track_domain.value} track"
                        ),
                        type="domain_mismatch",
                    )
                )
    return issues
