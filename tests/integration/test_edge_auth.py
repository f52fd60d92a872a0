"""Authentication and roles through the whole app: 401 problems with a challenge, 403 for
author endpoints without ``admin``, one token verification per request."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.deps import AdminDep, PrincipalDep
from domain.settings import Settings
from tests.support.edge import assert_problem, client_of, new_app, running_app
from tools.devkeys import DEFAULT_AUDIENCE, DEFAULT_ISSUER, make_token

Keys = tuple[str, str]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(alg: str, secret: bytes | None = None) -> str:
    now = int(time.time())
    payload = {"sub": "mallory", "iss": DEFAULT_ISSUER, "aud": DEFAULT_AUDIENCE, "exp": now + 60}
    signing_input = b64(json.dumps({"alg": alg}).encode()) + "." + b64(json.dumps(payload).encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return signing_input + "." + b64(signature)


@pytest.fixture(scope="module")
async def edge_app(make_settings: Callable[..., Settings]) -> AsyncIterator[FastAPI]:
    """The real app plus two test-only routes: one for any user, one for admins."""
    app = new_app(make_settings())

    @app.get("/__test__/me", include_in_schema=False)
    async def me(user: PrincipalDep) -> dict[str, Any]:
        return {"user": user.user_id, "roles": sorted(user.roles)}

    @app.post("/__test__/author-only", include_in_schema=False)
    async def author_only(user: AdminDep) -> dict[str, str]:
        return {"user": user.user_id}

    async with running_app(app) as started:
        yield started


@pytest.fixture
async def client(edge_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(edge_app) as c:
        yield c


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda keys, other: None, "bearer token is required"),
        (lambda keys, other: "not-a-jwt", "malformed"),
        (lambda keys, other: make_token(keys[0], "u", ttl_seconds=-3600), "expired"),
        (
            lambda keys, other: make_token(keys[0], "u", nbf=int(time.time()) + 3600),
            "not valid yet",
        ),
        (lambda keys, other: make_token(keys[0], "u", audience="elsewhere"), "audience"),
        (lambda keys, other: make_token(keys[0], "u", issuer="https://evil"), "issuer"),
        (lambda keys, other: forged("none"), "RS256"),
        (lambda keys, other: forged("HS256", keys[1].encode()), "RS256"),
        (lambda keys, other: make_token(keys[0], "u", headers={"kid": "nope"}), "key id"),
        (lambda keys, other: make_token(other[0], "u"), "signature"),
    ],
    ids=[
        "no-token",
        "malformed",
        "expired",
        "nbf-future",
        "audience",
        "issuer",
        "alg-none",
        "hs256-public-key",
        "unknown-kid",
        "other-key",
    ],
)
async def test_bad_tokens_are_401_problems_with_a_challenge(
    client: httpx.AsyncClient,
    key_pair: Keys,
    other_key_pair: Keys,
    make: Callable[[Keys, Keys], str | None],
    reason: str,
) -> None:
    token = make(key_pair, other_key_pair)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.get("/v1/tracks", headers=headers)
    body = assert_problem(response, 401)
    assert reason in str(body["detail"])
    assert response.headers["www-authenticate"].startswith('Bearer realm="co"')


async def test_non_bearer_scheme_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/tracks", headers={"Authorization": "Basic dTpw"})
    assert_problem(response, 401)
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


async def test_author_endpoint_needs_admin(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    learner = {"Authorization": f"Bearer {token_for('learner-1')}"}
    admin = {"Authorization": f"Bearer {token_for('author-1', roles=['admin'])}"}
    assert_problem(await client.post("/__test__/author-only"), 401)
    body = assert_problem(await client.post("/__test__/author-only", headers=learner), 403)
    assert "admin" in str(body["detail"])
    response = await client.post("/__test__/author-only", headers=admin)
    assert response.status_code == 200
    assert response.json() == {"user": "author-1"}


async def test_token_is_verified_once_per_request(
    edge_app: FastAPI,
    client: httpx.AsyncClient,
    token_for: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = edge_app.state.resources.verifier
    calls: list[str] = []
    original = verifier.verify

    def counting(token: str) -> Any:
        calls.append(token)
        return original(token)

    monkeypatch.setattr(verifier, "verify", counting)
    response = await client.get(
        "/__test__/me", headers={"Authorization": f"Bearer {token_for('u-1', roles=['x'])}"}
    )
    assert response.json() == {"user": "u-1", "roles": ["x"]}
    assert len(calls) == 1  # by the rate-limit middleware; the dependency reused it
