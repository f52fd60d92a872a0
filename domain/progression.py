"""Progression through a curriculum by mastery: pure rules shared by SessionWorkflow
(which owns a session's state) and the API (which renders the projected state).

- An item is *mastered* when it has ``mastery_threshold`` accepted submissions.
- An item is *done* when it is mastered or was skipped (left unmastered because it
  is skippable or optional).
- A module is *complete* when all its required items are done; it is *unlocked*
  when all its prerequisites are complete.
- The session completes when every module is complete.

The learner moves on explicitly (``advance``): a mastered item may stay current so
the learner can read the result or ask the tutor before moving. Submissions update
attempts and mastery, and complete the session (position cleared) when the last
required item is mastered.

Every function returns a new ``Progress`` (models are treated as immutable), so a
workflow can hand a snapshot to an activity while its handlers keep changing state.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from domain.mastery import mastery_score
from domain.upstream import Verdict

MAX_HINT_LEVEL = 3

# --------------------------------------------------------------------------- the plan


class ItemPlan(BaseModel):
    """One item of a published version, as the session needs it: ids and numbers."""

    problem_id: str
    mastery_threshold: int = Field(default=1, ge=1)
    required: bool = True
    skippable: bool = False
    skills: list[str] = Field(default_factory=list)


class ModulePlan(BaseModel):
    slug: str
    prerequisites: list[str] = Field(default_factory=list)
    items: list[ItemPlan] = Field(default_factory=list)


class SessionPlan(BaseModel):
    """The curriculum of the track version a session runs on; it never changes for
    that session, so publishing a new version cannot break it."""

    modules: list[ModulePlan]

    def module(self, slug: str) -> ModulePlan | None:
        return next((m for m in self.modules if m.slug == slug), None)

    def item(self, problem_id: str) -> ItemPlan | None:
        for module in self.modules:
            for item in module.items:
                if item.problem_id == problem_id:
                    return item
        return None


# --------------------------------------------------------------------------- the state


class SessionStatus(StrEnum):
    active = "active"
    completed = "completed"
    ended = "ended"  # by the learner
    abandoned = "abandoned"  # idle past the timeout


class ItemProgress(BaseModel):
    attempts: int = 0
    accepted: int = 0
    hint_level: int = 0
    skipped: bool = False


class Position(BaseModel):
    module_slug: str
    problem_id: str


class Progress(BaseModel):
    """A session's whole progress; ``seq`` grows with every change so projections can
    be ordered. Items a learner never touched have no entry."""

    status: SessionStatus = SessionStatus.active
    position: Position | None = None
    items: dict[str, ItemProgress] = Field(default_factory=dict)
    started_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None = None
    seq: int = 0

    def item(self, problem_id: str) -> ItemProgress:
        return self.items.get(problem_id) or ItemProgress()

    @property
    def active(self) -> bool:
        return self.status == SessionStatus.active


# --------------------------------------------------------------------------- rules


def is_mastered(item: ItemPlan, progress: Progress) -> bool:
    return progress.item(item.problem_id).accepted >= item.mastery_threshold


def is_done(item: ItemPlan, progress: Progress) -> bool:
    return is_mastered(item, progress) or progress.item(item.problem_id).skipped


def module_complete(module: ModulePlan, progress: Progress) -> bool:
    return all(is_done(i, progress) for i in module.items if i.required)


def module_unlocked(module: ModulePlan, plan: SessionPlan, progress: Progress) -> bool:
    for slug in module.prerequisites:
        prereq = plan.module(slug)
        if prereq is not None and not module_complete(prereq, progress):
            return False
    return True


def session_complete(plan: SessionPlan, progress: Progress) -> bool:
    return all(module_complete(m, progress) for m in plan.modules)


def _first_open_item(module: ModulePlan, progress: Progress, after: int = -1) -> ItemPlan | None:
    return next((i for i in module.items[after + 1 :] if not is_done(i, progress)), None)


def next_position(
    plan: SessionPlan, progress: Progress, current: Position | None = None
) -> Position | None:
    """Where the learner goes next: the next open item of the current module, else the
    first open item of the first unlocked, incomplete module (in curriculum order).
    None when no module is left open."""
    if current is not None:
        module = plan.module(current.module_slug)
        if module is not None:
            index = next(
                (k for k, i in enumerate(module.items) if i.problem_id == current.problem_id), -1
            )
            item = _first_open_item(module, progress, after=index)
            if item is not None:
                return Position(module_slug=module.slug, problem_id=item.problem_id)
    for module in plan.modules:
        if module_complete(module, progress) or not module_unlocked(module, plan, progress):
            continue
        item = _first_open_item(module, progress)
        if item is not None:
            return Position(module_slug=module.slug, problem_id=item.problem_id)
    return None


def _changed(progress: Progress, now: datetime, **fields: object) -> Progress:
    """A new progress with ``fields`` set, the activity clock reset and ``seq`` bumped."""
    return progress.model_copy(
        update={**fields, "last_activity_at": now, "seq": progress.seq + 1}, deep=True
    )


def _with_item(progress: Progress, problem_id: str, item: ItemProgress) -> dict[str, ItemProgress]:
    items = dict(progress.items)
    items[problem_id] = item
    return items


def _settle(plan: SessionPlan, progress: Progress, now: datetime) -> Progress:
    """Complete the session when nothing is left to do."""
    if progress.active and session_complete(plan, progress):
        return progress.model_copy(
            update={"status": SessionStatus.completed, "position": None, "ended_at": now}
        )
    return progress


def start(plan: SessionPlan, now: datetime) -> Progress:
    """A fresh session, positioned on the first item it may work on."""
    progress = Progress(started_at=now, last_activity_at=now)
    progress = progress.model_copy(update={"position": next_position(plan, progress)})
    return _settle(plan, progress, now)


def record_submission(
    plan: SessionPlan, progress: Progress, problem_id: str, verdict: Verdict, now: datetime
) -> Progress:
    """Count a finished submission. An ``internal_error`` was not the learner's doing: it
    resets the idle clock but is not an attempt. Problems outside the plan and closed
    sessions change nothing."""
    if not progress.active or plan.item(problem_id) is None:
        return progress
    if verdict == Verdict.internal_error:
        return _changed(progress, now)
    current = progress.item(problem_id)
    updated = current.model_copy(
        update={
            "attempts": current.attempts + 1,
            "accepted": current.accepted + (1 if verdict == Verdict.accepted else 0),
        }
    )
    return _settle(
        plan, _changed(progress, now, items=_with_item(progress, problem_id, updated)), now
    )


def record_hint(
    plan: SessionPlan, progress: Progress, problem_id: str, level: int, now: datetime
) -> Progress:
    """The tutor gave a hint: the item's hint level only ever goes up."""
    if not progress.active or plan.item(problem_id) is None:
        return progress
    current = progress.item(problem_id)
    level = max(current.hint_level, min(max(level, 0), MAX_HINT_LEVEL))
    updated = current.model_copy(update={"hint_level": level})
    return _changed(progress, now, items=_with_item(progress, problem_id, updated))


