"""Published tracks served from each API process's cache (``api.services.tracks``): fresh
after a publication (at once in the publishing process, within the recheck interval in
every other one), ETags that follow the content, bounded, and never a way around the token
or the rate limit.

The apps here are "replicas": each has its own cache and a real recheck interval (the
shared test app re-reads the fingerprint on every request); they share PostgreSQL, Redis
and the run's worker with the shared stack.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from api.services.tracks import TrackCatalog
from domain.settings import Settings
from tests.conftest import Stack
from tests.support import eventually
from tests.support.edge import assert_problem, client_of, new_app, running_app

Headers = dict[str, str]


class Replica:
    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app, self.client = app, client

    @property
    def catalog(self) -> TrackCatalog:
        catalog: TrackCatalog = self.app.state.resources.catalog
        return catalog

    async def slugs(self, headers: Headers) -> set[str]:
        r = await self.client.get("/v1/tracks", params={"limit": 100}, headers=headers)
        assert r.status_code == 200, r.text
        return {t["slug"] for t in r.json()["items"]}


@asynccontextmanager
async def replica(
    make_settings: Callable[..., Settings], task_queue: str, **overrides: Any
) -> AsyncIterator[Replica]:
    settings = make_settings(temporal_task_queue=task_queue, **overrides)
    async with AsyncExitStack() as es:
        app = await es.enter_async_context(running_app(new_app(settings)))
        client = await es.enter_async_context(client_of(app))
        yield Replica(app, client)


def authored_track(slug: str) -> dict[str, Any]:
    return {
        "slug": slug,
        "title": "Cached",
        "domain": "math",
        "description": "published by the cache test",
        "modules": [
            {
                "slug": "only",
                "title": "Only",
                "prerequisites": [],
                "items": [{"problem_id": "math-derivative-power"}],
            }
        ],
    }


async def test_a_publication_is_seen_at_once_where_it_was_made_and_soon_everywhere(
    stack: Stack,
    make_settings: Callable[..., Settings],
    task_queue: str,
    token_for: Callable[..., str],
    auth: Headers,
) -> None:
    admin = {"Authorization": f"Bearer {token_for(f'author-{uuid.uuid4().hex[:6]}', ['admin'])}"}
    slug = f"cached-{uuid.uuid4().hex[:8]}"
    # A: an interval longer than the test, so only its own publish can refresh it.
    # B: a short one, the bound within which another replica sees a publication.
    async with (
        replica(make_settings, task_queue, catalog_recheck_seconds=60) as a,
        replica(make_settings, task_queue, catalog_recheck_seconds=0.5) as b,
    ):
        created = await a.client.post("/v1/tracks", json=authored_track(slug), headers=admin)
        assert created.status_code == 201, created.text
        before = await a.client.get("/v1/tracks", params={"limit": 100}, headers=auth)
        assert slug not in {t["slug"] for t in before.json()["items"]}  # a draft only
        assert slug not in await b.slugs(auth)
        assert (await a.client.get(f"/v1/tracks/{slug}", headers=auth)).status_code == 404
        old_etag = before.headers["etag"]
        again = await a.client.get(
            "/v1/tracks", params={"limit": 100}, headers={**auth, "If-None-Match": old_etag}
        )
        assert again.status_code == 304
        assert again.headers["etag"] == old_etag
        assert again.headers["cache-control"] == "private, no-cache"
        reads = a.catalog.fingerprint_reads

        published = await a.client.post(f"/v1/tracks/{slug}/publish", headers=admin)
        assert published.status_code == 200, published.text

        # The publishing replica: at once, although its interval has not passed.
        stale = await a.client.get(
            "/v1/tracks", params={"limit": 100}, headers={**auth, "If-None-Match": old_etag}
        )
        assert stale.status_code == 200, stale.text
        assert slug in {t["slug"] for t in stale.json()["items"]}
        new_etag = stale.headers["etag"]
        assert new_etag != old_etag
        assert a.catalog.fingerprint_reads == reads + 1
        fresh = await a.client.get(
            "/v1/tracks", params={"limit": 100}, headers={**auth, "If-None-Match": new_etag}
        )
        assert fresh.status_code == 304
        assert fresh.content == b""
        detail = await a.client.get(f"/v1/tracks/{slug}", headers=auth)
        assert detail.status_code == 200, detail.text
        assert detail.json()["version"] == 1
        assert detail.json()["modules"][0]["items"][0]["problem_id"] == "math-derivative-power"
        detail_etag = detail.headers["etag"]
        unchanged = await a.client.get(
            f"/v1/tracks/{slug}", headers={**auth, "If-None-Match": detail_etag}
        )
        assert unchanged.status_code == 304

        # Another replica, which nobody told: within its interval.
        async def b_lists_it() -> bool:
            return slug in await b.slugs(auth)

        await eventually(b_lists_it, timeout=10)

        # A rename is a change of what the list shows, too.
        renamed = await a.client.patch(
            f"/v1/tracks/{slug}", json={"title": "Cached, renamed"}, headers=admin
        )
        assert renamed.status_code == 200, renamed.text
        after = await a.client.get(
            f"/v1/tracks/{slug}", headers={**auth, "If-None-Match": detail_etag}
        )
        assert after.status_code == 200
        assert after.json()["title"] == "Cached, renamed"

        async def b_shows_the_title() -> bool:
            r = await b.client.get(f"/v1/tracks/{slug}", headers=auth)
            return bool(r.json()["title"] == "Cached, renamed")

        await eventually(b_shows_the_title, timeout=10)


async def test_a_fresh_cache_answers_without_a_database_connection(
    stack: Stack, make_settings: Callable[..., Settings], task_queue: str, auth: Headers
) -> None:
    async with replica(make_settings, task_queue, catalog_recheck_seconds=60) as r:
        warm = await r.client.get("/v1/tracks", headers=auth)
        assert warm.status_code == 200
        slug = warm.json()["items"][0]["slug"]
        assert (await r.client.get(f"/v1/tracks/{slug}", headers=auth)).status_code == 200
        checkouts: list[object] = []
        engine = r.app.state.resources.engine.sync_engine
        event.listen(engine, "checkout", lambda *args: checkouts.append(args))
        for _ in range(5):
            again = await r.client.get("/v1/tracks", headers=auth)
            assert again.content == warm.content
            assert (await r.client.get(f"/v1/tracks/{slug}", headers=auth)).status_code == 200
        assert checkouts == []
        # The check itself can fail: a page not asked for yet does take a connection.
        assert (await r.client.get("/v1/tracks", params={"limit": 1}, headers=auth)).is_success
        assert checkouts


async def test_cached_answers_still_need_a_token_and_count_against_the_limit(
    stack: Stack,
    make_settings: Callable[..., Settings],
    task_queue: str,
    token_for: Callable[..., str],
) -> None:
    headers = {"Authorization": f"Bearer {token_for(f'cache-{uuid.uuid4().hex[:8]}')}"}
    async with replica(
        make_settings, task_queue, catalog_recheck_seconds=60, rate_limit_per_minute=4
    ) as r:
        assert (await r.client.get("/v1/tracks", headers=headers)).status_code == 200
        assert (await r.client.get("/v1/tracks/calculus-and-algebra", headers=headers)).is_success
        assert len(r.catalog) == 2
        # Both answers are in the cache now; without a valid token they are still refused.
        assert_problem(await r.client.get("/v1/tracks"), 401)
        assert_problem(await r.client.get("/v1/tracks/calculus-and-algebra"), 401)
        forged = {"Authorization": "Bearer " + headers["Authorization"][7:-4] + "AAAA"}
        assert_problem(await r.client.get("/v1/tracks", headers=forged), 401)
        # And each cached answer counts against the user's quota (4 a minute).
        assert (await r.client.get("/v1/tracks", headers=headers)).status_code == 200
        assert (await r.client.get("/v1/tracks", headers=headers)).status_code == 200
        limited = await r.client.get("/v1/tracks", headers=headers)
        body = assert_problem(limited, 429)
        assert "retry" in str(body["detail"])
        assert int(limited.headers["retry-after"]) > 0
        cached_detail = await r.client.get("/v1/tracks/calculus-and-algebra", headers=headers)
        assert_problem(cached_detail, 429)


async def test_the_cache_holds_at_most_its_bound_newest_first(
    stack: Stack, make_settings: Callable[..., Settings], task_queue: str, auth: Headers
) -> None:
    async with replica(
        make_settings, task_queue, catalog_recheck_seconds=60, catalog_cache_entries=3
    ) as r:
        pages = {}
        for limit in range(1, 6):
            got = await r.client.get("/v1/tracks", params={"limit": limit}, headers=auth)
            assert got.status_code == 200
            pages[limit] = got.content
            assert len(r.catalog) == min(limit, 3)
        assert len(r.catalog) == 3
        # The oldest pages were dropped, the newest kept: limit=5 answers from memory,
        # limit=1 is read again (and is the same page).
        checkouts: list[object] = []
        engine = r.app.state.resources.engine.sync_engine
        event.listen(engine, "checkout", lambda *args: checkouts.append(args))
        assert (await r.client.get("/v1/tracks", params={"limit": 5}, headers=auth)).content
        assert checkouts == []
        first = await r.client.get("/v1/tracks", params={"limit": 1}, headers=auth)
        assert first.content == pages[1]
        assert checkouts
        assert len(r.catalog) == 3
