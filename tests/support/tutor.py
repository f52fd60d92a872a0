"""Helpers of the tutor tests: a track of their own, sessions, an SSE reader, real servers.

SSE needs a real HTTP server: httpx's ASGITransport buffers a response until the app
returns, so neither tokens-as-they-come nor a client disconnect can be observed through
it. ``serve_started`` serves an app whose lifespan already runs (the ``stack`` fixture's)
with uvicorn and *without* running the lifespan a second time.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devservices.testing import serve
from domain import progression
from domain.curriculum import ItemSpec, ModuleSpec, TrackSpec
from domain.sessions import SessionDocument
from domain.upstream import Domain
from store import sessions as session_repo
from store import tracks as track_repo
from store.models import LearningSession
from tests.support.polling import eventually

SECRET_PROBLEM = "py-secret-sum"
OTHER_PROBLEM = "py-two-sum"
TUTOR_TRACK = TrackSpec(
    slug="tutor-tests",
    title="Tutor tests",
    domain=Domain.coding,
    modules=[
        ModuleSpec(
            slug="basics",
            title="Basics",
            items=[ItemSpec(problem_id=SECRET_PROBLEM), ItemSpec(problem_id=OTHER_PROBLEM)],
        )
    ],
)


async def publish_tutor_track(app: FastAPI, problem_bank_base: str) -> None:
    """Publish the tests' own track (idempotent), whatever the demo tracks hold."""
    from tools.seed_demo import seed

    await seed(
        app.state.resources.sessionmaker,
        problem_bank_base,
        specs=[TUTOR_TRACK],
        internal_token=app.state.resources.settings.problem_bank_token,
    )


async def new_session(sessionmaker: async_sessionmaker[AsyncSession], user_id: str) -> uuid.UUID:
    """A session row of ``user_id`` in the tutor track (no SessionWorkflow behind it)."""
    async with sessionmaker() as db, db.begin():
        version = await track_repo.get_published(db, TUTOR_TRACK.slug)
        assert version is not None, "publish_tutor_track first"
        session_id = uuid.uuid4()
        # The starting document SessionWorkflow's first projection writes (this track's
        # first item is the secret problem).
        plan = session_repo.plan_of(version)
        progress = progression.start(plan, datetime.now(UTC))
        document = SessionDocument(progress=progress, summary=progression.summary(plan, progress))
        db.add(
            LearningSession(
                id=session_id,
                user_id=user_id,
                track_id=version.track_id,
                track_version_id=version.id,
                status="active",
                current_problem_id=SECRET_PROBLEM,
                state=document.model_dump(mode="json"),
            )
        )
    return session_id


def serve_started(app: Any, *, host: str = "127.0.0.1") -> AbstractAsyncContextManager[str]:
    """Serve ``app`` with uvicorn on a free port, lifespan off (its owner runs it), without
    signal handlers (sse-starlette looks for a uvicorn server through SIGTERM's)."""
    return serve(app, host=host, lifespan="off", graceful_shutdown_seconds=1)


# --------------------------------------------------------------------------- SSE


@dataclass
class Event:
    event: str
    data: dict[str, Any]
    id: str | None = None


@dataclass
class Stream:
    status: int
    headers: httpx.Headers
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    raw: str = ""
    body: Any = None  # the JSON of a non-SSE (error) answer
    comments_before_first_token: int = 0

    @property
    def meta(self) -> dict[str, Any]:
        assert self.events, self.raw
        assert self.events[0].event == "meta", self.events[:1]
        return self.events[0].data

    @property
    def tokens(self) -> list[Event]:
        return [e for e in self.events if e.event == "token"]

    @property
    def text(self) -> str:
        return "".join(e.data["text"] for e in self.tokens)

    @property
    def last(self) -> Event:
        return self.events[-1]


async def read_stream(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    json_body: dict[str, Any] | None = None,
    stop_after_tokens: int | None = None,
    timeout: float = 30.0,
) -> Stream:
    """Read an SSE answer until ``done``/``error``, or disconnect after N tokens."""
    async with asyncio.timeout(timeout):
        async with client.stream(method, url, headers=headers, json=json_body) as response:
            out = Stream(status=response.status_code, headers=response.headers)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                await response.aread()
                out.raw = response.text
                out.body = response.json() if response.content else None
                return out
            fields: dict[str, str] = {}
            async for line in response.aiter_lines():
                out.raw += line + "\n"
                if line.startswith(":"):
                    out.comments.append(line)
                    if not out.tokens:
                        out.comments_before_first_token += 1
                    continue
                if line:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "data" and "data" in fields:
                        fields["data"] += "\n" + value
                    else:
                        fields[name] = value
                    continue
                if "data" not in fields:
                    fields = {}
                    continue
                out.events.append(
                    Event(
                        fields.get("event", "message"), json.loads(fields["data"]), fields.get("id")
                    )
                )
                fields = {}
                last = out.events[-1]
                if last.event in ("done", "error"):
                    return out
                if stop_after_tokens is not None and len(out.tokens) >= stop_after_tokens:
                    return out  # leaving the block closes the connection: a disconnect
            return out


def entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


async def finished_turn(
    client: httpx.AsyncClient, headers: dict[str, str], message_id: str, timeout: float = 20.0
) -> dict[str, Any]:
    body: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal body
        r = await client.get(f"/v1/tutor/messages/{message_id}", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        return bool(body["status"] != "streaming")

    await eventually(done, timeout=timeout, every=0.1)
    return body
