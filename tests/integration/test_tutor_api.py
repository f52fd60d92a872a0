"""The tutor through the real path: API -> Temporal -> activities -> dev Tutor -> Redis
Stream -> SSE relay (a real uvicorn server) -> client; transcripts in PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from api.sse_slots import Lease, Refusal, SseSlots
from domain.contracts import (
    tutor_workflow_id,
)
from domain.tutor import message_id_for_key, stream_key
from store.models import TutorMessage
from tests.conftest import Stack
from tests.support import eventually, record_history
from tests.support.edge import assert_problem, client_of, new_app, running_app
from tests.support.servers import free_port
from tests.support.tutor import (
    OTHER_PROBLEM,
    entry_key,
    finished_turn,
    new_session,
    publish_tutor_track,
    read_stream,
    serve_started,
)

URL = "/v1/tutor/messages"


@pytest.fixture(scope="module")
async def tutor_stack(stack: Stack) -> Stack:
    await publish_tutor_track(stack.app, stack.devservices.problem_bank)
    return stack


@pytest.fixture(scope="module")
async def http(tutor_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the shared stack's API served by a real uvicorn server."""
    async with serve_started(tutor_stack.app) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield client


@pytest.fixture
async def session_id(tutor_stack: Stack, user_id: str) -> uuid.UUID:
    return await new_session(tutor_stack.app.state.resources.sessionmaker, user_id)


def slots_of(stack: Stack) -> SseSlots:
    res = stack.app.state.resources
    return SseSlots(
        res.redis,
        max_streams=stack.settings.sse_max_streams,
        ttl_seconds=stack.settings.sse_slot_ttl_seconds,
    )


def ask(
    session_id: uuid.UUID, message: str = "How do I start?", **extra: object
) -> dict[str, object]:
    return {"session_id": str(session_id), "problem_id": OTHER_PROBLEM, "message": message, **extra}


async def test_tokens_arrive_in_order_and_the_transcript_is_their_concatenation(
    tutor_stack: Stack, http: httpx.AsyncClient, auth: dict[str, str], session_id: uuid.UUID
) -> None:
    s = await read_stream(http, "POST", URL, headers=auth, json_body=ask(session_id))

    assert s.status == 200, s.raw
    assert s.headers["content-type"].startswith("text/event-stream")
    assert s.events[0].event == "meta"
    assert s.events[0].id is None
    message_id = s.meta["message_id"]
    assert s.meta["hint_level"] == 1
    assert s.meta["capped"] is False
    assert len(s.tokens) > 10
    ids = [entry_key(e.id or "") for e in s.tokens]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert s.last.event == "done"
    assert s.last.data == {
        "message_id": message_id,
        "chars": len(s.text),
    }
    assert s.text.startswith("Here is a nudge")

    # `done` is sent after the transcript is stored: no waiting needed.
    stored = (await http.get(f"{URL}/{message_id}", headers=auth)).json()
    assert stored["status"] == "completed"
    assert stored["response"] == s.text
    assert stored["links"]["stream"] == f"{URL}/{message_id}/stream"

    listing = await http.get(f"/v1/sessions/{session_id}/tutor", headers=auth)
    assert listing.status_code == 200
    assert [m["id"] for m in listing.json()["items"]] == [message_id]
    await record_history(
        tutor_stack.temporal, tutor_workflow_id(message_id), "tutor_turn_completed"
    )
    # The same turn on the path where the API commits first (no tutor.begin).
    await record_history(
        tutor_stack.temporal, tutor_workflow_id(message_id), "tutor_turn_api_commits_first"
    )


async def test_asking_for_more_than_allowed_is_capped_and_meta_says_so(
    http: httpx.AsyncClient, auth: dict[str, str], session_id: uuid.UUID
) -> None:
    first = await read_stream(
        http, "POST", URL, headers=auth, json_body=ask(session_id, hint_level=3)
    )
    assert first.meta["hint_level"] == 1
    assert first.meta["hint_level_requested"] == 3
    assert first.meta["capped"] is True
    # One hint given: level 2 is open now, and asking for it is not capped.
    second = await read_stream(
        http, "POST", URL, headers=auth, json_body=ask(session_id, hint_level=2)
    )
    assert (second.meta["hint_level"], second.meta["capped"]) == (2, False)
    assert second.text.startswith("Let's name the idea")
    stored = (await http.get(f"{URL}/{first.meta['message_id']}", headers=auth)).json()
    assert (stored["hint_level"], stored["hint_level_requested"], stored["capped"]) == (1, 3, True)


