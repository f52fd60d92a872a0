"""The first API slice: tracks from PostgreSQL behind JWT, and the probes."""

from __future__ import annotations

from collections.abc import Callable

from domain.settings import Settings
from tests.conftest import Stack
from tests.support import eventually
from tests.support.edge import assert_problem, client_of, new_app, running_app
from tools.devkeys import make_token


async def test_the_three_demo_tracks_are_listed(stack: Stack, auth: dict[str, str]) -> None:
    r = await stack.client.get("/v1/tracks", headers=auth)
    assert r.status_code == 200, r.text
    by_slug = {t["slug"]: t for t in r.json()["items"]}
    assert {"python-foundations", "calculus-and-algebra", "systems-fundamentals"} <= set(by_slug)
    coding = by_slug["python-foundations"]
    assert coding["domain"] == "coding"
    assert (coding["module_count"], coding["problem_count"]) == (3, 12)
    assert coding["items_total"] == 9  # required items only, as a session counts them


async def test_tracks_are_paged_by_domain_then_slug(stack: Stack, auth: dict[str, str]) -> None:
    everything = (await stack.client.get("/v1/tracks", headers=auth)).json()
    assert everything["next_cursor"] is None
    order = [(t["domain"], t["slug"]) for t in everything["items"]]
    assert order == sorted(order)
    paged: list[tuple[str, str]] = []
    cursor = None
    for _ in range(len(order)):
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await stack.client.get("/v1/tracks", params=params, headers=auth)).json()
        paged += [(t["domain"], t["slug"]) for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == order
    bad = await stack.client.get("/v1/tracks", params={"cursor": "not-a-cursor"}, headers=auth)
    assert_problem(bad, 422)


async def test_tracks_filter_by_domain(stack: Stack, auth: dict[str, str]) -> None:
    for domain in ("coding", "math", "systems"):
        r = await stack.client.get("/v1/tracks", params={"domain": domain}, headers=auth)
        assert r.status_code == 200
        assert r.json()["items"]
        assert {t["domain"] for t in r.json()["items"]} == {domain}
    bad = await stack.client.get("/v1/tracks", params={"domain": "poetry"}, headers=auth)
    assert_problem(bad, 422)


async def test_track_detail_lists_modules_and_problems_in_order(
    stack: Stack, auth: dict[str, str]
) -> None:
    r = await stack.client.get("/v1/tracks/calculus-and-algebra", headers=auth)
    assert r.status_code == 200, r.text
    track = r.json()
    assert [m["slug"] for m in track["modules"]] == ["math-1", "math-2", "math-3"]
    assert [m["position"] for m in track["modules"]] == [0, 1, 2]
    first = track["modules"][0]["items"]
    assert [i["problem_id"] for i in first] == [
        "math-derivative-power",
        "math-derivative-product",
        "math-derivative-chain",
        "math-derivative-quotient",
    ]
    assert [i["position"] for i in first] == [0, 1, 2, 3]
    assert first[1]["kind"] == "math_expr"
    assert first[1]["skills"]
    assert track["modules"][2]["prerequisites"] == ["math-1", "math-2"]
    # Nothing of Problem Bank's internals is copied into the curriculum.
    assert "expected_answer" not in r.text
    assert "hidden" not in r.text


async def test_unknown_track_is_404(stack: Stack, auth: dict[str, str]) -> None:
    r = await stack.client.get("/v1/tracks/no-such-track", headers=auth)
    assert_problem(r, 404)


async def test_loading_the_demo_tracks_again_changes_nothing(stack: Stack) -> None:
    from tools.seed_demo import seed

    outcome = await seed(
        stack.app.state.resources.sessionmaker,
        stack.devservices.problem_bank,
        internal_token=stack.settings.problem_bank_token,
    )
    assert set(outcome.values()) == {"unchanged"}


async def test_expired_and_foreign_tokens_are_401(
    stack: Stack,
    token_for: Callable[..., str],
    other_key_pair: tuple[str, str],
) -> None:
    expired = token_for("someone", ttl_seconds=-3600)
    foreign = make_token(other_key_pair[0], "someone")
    for token in (expired, foreign, "not-a-jwt"):
        r = await stack.client.get("/v1/tracks", headers={"Authorization": f"Bearer {token}"})
        assert_problem(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")


async def test_readyz_names_what_is_unreachable(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(redis_url="redis://127.0.0.1:1/0")
    async with running_app(new_app(settings)) as app, client_of(app) as client:
        r = await client.get("/readyz")
        assert_problem(r, 503)
        assert r.json()["detail"] == "not reachable: redis"


async def test_a_submission_is_findable_by_its_search_attributes(
    stack: Stack, auth: dict[str, str], user_id: str
) -> None:
    body = {"problem_id": "math-derivative-power", "answer": "0"}
    r = await stack.client.post("/v1/submissions", json=body, headers={**auth, "Prefer": "wait=30"})
    assert r.json()["status"] == "completed"
    query = (
        f"WorkflowType = 'SubmissionWorkflow' AND CoUserId = '{user_id}' "
        "AND CoProblemId = 'math-derivative-power' AND CoStatus = 'completed'"
    )
    found: list[str] = []

    async def visible() -> bool:  # visibility is eventually consistent
        found[:] = [w.id async for w in stack.temporal.list_workflows(query)]
        return bool(found)

    await eventually(visible, timeout=5, every=0.1)
    assert found == [f"submission-{r.json()['id']}"]


async def test_accepted_submissions_update_skill_mastery(
    stack: Stack, auth: dict[str, str], user_id: str
) -> None:
    from sqlalchemy import select

    from store.models import Mastery

    ok = "def sum_evens(xs):\n    return sum(x for x in xs if x % 2 == 0)\n"
    for code in ("def sum_evens(xs):\n    return 0\n", ok):
        r = await stack.client.post(
            "/v1/submissions",
            json={"problem_id": "py-sum-evens", "code": code},
            headers={**auth, "Prefer": "wait=30"},
        )
        assert r.json()["status"] == "completed"
    async with stack.app.state.resources.sessionmaker() as db:
        rows = (await db.scalars(select(Mastery).where(Mastery.user_id == user_id))).all()
    assert {m.skill for m in rows} == {"loops", "conditionals", "modulo"}
    assert all((m.attempts, m.accepted) == (2, 1) for m in rows)
    assert all(0 < m.score < 1 for m in rows)


async def test_track_list_revalidates_with_its_etag(stack: Stack, auth: dict[str, str]) -> None:
    first = await stack.client.get("/v1/tracks", headers=auth)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    again = await stack.client.get("/v1/tracks", headers={**auth, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    # Another page is another representation: its own tag, and a full answer.
    other = await stack.client.get(
        "/v1/tracks", params={"domain": "math"}, headers={**auth, "If-None-Match": etag}
    )
    assert other.status_code == 200
    assert other.headers["etag"] != etag
    assert [t["domain"] for t in other.json()["items"]] == ["math"] * len(other.json()["items"])
    # Without a token there is no 304, only the 401.
    denied = await stack.client.get("/v1/tracks", headers={"If-None-Match": etag})
    assert denied.status_code == 401
