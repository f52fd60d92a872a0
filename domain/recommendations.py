"""Recommendations: a pure ranking over the projections, each item with a reason in words.

Order of the rules (each only adds what is not already in the list):

1. overdue reviews, most overdue first;
2. the weakest skills (mastery below ``WEAK_SKILL``), weakest first, each with a problem
   not yet solved that practises it;
3. the next item of each active session;
4. tracks not started whose skills build on mastered skills (mastery at least
   ``MASTERED_SKILL``).

A learner with no history gets the first item of every demo track. Nothing is
recommended twice in one list (one item per target and per problem).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

WEAK_SKILL = 0.6
MASTERED_SKILL = 0.8


class RecommendationKind(StrEnum):
    review = "review"
    practice_skill = "practice_skill"
    continue_session = "continue_session"
    start_track = "start_track"


class Recommendation(BaseModel):
    kind: RecommendationKind
    target: str = Field(description="A problem id, a session id or a track slug.")
    problem_id: str | None = None
    track_slug: str | None = None
    score: float = Field(description="Higher first; comparable within one list only.")
    reason: str


class RecommendationList(BaseModel):
    items: list[Recommendation]


class DueCard(BaseModel):
    problem_id: str
    due_at: datetime
    track_slug: str | None = None


class ProblemInfo(BaseModel):
    problem_id: str
    title: str
    skills: list[str]
    track_slug: str


class ActiveSession(BaseModel):
    session_id: uuid.UUID
    track_slug: str
    track_title: str
    next_problem_id: str | None
    next_title: str | None


class TrackInfo(BaseModel):
    slug: str
    title: str
    first_problem_id: str | None
    first_title: str | None
    skills: list[str]


class Inputs(BaseModel):
    now: datetime
    due_cards: list[DueCard] = Field(default_factory=list)
    mastery: dict[str, float] = Field(default_factory=dict)
    solved: set[str] = Field(default_factory=set)
    problems: list[ProblemInfo] = Field(default_factory=list)
    sessions: list[ActiveSession] = Field(default_factory=list)
    tracks: list[TrackInfo] = Field(default_factory=list)
    started_tracks: set[str] = Field(default_factory=set)
    has_history: bool = False


def _ago(delta_seconds: float) -> str:
    days = int(delta_seconds // 86400)
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = int(delta_seconds // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}" if hours >= 1 else "less than an hour"


def rank(data: Inputs, limit: int = 10) -> list[Recommendation]:
    """The ranked list (see the module's docstring for the rules)."""
    out: list[Recommendation] = []
    targets: set[tuple[str, str]] = set()
    problems_used: set[str] = set()

    def add(item: Recommendation) -> None:
        key = (item.kind.value, item.target)
        if key in targets or (item.problem_id and item.problem_id in problems_used):
            return
        targets.add(key)
        if item.problem_id:
            problems_used.add(item.problem_id)
        out.append(item)

    overdue = sorted((c for c in data.due_cards if c.due_at <= data.now), key=lambda c: c.due_at)
    for card in overdue:
        late = (data.now - card.due_at).total_seconds()
        count = len(overdue)
        add(
            Recommendation(
                kind=RecommendationKind.review,
                target=card.problem_id,
                problem_id=card.problem_id,
                track_slug=card.track_slug,
                score=round(400 + min(late / 86400, 99), 3),
                reason=f"{count} review{'s are' if count != 1 else ' is'} overdue; "
                f"this one has been due for {_ago(late)}",
            )
        )

    weak = sorted(
        ((s, m) for s, m in data.mastery.items() if m < WEAK_SKILL), key=lambda x: (x[1], x[0])
    )
    for position, (skill, score) in enumerate(weak):
        problem = next(
            (
                p
                for p in data.problems
                if skill in p.skills
                and p.problem_id not in data.solved
                and p.problem_id not in problems_used
            ),
            None,
        )
        if problem is None:
            continue
        lowest = ", the lowest of your skills" if position == 0 else ""
        add(
            Recommendation(
                kind=RecommendationKind.practice_skill,
                target=problem.problem_id,
                problem_id=problem.problem_id,
                track_slug=problem.track_slug,
                score=round(300 + (1 - score) * 10, 3),
                reason=f"your mastery of {skill} is {score:.2f}{lowest}; "
                f"{problem.title} practises it",
            )
        )

    for session in data.sessions:
        if session.next_problem_id is None:
            continue
        add(
            Recommendation(
                kind=RecommendationKind.continue_session,
                target=str(session.session_id),
                problem_id=session.next_problem_id,
                track_slug=session.track_slug,
                score=200.0,
                reason=f"next in {session.track_title}: "
                f"{session.next_title or session.next_problem_id}",
            )
        )

    mastered = {s for s, m in data.mastery.items() if m >= MASTERED_SKILL}
    if not data.has_history:
        for track in data.tracks:
            if track.first_problem_id is None:
                continue
            add(
                Recommendation(
                    kind=RecommendationKind.start_track,
                    target=track.slug,
                    problem_id=track.first_problem_id,
                    track_slug=track.slug,
                    score=100.0,
                    reason=f"start {track.title} with "
                    f"{track.first_title or track.first_problem_id}",
                )
            )
    else:
        building = [
            (len(mastered & set(t.skills)), t)
            for t in data.tracks
            if t.slug not in data.started_tracks and mastered & set(t.skills)
        ]
        for overlap, track in sorted(building, key=lambda x: (-x[0], x[1].slug)):
            skills = ", ".join(sorted(mastered & set(track.skills)))
            add(
                Recommendation(
                    kind=RecommendationKind.start_track,
                    target=track.slug,
                    problem_id=track.first_problem_id,
                    track_slug=track.slug,
                    score=round(100 + overlap, 3),
                    reason=f"{track.title} builds on what you have mastered: {skills}",
                )
            )
    return out[:limit]