AdvanceRefusalCode = Literal["not_active", "nothing_current", "stale", "not_mastered"]


class AdvanceRefusal(BaseModel):
    code: AdvanceRefusalCode
    message: str


def advance_refusal(
    plan: SessionPlan, progress: Progress, from_problem_id: str | None = None
) -> AdvanceRefusal | None:
    """Why the learner may not move past the current item now, or None if they may.

    ``from_problem_id`` (the item the learner believes is current) makes a retried or
    double-clicked advance harmless: the second one is refused instead of skipping
    the next item too.
    """
    if not progress.active:
        return AdvanceRefusal(code="not_active", message=f"the session is {progress.status.value}")
    position = progress.position
    if position is None:
        return AdvanceRefusal(code="nothing_current", message="there is no current item")
    if from_problem_id is not None and from_problem_id != position.problem_id:
        return AdvanceRefusal(
            code="stale",
            message=f"the current problem is '{position.problem_id}', not '{from_problem_id}'",
        )
    item = plan.item(position.problem_id)
    if item is None or is_mastered(item, progress) or item.skippable or not item.required:
        return None
    accepted = progress.item(item.problem_id).accepted
    return AdvanceRefusal(
        code="not_mastered",
        message=(
            f"problem '{item.problem_id}' is not mastered yet: it needs "
            f"{item.mastery_threshold} accepted submission(s) and has {accepted}, "
            "and it cannot be skipped"
        ),
    )


def advance(plan: SessionPlan, progress: Progress, now: datetime) -> Progress:
    """Move past the current item (marking it skipped when left unmastered). Callers
    check ``advance_refusal`` first; a refused advance changes nothing here either."""
    if advance_refusal(plan, progress) is not None or progress.position is None:
        return progress
    position = progress.position
    items = progress.items
    item = plan.item(position.problem_id)
    if item is not None and not is_mastered(item, progress):
        left = progress.item(item.problem_id).model_copy(update={"skipped": True})
        items = _with_item(progress, item.problem_id, left)
    moved = _changed(progress, now, items=items)
    moved = moved.model_copy(update={"position": next_position(plan, moved, position)})
    return _settle(plan, moved, now)


def close(progress: Progress, status: SessionStatus, now: datetime) -> Progress:
    """End an active session as ``ended`` (by the learner) or ``abandoned`` (idle).
    The position is kept: it records where the learner stopped."""
    if not progress.active:
        return progress
    return progress.model_copy(
        update={"status": status, "ended_at": now, "seq": progress.seq + 1}, deep=True
    )


# --------------------------------------------------------------------------- views


class ModuleStatus(StrEnum):
    locked = "locked"
    available = "available"
    completed = "completed"


NextAction = Literal["submit", "advance", "skip", "end", "start_new_session"]


class ItemView(BaseModel):
    problem_id: str
    title: str | None = None
    mastery_threshold: int
    required: bool
    skippable: bool
    attempts: int
    accepted: int
    hint_level: int
    mastered: bool
    skipped: bool
    current: bool


class CurrentItem(ItemView):
    module_slug: str


