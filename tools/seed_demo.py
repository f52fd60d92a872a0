"""Load the demo tracks (``tools/demo_tracks/*.yaml``) idempotently.

``python -m tools.seed_demo``: for each file, the track is created if missing and
a new version is published only when the curriculum differs from the newest
published one, so running it twice changes nothing. Problem facts (title, kind,
skills, difficulty) come from Problem Bank over its public HTTP contract.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.curriculum import TrackSpec, validate_curriculum
from domain.settings import SettingsError, load_settings
from domain.upstream import INTERNAL_TOKEN_HEADER, ProblemList, ProblemPublic
from store import tracks as track_repo
from store.curricula import curriculum_of, publish_new_version, upsert_track
from store.db import make_engine, make_sessionmaker
from store.problems import write_snapshots

DEMO_DIR = Path(__file__).resolve().parent / "demo_tracks"


def load_specs(directory: Path = DEMO_DIR) -> list[TrackSpec]:
    return [
        TrackSpec.model_validate(yaml.safe_load(path.read_text()))
        for path in sorted(directory.glob("*.yaml"))
    ]


async def fetch_problems(
    problem_bank_base: str, ids: set[str], internal_token: str
) -> dict[str, ProblemPublic]:
    async with httpx.AsyncClient(
        base_url=problem_bank_base,
        timeout=10,
        headers={INTERNAL_TOKEN_HEADER: internal_token},
    ) as http:
        response = await http.get("/v1/problems", params={"ids": ",".join(sorted(ids))})
        response.raise_for_status()
    return {p.id: p for p in ProblemList.model_validate_json(response.content).items}


async def seed(
    sessionmaker: async_sessionmaker[AsyncSession],
    problem_bank_base: str,
    specs: list[TrackSpec] | None = None,
    *,
    internal_token: str,
) -> dict[str, str]:
    """Load the specs; returns ``{slug: "created" | "updated" | "unchanged"}``. Each
    published version gets its problem snapshots, as a publication by an author does."""
    specs = specs if specs is not None else load_specs()
    ids = {item.problem_id for s in specs for m in s.modules for item in m.items}
    problems = await fetch_problems(problem_bank_base, ids, internal_token)
    outcome: dict[str, str] = {}
    for spec in specs:
        curriculum = spec.curriculum()
        issues = validate_curriculum(curriculum, problems.keys())
        if issues:
            raise ValueError(f"demo track {spec.slug} is invalid: {issues}")
        async with sessionmaker() as db, db.begin():
            current = await track_repo.get_published(db, spec.slug)
            if current is not None and curriculum_of(current) == curriculum:
                outcome[spec.slug] = "unchanged"
                continue
            track = await upsert_track(db, spec)
            version = await publish_new_version(db, track, curriculum, problems)
            used = {item.problem_id for m in curriculum.modules for item in m.items}
            await write_snapshots(db, version.id, (problems[i] for i in sorted(used)))
            outcome[spec.slug] = "created" if current is None else "updated"
    return outcome


async def _main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    engine = make_engine(str(settings.db_url), pool_size=2)
    try:
        outcome = await seed(
            make_sessionmaker(engine),
            str(settings.problem_bank_base),
            internal_token=settings.problem_bank_token,
        )
    finally:
        await engine.dispose()
    for slug, what in outcome.items():
        print(f"demo track {slug}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main()))
