"""Learning sessions through the real path: API -> Temporal (SessionWorkflow,
SubmissionWorkflow) -> activities -> dev services -> PostgreSQL projection."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from domain.mastery import mastery_score
from tests.conftest import Stack
from tests.support import eventually, record_history

MATH_TRACK = "calculus-and-algebra"
SYSTEMS_TRACK = "systems-fundamentals"
WAIT = {"Prefer": "wait=30"}
WRONG = "12345"  # a well-formed answer no demo math problem expects

Headers = dict[str, str]
Bundle = Callable[[str], Awaitable[dict[str, Any]]]


async def start(client: httpx.AsyncClient, headers: Headers, slug: str) -> httpx.Response:
    return await client.post("/v1/sessions", json={"track_slug": slug}, headers=headers)


async def answer(
    client: httpx.AsyncClient, headers: Headers, session_id: str, problem_id: str, text: str
) -> dict[str, Any]:
    r = await client.post(
        "/v1/submissions",
        json={"problem_id": problem_id, "session_id": session_id, "answer": text},
        headers={**headers, **WAIT},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def session_until(
    client: httpx.AsyncClient,
    headers: Headers,
    session_id: str,
    ready: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """The projected session once ``ready`` holds (projections follow signals by a few ms)."""
    body: dict[str, Any] = {}

    async def there() -> bool:
        r = await client.get(f"/v1/sessions/{session_id}", headers=headers)
        assert r.status_code == 200, r.text
        body.clear()
        body.update(r.json())
        return ready(body)

    await eventually(
        there, timeout=10, failure=lambda: f"session {session_id} never got there: {body}"
    )
    return body


def item_of(session: dict[str, Any], problem_id: str) -> dict[str, Any]:
    for module in session["modules"]:
        for item in module["items"]:
            if item["problem_id"] == problem_id:
                return dict(item)
    raise KeyError(problem_id)


async def test_a_learner_completes_the_math_track_by_mastery(
    stack: Stack, auth: Headers, bundle_of: Bundle
) -> None:
    client = stack.client
    r = await start(client, auth, MATH_TRACK)
    assert r.status_code == 201, r.text
    session = r.json()
    sid = session["id"]
    assert r.headers["location"] == f"/v1/sessions/{sid}"
    assert session["status"] == "active"
    assert session["current"]["problem_id"] == "math-derivative-power"
    assert session["current"]["title"]  # titles come from the curriculum items
    assert [m["status"] for m in session["modules"]] == ["available", "available", "locked"]
    # The session rules: only the current item takes submissions of this session.
    for pid, code in [
        ("math-antiderivative-poly", "module_locked"),
        ("math-expand-binomial", "not_current"),
        ("sys-cache-hit-rate", "not_in_track"),
    ]:
        refused = await client.post(
            "/v1/submissions",
            json={"problem_id": pid, "session_id": sid, "answer": "x"},
            headers=auth,
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"].endswith("/item-not-available")
        assert refused.json()["errors"][0]["type"] == code
    again = await start(client, auth, MATH_TRACK)
    assert again.status_code == 200
    assert again.json()["id"] == sid

    track = (await client.get(f"/v1/tracks/{MATH_TRACK}", headers=auth)).json()
    skills = {i["problem_id"]: i["skills"] for m in track["modules"] for i in m["items"]}
    attempts: dict[str, list[int]] = {}  # problem -> [attempts, accepted]
    wrong_first = {"math-derivative-power", "math-solve-linear", "math-definite-integral"}

    while session["status"] == "active":
        current = session["current"]
        pid = current["problem_id"]
        # The learner reads the problem through CO only, embedded and on its own.
        embedded = session["current_problem"]
        assert embedded["id"] == pid
        assert embedded["statement"]
        assert embedded["source"]["session_id"] == sid
        alone = await client.get(session["links"]["current_problem"], headers=auth)
        assert alone.status_code == 200, alone.text
        assert alone.json() == embedded
        if not current["required"]:
            assert session["next_actions"] == ["submit", "skip", "end"]
        else:
            if pid in wrong_first:
                result = await answer(client, auth, sid, pid, WRONG)
                assert result["verdict"] == "wrong_answer"
                attempts.setdefault(pid, [0, 0])[0] += 1
                refused = await client.post(
                    f"/v1/sessions/{sid}/advance", json={"from_problem_id": pid}, headers=auth
                )
                assert refused.status_code == 409, refused.text
                assert refused.headers["content-type"].startswith("application/problem+json")
                problem = refused.json()
                assert problem["type"].endswith("/advance-refused")
                assert f"'{pid}' is not mastered yet" in problem["detail"]
                assert problem["errors"][0]["type"] == "not_mastered"
            right = (await bundle_of(pid))["expected_answer"]
            result = await answer(client, auth, sid, pid, right)
            assert result["verdict"] == "accepted", result
            counts = attempts.setdefault(pid, [0, 0])
            counts[0] += 1
            counts[1] += 1
            after = await session_until(
                client, auth, sid, lambda s, pid=pid: item_of(s, pid)["mastered"]
            )
            if after["status"] != "active":
                session = after
                break
        r = await client.post(
            f"/v1/sessions/{sid}/advance", json={"from_problem_id": pid}, headers=auth
        )
        assert r.status_code == 200, r.text
        session = r.json()
        assert item_of(session, pid)["skipped"] == (not current["required"])
        # A retry of that advance (its answer lost) answers the current state again.
        retried = await client.post(
            f"/v1/sessions/{sid}/advance", json={"from_problem_id": pid}, headers=auth
        )
        assert retried.status_code == 200, retried.text
        assert retried.json()["current"] == session["current"]
        assert retried.json()["seq"] == session["seq"]

    assert session["status"] == "completed"
    assert session["current"] is None
    assert session["ended_at"] is not None
    assert session["progress"] == {
        "modules_completed": 3,
        "modules_total": 3,
        "items_done": 9,
        "items_total": 9,
        "items_mastered": 9,
        "percent": 100,
    }
    assert all(m["status"] == "completed" for m in session["modules"])
    for pid, (tried, ok) in attempts.items():
        item = item_of(session, pid)
        assert (item["attempts"], item["accepted"], item["mastered"]) == (tried, ok, True)
        assert item["hint_level"] == 0
    expected: dict[str, list[int]] = {}
    for pid, (tried, ok) in attempts.items():
        for skill in skills[pid]:
            e = expected.setdefault(skill, [0, 0])
            e[0] += tried
            e[1] += ok
    assert session["mastery"] == {s: mastery_score(a, ok) for s, (a, ok) in expected.items()}
    assert session["next_actions"] == ["start_new_session"]
    workflow = stack.temporal.get_workflow_handle(f"session-{sid}")
    assert (await workflow.result())["status"] == "completed"
    # Signals, refused and accepted updates, projections: a history worth replaying.
    await record_history(stack.temporal, f"session-{sid}", "session_completed_math_track")
    # The same on the path where the workflow writes the first projection too.
    await record_history(stack.temporal, f"session-{sid}", "session_math_track_first_projection")
    await record_history(
        stack.temporal, f"submission-{result['id']}", "submission_one_activity_in_session"
    )

    listed = (await client.get("/v1/sessions", headers=auth)).json()["items"]
    assert [(s["id"], s["status"], s["progress"]["percent"]) for s in listed] == [
        (sid, "completed", 100)
    ]
    # A completed session takes no more writes: one type, 409, for each of them...
    late = await client.post(
        "/v1/submissions",
        json={"problem_id": "math-derivative-power", "session_id": sid, "answer": "1"},
        headers=auth,
    )
    closed = [
        late,
        await client.post(f"/v1/sessions/{sid}/advance", headers=auth),
        await client.post(
            f"/v1/sessions/{sid}/advance",
            json={"from_problem_id": "math-limit-sine-ratio-not-here"},
            headers=auth,
        ),
        await client.post(
            "/v1/tutor/messages",
            json={"session_id": sid, "problem_id": "math-derivative-power", "message": "help"},
            headers=auth,
        ),
    ]
    for refused in closed:
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"].endswith("/session-closed")
    # ...but a retry of the advance that completed it still answers its state.
    retried = await client.post(
        f"/v1/sessions/{sid}/advance", json={"from_problem_id": pid}, headers=auth
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "completed"
    # ...and the learner may start over.
    assert (await start(client, auth, MATH_TRACK)).status_code == 201


async def test_ending_a_session_frees_the_track_for_a_new_one(stack: Stack, auth: Headers) -> None:
    client = stack.client
    sid = (await start(client, auth, SYSTEMS_TRACK)).json()["id"]
    r = await client.post(f"/v1/sessions/{sid}/end", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ended"
    assert r.json()["next_actions"] == ["start_new_session"]
    again = await client.post(f"/v1/sessions/{sid}/end", headers=auth)
    assert again.status_code == 200
    assert again.json()["status"] == "ended"
    refused = await client.post(f"/v1/sessions/{sid}/advance", headers=auth)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/session-closed")
    new = await start(client, auth, SYSTEMS_TRACK)
    assert new.status_code == 201
    assert new.json()["id"] != sid
    listed = (await client.get("/v1/sessions", headers=auth)).json()["items"]
    statuses = {s["id"]: s["status"] for s in listed}
    assert statuses == {sid: "ended", new.json()["id"]: "active"}
    # The list names the same facts as the detail, with the same values.
    detail = (await client.get(f"/v1/sessions/{sid}", headers=auth)).json()
    summary = next(s for s in listed if s["id"] == sid)
    assert summary["current"] == {
        k: detail["current"][k] for k in ("module_slug", "problem_id", "title")
    }
    for name in ("track_slug", "track_title", "track_version", "status", "progress"):
        assert summary[name] == detail[name], name
    for name in ("started_at", "last_activity_at", "ended_at"):
        assert summary[name] == detail[name], name
    page = await client.get("/v1/sessions", params={"limit": 1}, headers=auth)
    assert [s["id"] for s in page.json()["items"]] == [new.json()["id"]]
    rest = await client.get(
        "/v1/sessions", params={"limit": 1, "cursor": page.json()["next_cursor"]}, headers=auth
    )
    assert [s["id"] for s in rest.json()["items"]] == [sid]
    assert rest.json()["next_cursor"] is None
    active = await client.get("/v1/sessions", params={"status": "active"}, headers=auth)
    assert [s["id"] for s in active.json()["items"]] == [new.json()["id"]]


async def test_another_users_session_is_404_on_every_endpoint(
    stack: Stack, auth: Headers, token_for: Callable[..., str]
) -> None:
    client = stack.client
    sid = (await start(client, auth, SYSTEMS_TRACK)).json()["id"]
    other = {"Authorization": f"Bearer {token_for(f'intruder-{uuid.uuid4().hex[:6]}')}"}
    calls = [
        client.get(f"/v1/sessions/{sid}", headers=other),
        client.post(f"/v1/sessions/{sid}/advance", headers=other),
        client.post(f"/v1/sessions/{sid}/end", headers=other),
        client.post(
            "/v1/submissions",
            json={"problem_id": "sys-cache-hit-rate", "session_id": sid, "answer": "0.5"},
            headers=other,
        ),
    ]
    for response in [await c for c in calls]:
        assert response.status_code == 404, (response.request.url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/v1/sessions", headers=other)).json()["items"] == []
    # Untouched: still active for its owner.
    mine = await client.get(f"/v1/sessions/{sid}", headers=auth)
    assert mine.json()["status"] == "active"
    await client.post(f"/v1/sessions/{sid}/end", headers=auth)


async def test_a_submission_outside_the_sessions_track_version_is_409(
    stack: Stack, auth: Headers
) -> None:
    client = stack.client
    sid = (await start(client, auth, SYSTEMS_TRACK)).json()["id"]
    r = await client.post(
        "/v1/submissions",
        json={"problem_id": "math-solve-linear", "session_id": sid, "answer": "5"},
        headers=auth,
    )
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("/item-not-available")
    assert "not part of the track version" in r.json()["detail"]
    await client.post(f"/v1/sessions/{sid}/end", headers=auth)


async def test_starting_a_session_on_an_unknown_track_is_404(stack: Stack, auth: Headers) -> None:
    r = await start(stack.client, auth, "no-such-track")
    assert r.status_code == 404
    assert (await stack.client.get(f"/v1/sessions/{uuid.uuid4()}", headers=auth)).status_code == 404


@pytest.mark.parametrize("concurrent", [4])
async def test_concurrent_starts_make_one_session(
    stack: Stack, auth: Headers, concurrent: int
) -> None:
    responses = await asyncio.gather(
        *(start(stack.client, auth, SYSTEMS_TRACK) for _ in range(concurrent))
    )
    assert sorted(r.status_code for r in responses) == [200] * (concurrent - 1) + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    await stack.client.post(f"/v1/sessions/{responses[0].json()['id']}/end", headers=auth)


async def test_an_older_projection_never_overwrites_a_newer_one(
    stack: Stack, auth: Headers
) -> None:
    from activities.deps import ActivityDeps
    from activities.sessions import SessionActivities
    from domain.sessions import SessionDocument, SessionProjection
    from store.models import LearningSession

    client = stack.client
    ended = (await start(client, auth, SYSTEMS_TRACK)).json()
    ended = (await client.post(f"/v1/sessions/{ended['id']}/end", headers=auth)).json()
    sessionmaker = stack.app.state.resources.sessionmaker
    async with sessionmaker() as db:
        row = await db.get(LearningSession, uuid.UUID(ended["id"]))
        assert row is not None
        document = SessionDocument.model_validate(row.state)
        base = {
            "user_id": row.user_id,
            "track_id": row.track_id,
            "track_version_id": row.track_version_id,
        }
    project = SessionActivities(
        ActivityDeps(settings=stack.settings, sessionmaker=sessionmaker, redis=None, http=None)  # type: ignore[arg-type]
    ).project

    def at(seq: int, session_id: uuid.UUID = uuid.UUID(ended["id"])) -> SessionProjection:
        progress = document.progress.model_copy(update={"seq": seq})
        return SessionProjection(
            session_id=session_id,
            document=document.model_copy(update={"progress": progress}),
            **base,
        )

    assert await project(at(10)) is True
    assert await project(at(7)) is False  # late, older: ignored
    assert await project(at(10)) is False  # a retried attempt: nothing changes
    async with sessionmaker() as db:
        row = await db.get(LearningSession, uuid.UUID(ended["id"]))
        assert row is not None
        assert (row.state_seq, row.state["progress"]["seq"]) == (10, 10)
    # The row is the API's: a projection of a session without a row creates nothing
    # (one writer of identity and the active claim).
    orphan = uuid.uuid4()
    assert await project(at(3, orphan)) is False
    async with sessionmaker() as db:
        assert await db.get(LearningSession, orphan) is None


async def test_an_unprojected_claim_reads_as_its_start_state_and_the_next_start_heals_it(
    stack: Stack, auth: Headers, user_id: str
) -> None:
    """What a POST that died between its commit and its start leaves: an active claim
    without state and without a workflow. Reads answer the state the workflow starts
    from; the next start on the track finds the claim and starts its workflow, whose
    first projection is then the only write of the state."""
    from datetime import UTC, datetime

    from domain.contracts import ActivityName, session_workflow_id
    from store import tracks as track_repo
    from store.models import LearningSession

    sessionmaker = stack.app.state.resources.sessionmaker
    sid = uuid.uuid4()
    async with sessionmaker() as db, db.begin():
        version = await track_repo.get_published(db, SYSTEMS_TRACK)
        assert version is not None
        first = version.modules[0].items[0].problem_id
        db.add(
            LearningSession(
                id=sid,
                user_id=user_id,
                track_id=version.track_id,
                track_version_id=version.id,
                status="active",
                created_at=datetime.now(UTC),
            )
        )
    client = stack.client
    detail = await client.get(f"/v1/sessions/{sid}", headers=auth)
    assert detail.status_code == 200, detail.text
    assert (detail.json()["status"], detail.json()["current"]["problem_id"]) == ("active", first)
    listed = (await client.get("/v1/sessions", headers=auth)).json()["items"]
    assert [(s["id"], s["current"]["problem_id"]) for s in listed] == [(str(sid), first)]
    recommended = (await client.get("/v1/recommendations", headers=auth)).json()["items"]
    assert any(
        r["kind"] == "continue_session" and r["problem_id"] == first for r in recommended
    ), recommended

    again = await start(client, auth, SYSTEMS_TRACK)
    assert (again.status_code, again.json()["id"]) == (200, str(sid))

    async def projected() -> bool:
        async with sessionmaker() as db:
            row = await db.get(LearningSession, sid)
            return row is not None and row.state is not None

    await eventually(projected, timeout=10, failure=lambda: "the workflow never projected")
    history = await stack.temporal.get_workflow_handle(session_workflow_id(sid)).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled[:1] == [ActivityName.SESSION_PROJECT]
    ended = await client.post(f"/v1/sessions/{sid}/end", headers=auth)
    assert ended.json()["status"] == "ended"
    await record_history(stack.temporal, session_workflow_id(sid), "session_first_projection_ended")


async def test_a_start_temporal_cannot_take_answers_503_and_leaves_no_claim(
    stack: Stack, make_settings: Callable[..., Any], auth: Headers, user_id: str
) -> None:
    from sqlalchemy import select

    from store.models import LearningSession
    from tests.support.edge import assert_problem, client_of, new_app, running_app
    from tests.support.servers import free_port

    settings = make_settings(temporal_address=f"127.0.0.1:{free_port()}")
    async with (
        running_app(new_app(settings)) as app,
        client_of(app, raise_app_exceptions=False) as client,
    ):
        refused = await start(client, auth, SYSTEMS_TRACK)
    assert_problem(refused, 503)
    async with stack.app.state.resources.sessionmaker() as db:
        left = (
            await db.scalars(select(LearningSession).where(LearningSession.user_id == user_id))
        ).all()
    assert left == []
    # Nothing was claimed: the learner starts the track as if it never happened.
    created = await start(stack.client, auth, SYSTEMS_TRACK)
    assert created.status_code == 201, created.text
    await stack.client.post(f"/v1/sessions/{created.json()['id']}/end", headers=auth)