class ModuleView(BaseModel):
    slug: str
    title: str | None = None
    prerequisites: list[str]
    status: ModuleStatus
    items: list[ItemView]


class ProgressSummary(BaseModel):
    modules_completed: int
    modules_total: int
    items_done: int = Field(description="Required items mastered or skipped.")
    items_total: int = Field(description="Required items in the curriculum.")
    items_mastered: int = Field(description="Items (required or optional) mastered.")
    percent: int


class SessionView(BaseModel):
    """Everything a learner sees of a session; the same function renders it in the
    workflow (query, update result) and in the API (from the projection)."""

    status: SessionStatus
    seq: int
    started_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None
    current: CurrentItem | None
    modules: list[ModuleView]
    progress: ProgressSummary
    mastery: dict[str, float] = Field(
        description=(
            "Per skill trained by this session's items, a score from 0 (no evidence or "
            "never accepted) to 1: accepted / (attempts + 1) over the evaluated submissions "
            "to the items that train the skill (a first acceptance scores 0.5, repeated "
            "success approaches 1, a failure lowers it). Skills never attempted are absent."
        )
    )
    next_actions: list[NextAction]
    advance_blocked_reason: str | None = None


def summary(plan: SessionPlan, progress: Progress) -> ProgressSummary:
    required = [i for m in plan.modules for i in m.items if i.required]
    done = sum(1 for i in required if is_done(i, progress))
    completed = sum(1 for m in plan.modules if module_complete(m, progress))
    total_modules = len(plan.modules)
    mastered = sum(1 for m in plan.modules for i in m.items if is_mastered(i, progress))
    if progress.status == SessionStatus.completed:
        percent = 100
    elif required:
        percent = min(99, done * 100 // len(required))
    else:
        percent = completed * 100 // total_modules if total_modules else 0
    return ProgressSummary(
        modules_completed=completed,
        modules_total=total_modules,
        items_done=done,
        items_total=len(required),
        items_mastered=mastered,
        percent=percent,
    )


def mastery_by_skill(plan: SessionPlan, progress: Progress) -> dict[str, float]:
    """Each skill's mastery from the attempts at the items that train it; a problem
    listed in two modules counts once."""
    counts: dict[str, list[int]] = {}
    seen: set[str] = set()
    for item in (i for m in plan.modules for i in m.items):
        if item.problem_id in seen:
            continue
        seen.add(item.problem_id)
        state = progress.items.get(item.problem_id)
        if state is None or state.attempts == 0:
            continue
        for skill in item.skills:
            c = counts.setdefault(skill, [0, 0])
            c[0] += state.attempts
            c[1] += state.accepted
    return {skill: mastery_score(a, ok) for skill, (a, ok) in sorted(counts.items())}


def _item_view(item: ItemPlan, progress: Progress, current: bool) -> ItemView:
    state = progress.item(item.problem_id)
    return ItemView(
        problem_id=item.problem_id,
        mastery_threshold=item.mastery_threshold,
        required=item.required,
        skippable=item.skippable,
        attempts=state.attempts,
        accepted=state.accepted,
        hint_level=state.hint_level,
        mastered=is_mastered(item, progress),
        skipped=state.skipped,
        current=current,
    )


def next_actions(plan: SessionPlan, progress: Progress) -> list[NextAction]:
    if not progress.active:
        return ["start_new_session"]
    actions: list[NextAction] = []
    if progress.position is not None:
        actions.append("submit")
        item = plan.item(progress.position.problem_id)
        if advance_refusal(plan, progress) is None and item is not None:
            actions.append("advance" if is_mastered(item, progress) else "skip")
    actions.append("end")
    return actions


def view(plan: SessionPlan, progress: Progress) -> SessionView:
    position = progress.position
    modules: list[ModuleView] = []
    current: CurrentItem | None = None
    for module in plan.modules:
        if module_complete(module, progress):
            status = ModuleStatus.completed
        elif module_unlocked(module, plan, progress):
            status = ModuleStatus.available
        else:
            status = ModuleStatus.locked
        items = []
        for item in module.items:
            here = (
                position is not None
                and position.module_slug == module.slug
                and position.problem_id == item.problem_id
            )
            item_view = _item_view(item, progress, here)
            items.append(item_view)
            if here:
                current = CurrentItem(**item_view.model_dump(), module_slug=module.slug)
        modules.append(
            ModuleView(
                slug=module.slug,
                prerequisites=list(module.prerequisites),
                status=status,
                items=items,
            )
        )
    refusal = advance_refusal(plan, progress) if progress.active else None
    return SessionView(
        status=progress.status,
        seq=progress.seq,
        started_at=progress.started_at,
        last_activity_at=progress.last_activity_at,
        ended_at=progress.ended_at,
        current=current,
        modules=modules,
        progress=summary(plan, progress),
        mastery=mastery_by_skill(plan, progress),
        next_actions=next_actions(plan, progress),
        advance_blocked_reason=refusal.message if refusal is not None else None,
    )


def problem_ids(plan: SessionPlan) -> Iterable[str]:
    return (i.problem_id for m in plan.modules for i in m.items)
