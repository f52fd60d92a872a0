"""What the recommendation rules read: plain SQL over the projections."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from domain import progression
from domain.recommendations import ActiveSession, DueCard, Inputs, ProblemInfo, TrackInfo
from store import sessions as session_repo

_ITEMS = text("""
    SELECT DISTINCT ON (t.slug, m.position, ci.position)
           t.slug, t.title AS track_title, ci.problem_id, ci.title, ci.skills,
           m.position AS m_pos, ci.position AS i_pos
    FROM tracks t
    JOIN track_versions v ON v.track_id = t.id AND v.status = 'published'
     AND v.version = (SELECT max(version) FROM track_versions
                      WHERE track_id = t.id AND status = 'published')
    JOIN modules m ON m.track_version_id = v.id
    JOIN curriculum_items ci ON ci.module_id = m.id
    ORDER BY t.slug, m.position, ci.position
    """)


async def _start_position(
    db: AsyncSession, version_id: uuid.UUID, started_at: datetime
) -> tuple[str | None, str | None]:
    """Where a session not yet projected by its workflow stands: the position it starts
    from (its workflow writes that state first; a read may come before it does)."""
    version = await session_repo.load_version(db, version_id)
    assert version is not None  # a foreign key
    position = progression.start(session_repo.plan_of(version), started_at).position
    if position is None:
        return None, None
    titles = {i.problem_id: i.title for m in version.modules for i in m.items}
    return position.problem_id, titles.get(position.problem_id)


async def inputs(db: AsyncSession, user_id: str, now: datetime) -> Inputs:
    due = await db.execute(
        text(
            "SELECT problem_id, due_at, track_slug FROM review_items "
            "WHERE user_id = :u AND due_at <= :now ORDER BY due_at LIMIT 200"
        ),
        {"u": user_id, "now": now},
    )
    mastery = await db.execute(
        text("SELECT skill, score FROM mastery WHERE user_id = :u"), {"u": user_id}
    )
    solved = await db.execute(
        text(
            "SELECT DISTINCT problem_id FROM submissions "
            "WHERE user_id = :u AND verdict = 'accepted'"
        ),
        {"u": user_id},
    )
    sessions = await db.execute(
        text(
            "SELECT s.id, s.status, t.slug, t.title, s.current_problem_id, "
            "(SELECT ci.title FROM curriculum_items ci JOIN modules m ON m.id = ci.module_id "
            " WHERE m.track_version_id = s.track_version_id "
            " AND ci.problem_id = s.current_problem_id LIMIT 1) AS next_title, "
            "s.state_seq < 0 AS unprojected, s.track_version_id, s.created_at "
            "FROM sessions s JOIN tracks t ON t.id = s.track_id "
            "WHERE s.user_id = :u ORDER BY s.updated_at DESC"
        ),
        {"u": user_id},
    )
    session_rows = [
        (
            (sid, status, slug, title, current, next_title)
            if not unprojected
            else (sid, status, slug, title, *await _start_position(db, version_id, created))
        )
        for sid, status, slug, title, current, next_title, unprojected, version_id, created in (
            sessions.all()
        )
    ]
    items = (await db.execute(_ITEMS)).all()
    cards = await db.scalar(
        text("SELECT count(*) FROM review_items WHERE user_id = :u"), {"u": user_id}
    )

    problems: list[ProblemInfo] = []
    tracks: dict[str, TrackInfo] = {}
    for slug, track_title, problem_id, title, skills, _m, _i in items:
        problems.append(
            ProblemInfo(problem_id=problem_id, title=title, skills=list(skills), track_slug=slug)
        )
        track = tracks.get(slug)
        if track is None:
            tracks[slug] = TrackInfo(
                slug=slug,
                title=track_title,
                first_problem_id=problem_id,
                first_title=title,
                skills=list(skills),
            )
        else:
            track.skills.extend(s for s in skills if s not in track.skills)
    mastery_map = {skill: float(score) for skill, score in mastery.all()}
    return Inputs(
        now=now,
        due_cards=[DueCard(problem_id=p, due_at=d, track_slug=s) for p, d, s in due.all()],
        mastery=mastery_map,
        solved={r[0] for r in solved.all()},
        problems=problems,
        sessions=[
            ActiveSession(
                session_id=sid,
                track_slug=slug,
                track_title=title,
                next_problem_id=current,
                next_title=next_title,
            )
            for sid, status, slug, title, current, next_title in session_rows
            if status == "active"
        ],
        tracks=list(tracks.values()),
        started_tracks={row[2] for row in session_rows},
        has_history=bool(cards) or bool(mastery_map) or bool(session_rows),
    )
