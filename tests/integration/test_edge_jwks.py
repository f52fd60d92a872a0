"""Tokens verified against a JWKS endpoint (CO_JWT_JWKS_URL), keys chosen by ``kid``."""

from __future__ import annotations

import base64
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from devservices.testing import serve
from domain.settings import Settings
from tests.support.edge import assert_problem, client_of, new_app, running_app
from tools.devkeys import make_token


def _b64u(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwks_of(public_pem: str, kid: str) -> dict[str, object]:
    numbers = serialization.load_pem_public_key(public_pem.encode()).public_numbers()  # type: ignore[union-attr]
    return {
        "keys": [
            {
                "kty": "RSA",
                "kid": kid,
                "use": "sig",
                "alg": "RS256",
                "n": _b64u(numbers.n),
                "e": _b64u(numbers.e),
            }
        ]
    }


async def test_tokens_are_verified_with_the_jwks_key_their_kid_names(
    make_settings: Callable[..., Settings], other_key_pair: tuple[str, str]
) -> None:
    private, public = other_key_pair
    fetches = {"n": 0}

    async def jwks(_request: object) -> JSONResponse:
        fetches["n"] += 1
        return JSONResponse(jwks_of(public, "rotating-key-1"))

    async with serve(Starlette(routes=[Route("/jwks.json", jwks)])) as base:
        settings = make_settings(jwt_public_key=None, jwt_jwks_url=f"{base}/jwks.json")
        async with running_app(new_app(settings)) as app, client_of(app) as client:
            good = make_token(private, "jwks-user", headers={"kid": "rotating-key-1"})
            r = await client.get("/v1/tracks", headers={"Authorization": f"Bearer {good}"})
            assert r.status_code == 200, r.text
            unknown = make_token(private, "jwks-user", headers={"kid": "retired-key"})
            r = await client.get("/v1/tracks", headers={"Authorization": f"Bearer {unknown}"})
            assert_problem(r, 401)
            assert "key id" in r.json()["detail"]
            # Unknown kids do not hammer the JWKS endpoint.
            for _ in range(5):
                await client.get("/v1/tracks", headers={"Authorization": f"Bearer {unknown}"})
            assert fetches["n"] <= 2