async def test_disconnect_then_resume_with_last_event_id_misses_and_repeats_nothing(
    tutor_stack: Stack,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    session_id: uuid.UUID,
    user_id: str,
) -> None:
    first = await read_stream(
        http, "POST", URL, headers=auth, json_body=ask(session_id), stop_after_tokens=4
    )
    assert len(first.tokens) == 4
    message_id = first.meta["message_id"]
    # The turn goes on without its client, and the slot is given back.
    slots = slots_of(tutor_stack)
    await eventually(lambda: _zero(slots, user_id))

    rest = await read_stream(
        http,
        "GET",
        f"{URL}/{message_id}/stream",
        headers={**auth, "Last-Event-ID": first.tokens[-1].id or ""},
    )
    assert rest.status == 200, rest.raw
    assert rest.meta["resumed"] is True
    assert rest.last.event == "done"
    ids = [e.id for e in first.tokens + rest.tokens]
    assert len(set(ids)) == len(ids)
    stored = await finished_turn(http, auth, message_id)
    assert first.text + rest.text == stored["response"]

    # Resuming after the end only repeats how it ended; without an id, everything again.
    after_done = await read_stream(
        http,
        "GET",
        f"{URL}/{message_id}/stream",
        headers={**auth, "Last-Event-ID": rest.last.id or ""},
    )
    assert [e.event for e in after_done.events] == ["meta", "done"]
    replay = await read_stream(http, "GET", f"{URL}/{message_id}/stream", headers=auth)
    assert replay.text == stored["response"]


async def _zero(slots: SseSlots, user_id: str) -> bool:
    return await slots.in_use(user_id) == 0


async def test_a_third_concurrent_stream_is_refused_until_a_slot_is_free(
    tutor_stack: Stack,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    session_id: uuid.UUID,
    user_id: str,
) -> None:
    slots = slots_of(tutor_stack)

    async def at_most_one() -> bool:
        return await slots.in_use(user_id) <= 1

    async with http.stream("POST", URL, headers=auth, json=ask(session_id)) as first:
        async with http.stream("POST", URL, headers=auth, json=ask(session_id)) as second:
            assert (first.status_code, second.status_code) == (200, 200)
            assert await slots.in_use(user_id) == 2

            refused = await http.post(URL, headers=auth, json=ask(session_id))
            body = assert_problem(refused, 429)
            assert int(refused.headers["retry-after"]) >= 1
            assert "at most 2" in str(body["detail"])
            # A refused POST starts nothing.
            listing = (await http.get(f"/v1/sessions/{session_id}/tutor", headers=auth)).json()
            assert len(listing["items"]) == 2
            # Resuming is a stream too.
            mid = listing["items"][0]["id"]
            assert (await http.get(f"{URL}/{mid}/stream", headers=auth)).status_code == 429

        # The second client went away: its slot comes back while the first is still open.
        await eventually(at_most_one)
        third = await read_stream(http, "POST", URL, headers=auth, json_body=ask(session_id))
        assert third.status == 200
        assert third.last.event == "done"

    # A stream that ended and a client that left: no slot is held any more.
    await eventually(lambda: _zero(slots, user_id))


async def test_slot_of_a_dead_api_process_frees_itself_after_its_ttl(
    tutor_stack: Stack,
) -> None:
    res = tutor_stack.app.state.resources
    slots = SseSlots(res.redis, max_streams=2, ttl_seconds=0.6)
    user = f"crashed-{uuid.uuid4().hex[:8]}"
    held = [await slots.acquire(user) for _ in range(2)]  # never released: the process "died"
    assert all(isinstance(h, Lease) for h in held)
    refused = await slots.acquire(user)
    assert isinstance(refused, Refusal)
    assert refused.retry_after >= 1
    await asyncio.sleep(0.7)
    assert await slots.in_use(user) == 0
    assert isinstance(await slots.acquire(user), Lease)


async def test_a_refreshed_lease_outlives_its_ttl_and_a_released_one_is_gone(
    tutor_stack: Stack,
) -> None:
    res = tutor_stack.app.state.resources
    slots = SseSlots(res.redis, max_streams=1, ttl_seconds=0.6)
    user = f"live-{uuid.uuid4().hex[:8]}"
    lease = await slots.acquire(user)
    for _ in range(4):
        await asyncio.sleep(0.3)
        assert isinstance(lease, Lease)
        assert await lease.refresh()
    assert isinstance(await slots.acquire(user), Refusal)
    assert isinstance(lease, Lease)
    await lease.release()
    assert await slots.in_use(user) == 0
    assert not await res.redis.exists(f"tutor:{uuid.uuid4()}")  # nothing else leaked in


async def test_sessions_messages_and_problems_of_others_are_not_found(
    tutor_stack: Stack,
    auth: dict[str, str],
    session_id: uuid.UUID,
    token_for: Callable[..., str],
) -> None:
    client = tutor_stack.client
    stranger = {"Authorization": f"Bearer {token_for('someone-else')}"}
    assert_problem(await client.post(URL, headers=stranger, json=ask(session_id)), 404)
    assert_problem(await client.get(f"/v1/sessions/{session_id}/tutor", headers=stranger), 404)
    unpublished = {**ask(session_id), "problem_id": "no-such-problem"}
    assert_problem(await client.post(URL, headers=auth, json=unpublished), 404)
    assert_problem(await client.get(f"{URL}/{uuid.uuid4()}", headers=auth), 404)
    assert_problem(await client.get(f"{URL}/{uuid.uuid4()}/stream", headers=auth), 404)
    too_long = ask(session_id, "x" * (tutor_stack.settings.tutor_max_message_chars + 1))
    assert_problem(await client.post(URL, headers=auth, json=too_long), 422)
    # A published problem of another track is not this session's to ask about.
    elsewhere = {**ask(session_id), "problem_id": "math-derivative-power"}
    refused = await client.post(URL, headers=auth, json=elsewhere)
    assert_problem(refused, 422)
    assert "track version" in refused.json()["detail"]


