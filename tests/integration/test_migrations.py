"""Alembic: upgrade head, downgrade base and upgrade head again, on a real database;
and the migrated schema equals the models."""

from __future__ import annotations

import asyncio
import os

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from store.models import Base
from tests.conftest import PG_HOST, PG_USER, migrate


async def _tables(url_db: str) -> set[str]:
    conn = await asyncpg.connect(host=PG_HOST, user=PG_USER, database=url_db)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


async def test_upgrade_downgrade_upgrade_round_trip() -> None:
    name = f"co_migr_{os.getpid()}"
    admin = await asyncpg.connect(host=PG_HOST, user=PG_USER, database="postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}/{name}"
    try:
        await asyncio.to_thread(migrate, url, "head")
        assert {"tracks", "submissions", "results", "sessions"} <= await _tables(name)
        await asyncio.to_thread(migrate, url, "base", down=True)
        assert await _tables(name) <= {"alembic_version"}
        await asyncio.to_thread(migrate, url, "head")
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                diff = await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
        finally:
            await engine.dispose()
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
