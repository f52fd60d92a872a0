"""The recommendation rules: pure, table-tested."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from domain.recommendations import (
    ActiveSession,
    DueCard,
    Inputs,
    ProblemInfo,
    RecommendationKind,
    TrackInfo,
    rank,
)

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
SESSION = uuid.UUID("00000000-0000-0000-0000-000000000001")
PROBLEMS = [
    ProblemInfo(problem_id="p-rec", title="Flatten", skills=["recursion"], track_slug="py"),
    ProblemInfo(problem_id="p-loop", title="Sum evens", skills=["loops"], track_slug="py"),
    ProblemInfo(problem_id="p-bs", title="Binary search", skills=["search"], track_slug="py"),
]
TRACKS = [
    TrackInfo(
        slug="py",
        title="Python",
        first_problem_id="p-loop",
        first_title="Sum evens",
        skills=["loops", "recursion"],
    ),
    TrackInfo(
        slug="calc",
        title="Calculus",
        first_problem_id="m-1",
        first_title="Limits",
        skills=["algebra"],
    ),
]


def kinds(data: Inputs) -> list[tuple[str, str]]:
    return [(r.kind.value, r.target) for r in rank(data)]


def test_empty_history_gets_the_first_item_of_every_track() -> None:
    items = rank(Inputs(now=NOW, tracks=TRACKS))
    assert [(r.kind, r.target) for r in items] == [
        (RecommendationKind.start_track, "py"),
        (RecommendationKind.start_track, "calc"),
    ]
    assert items[0].reason == "start Python with Sum evens"


def test_overdue_then_weakest_skill_then_session_then_tracks() -> None:
    data = Inputs(
        now=NOW,
        has_history=True,
        due_cards=[
            DueCard(problem_id="p-a", due_at=NOW - timedelta(days=1)),
            DueCard(problem_id="p-b", due_at=NOW - timedelta(days=3)),
            DueCard(problem_id="p-c", due_at=NOW + timedelta(days=3)),  # not due
        ],
        mastery={"recursion": 0.35, "loops": 0.5, "algebra": 0.9},
        solved={"p-loop"},
        problems=PROBLEMS,
        sessions=[
            ActiveSession(
                session_id=SESSION,
                track_slug="py",
                track_title="Python Foundations",
                next_problem_id="p-bs",
                next_title="Binary search",
            )
        ],
        tracks=[
            *TRACKS,
            TrackInfo(
                slug="alg",
                title="Algebra II",
                first_problem_id="m-9",
                first_title="Rings",
                skills=["algebra"],
            ),
        ],
        started_tracks={"py"},
    )
    items = rank(data)
    assert [(r.kind.value, r.target) for r in items] == [
        ("review", "p-b"),
        ("review", "p-a"),
        ("practice_skill", "p-rec"),  # loops has no unsolved problem left
        ("continue_session", str(SESSION)),
        ("start_track", "alg"),
        ("start_track", "calc"),
    ]
    assert items[0].reason == "2 reviews are overdue; this one has been due for 3 days"
    assert items[2].reason.startswith(
        "your mastery of recursion is 0.35, the lowest of your skills"
    )
    assert items[3].reason == "next in Python Foundations: Binary search"
    assert [r.score for r in items] == sorted((r.score for r in items), reverse=True)


def test_nothing_is_recommended_twice() -> None:
    data = Inputs(
        now=NOW,
        has_history=True,
        due_cards=[DueCard(problem_id="p-rec", due_at=NOW - timedelta(hours=2))],
        mastery={"recursion": 0.1},
        problems=PROBLEMS,
        sessions=[
            ActiveSession(
                session_id=SESSION,
                track_slug="py",
                track_title="Python",
                next_problem_id="p-rec",
                next_title="Flatten",
            )
        ],
    )
    items = rank(data)
    assert [(r.kind.value, r.target) for r in items] == [("review", "p-rec")]
    assert items[0].reason == "1 review is overdue; this one has been due for 2 hours"


def test_the_limit_cuts_the_list() -> None:
    assert len(rank(Inputs(now=NOW, tracks=TRACKS), limit=1)) == 1