async def test_a_retried_post_with_the_same_idempotency_key_streams_the_same_turn(
    tutor_stack: Stack, http: httpx.AsyncClient, auth: dict[str, str], session_id: uuid.UUID
) -> None:
    keyed = {**auth, "Idempotency-Key": f"ask-{uuid.uuid4()}"}
    first = await read_stream(http, "POST", URL, headers=keyed, json_body=ask(session_id))
    again = await read_stream(http, "POST", URL, headers=keyed, json_body=ask(session_id))
    assert again.meta["message_id"] == first.meta["message_id"]
    assert [e.id for e in again.tokens] == [e.id for e in first.tokens]
    assert again.text == first.text
    listing = (await http.get(f"/v1/sessions/{session_id}/tutor", headers=auth)).json()
    assert len(listing["items"]) == 1
    other = await http.post(URL, headers=keyed, json=ask(session_id, "Something else"))
    assert_problem(other, 422)

    bad = await http.get(
        f"{URL}/{first.meta['message_id']}/stream", headers={**auth, "Last-Event-ID": "nope"}
    )
    assert_problem(bad, 422)
    # Once a finished turn's stream has expired, the transcript is the answer.
    redis = tutor_stack.app.state.resources.redis
    await redis.delete(stream_key(first.meta["message_id"]))
    gone = await http.get(f"{URL}/{first.meta['message_id']}/stream", headers=auth)
    assert_problem(gone, 410)


async def test_a_hint_given_is_recorded_by_the_learners_session_workflow(
    tutor_stack: Stack, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await http.post("/v1/sessions", json={"track_slug": "tutor-tests"}, headers=auth)
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    s = await read_stream(
        http, "POST", URL, headers=auth, json_body=ask(uuid.UUID(session_id), hint_level=1)
    )
    assert s.last.event == "done"

    async def hint_recorded() -> bool:
        view = (await http.get(f"/v1/sessions/{session_id}", headers=auth)).json()
        items = [i for m in view["modules"] for i in m["items"]]
        return any(i["problem_id"] == OTHER_PROBLEM and i["hint_level"] == 1 for i in items)

    await eventually(hint_recorded, timeout=15, every=0.2)
    await record_history(
        tutor_stack.temporal, tutor_workflow_id(s.meta["message_id"]), "tutor_turn_signals_session"
    )


async def test_a_turn_temporal_cannot_take_answers_503_and_is_taken_back(
    tutor_stack: Stack,
    make_settings: Callable[..., Any],
    http: httpx.AsyncClient,
    auth: dict[str, str],
    user_id: str,
    session_id: uuid.UUID,
) -> None:
    settings = make_settings(temporal_address=f"127.0.0.1:{free_port()}")
    async with (
        running_app(new_app(settings)) as app,
        client_of(app, raise_app_exceptions=False) as client,
    ):
        refused = await client.post(URL, headers=auth, json=ask(session_id))
    assert_problem(refused, 503)
    # Nothing happened: no turn is recorded and the SSE slot was given back.
    listing = (await http.get(f"/v1/sessions/{session_id}/tutor", headers=auth)).json()
    assert listing["items"] == []
    slots = slots_of(tutor_stack)
    leases = [await slots.acquire(user_id) for _ in range(tutor_stack.settings.sse_max_streams)]
    assert all(isinstance(lease, Lease) for lease in leases)
    for lease in leases:
        assert isinstance(lease, Lease)
        await lease.release()


async def test_a_turn_recorded_without_its_workflow_is_answered_on_the_retried_post(
    tutor_stack: Stack,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    user_id: str,
    session_id: uuid.UUID,
) -> None:
    """What a POST that died between its commit and its start leaves: a ``streaming``
    row and no workflow. The client's retry (same key) starts the workflow."""
    key = f"ask-{uuid.uuid4()}"
    message_id = message_id_for_key(user_id, key)
    async with tutor_stack.app.state.resources.sessionmaker() as db, db.begin():
        db.add(
            TutorMessage(
                id=message_id,
                user_id=user_id,
                session_id=session_id,
                problem_id=OTHER_PROBLEM,
                message="How do I start?",
                hint_level=1,
                status="streaming",
            )
        )
    s = await read_stream(
        http, "POST", URL, headers={**auth, "Idempotency-Key": key}, json_body=ask(session_id)
    )
    assert s.meta["message_id"] == str(message_id)
    assert s.last.event == "done", s.raw
    assert s.text.startswith("Here is a nudge")
    stored = (await http.get(f"{URL}/{message_id}", headers=auth)).json()
    assert (stored["status"], stored["response"]) == ("completed", s.text)
