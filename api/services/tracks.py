"""Published tracks as the API serves them: finished answers, kept in process memory.

A published version never changes, so ``GET /v1/tracks`` and ``GET /v1/tracks/{slug}`` are
the same bytes until something is published (or a track renamed). ``TrackCatalog`` keeps
those bytes with their ``ETag``, so a request that finds them fresh opens no database
session, builds no query and serialises nothing (before: ~5 ms of CPU per request, most
of it SQLAlchemy building and running the list query; see bench/results).

Freshness: every entry belongs to a *fingerprint* of what is published
(``store.tracks.published_fingerprint``: the published version ids and their tracks'
mutable fields, read from PostgreSQL, the source of truth). Each process re-reads it at
most once per ``CO_CATALOG_RECHECK_SECONDS`` (default 1 s) and drops every entry when it
moved. Why this and not a key bumped by the publisher:

- every writer is covered without its cooperation: the publish activity, ``PATCH``, the
  demo loader, an operator's SQL; a bump that was lost (Redis down after the commit) cannot
  leave a replica stale forever;
- any number of API replicas and workers: each replica's answer reflects every commit
  older than ``recheck`` seconds, with no message between processes;
- the cost is one small aggregate per second per process instead of a round trip (to
  PostgreSQL or Redis) on every request;
- the process that published or renamed re-reads at once (``invalidate_after_commit``), so
  an author reads their own change on the next request.

The entries are bounded (LRU, ``CO_CATALOG_CACHE_ENTRIES``): the key holds ``limit``,
``domain`` and the cursor, which a client chooses. The JWT and the rate limit run before
this (middleware and the route's dependency), so a cached answer never skips them.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.pagination import encode_key_cursor
from domain.tracks import ModuleOut, TrackDetail, TrackList, TrackSummary
from domain.upstream import Domain
from store import tracks as repo
from store.models import TrackVersion


@dataclass(frozen=True)
class Body:
    """A finished JSON answer and its strong ``ETag``."""

    raw: bytes
    etag: str

    @classmethod
    def of(cls, raw: bytes) -> Body:
        return cls(raw, '"' + hashlib.sha256(raw).hexdigest()[:32] + '"')


Build = Callable[[AsyncSession], Awaitable[bytes | None]]


class TrackCatalog:
    """Answers about published tracks, valid for one fingerprint of what is published."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        recheck_seconds: float = 1.0,
        max_entries: int = 256,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._recheck = recheck_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Body] = OrderedDict()
        self._fingerprint: str | None = None
        self._checked_at = -float("inf")  # monotonic start of the last fingerprint read
        self._generation = 0  # moves with the fingerprint: a build under an old one is dropped
        self._lock = asyncio.Lock()
        self.fingerprint_reads = 0  # for tests and the curious: how often we asked PostgreSQL

    def __len__(self) -> int:
        return len(self._entries)

    def invalidate(self) -> None:
        """Re-read the fingerprint on the next request instead of waiting for ``recheck``."""
        self._checked_at = -float("inf")

    def invalidate_after_commit(self, db: AsyncSession) -> None:
        """``invalidate`` once ``db``'s transaction has committed (not before: a request
        re-reading the fingerprint between the flush and the commit would still see the old
        one and keep it for ``recheck`` seconds)."""
        event.listen(db.sync_session, "after_commit", lambda _s: self.invalidate(), once=True)

    async def _ensure_fresh(self) -> None:
        if time.monotonic() - self._checked_at < self._recheck:
            return
        async with self._lock:  # one reader per process; the others wait for its answer
            started = time.monotonic()
            if started - self._checked_at < self._recheck:
                return
            async with self._sessionmaker() as db:
                fingerprint = await repo.published_fingerprint(db)
            self.fingerprint_reads += 1
            if fingerprint != self._fingerprint:
                self._entries.clear()
                self._fingerprint = fingerprint
                self._generation += 1
            # The start of the read, not its end: what it saw is at least that fresh.
            self._checked_at = started

    async def get(self, key: Hashable, build: Build) -> Body | None:
        """The answer for ``key``: cached if the fingerprint still holds, else ``build``
        (``None``, e.g. not found, is not cached)."""
        await self._ensure_fresh()
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return found
        generation = self._generation
        async with self._sessionmaker() as db:
            raw = await build(db)
        if raw is None:
            return None
        body = Body.of(raw)
        # The fingerprint was read before the rows, so these rows are at least as new as it;
        # but if it moved while we read them, they may be older than the new one.
        if generation == self._generation:
            self._entries[key] = body
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return body

    async def track_list(
        self, domain: Domain | None, limit: int, after: tuple[str, str] | None
    ) -> Body:
        async def build(db: AsyncSession) -> bytes:
            rows = await repo.list_published_summaries(
                db, domain=domain.value if domain else None, limit=limit + 1, after=after
            )
            page, more = rows[:limit], len(rows) > limit
            last = page[-1] if page else None
            return (
                TrackList(
                    items=[TrackSummary.model_validate(r) for r in page],
                    next_cursor=(
                        encode_key_cursor(str(last["domain"]), str(last["slug"]))
                        if more and last
                        else None
                    ),
                )
                .model_dump_json()
                .encode()
            )

        body = await self.get(("list", domain, limit, after), build)
        assert body is not None  # a list is never "not found"
        return body

    async def track_detail(self, slug: str) -> Body | None:
        async def build(db: AsyncSession) -> bytes | None:
            version = await repo.get_published(db, slug)
            return None if version is None else detail_of(version).model_dump_json().encode()

        return await self.get(("detail", slug), build)


def detail_of(version: TrackVersion) -> TrackDetail:
    """A published version as the API shows it (its modules and items loaded)."""
    track = version.track
    return TrackDetail(
        id=track.id,
        slug=track.slug,
        title=track.title,
        domain=Domain(track.domain),
        description=track.description,
        version=version.version,
        published_at=version.published_at,
        module_count=len(version.modules),
        problem_count=sum(len(m.items) for m in version.modules),
        items_total=sum(1 for m in version.modules for i in m.items if i.required),
        modules=[ModuleOut.model_validate(m) for m in version.modules],
    )
