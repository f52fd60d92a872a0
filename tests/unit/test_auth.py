"""JwtVerifier: every way a token is refused, and the few ways it is accepted."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jws, jwt

from api.auth import (
    JwksKeySource,
    JwtVerifier,
    Principal,
    UnusableKeyError,
    key_id_of,
    load_public_pem,
    parse_authorization,
    thumbprint,
)
from api.errors import Forbidden, Unauthorized
from domain.settings import SettingsError
from tools.devkeys import DEFAULT_AUDIENCE, DEFAULT_ISSUER, make_token

Keys = tuple[str, str]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "alice",
        "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "roles": [],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def hand_made(
    header: dict[str, Any], payload: dict[str, Any], *, hmac_key: bytes | None = None
) -> str:
    """A token built byte by byte, for what python-jose refuses to sign."""
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    signature = b""
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


@functools.lru_cache(maxsize=8)
def signing_key(private: str) -> Any:
    return jwk.construct(private, "RS256")  # parsing a private PEM takes tens of ms


def rs256(private: str, payload: dict[str, Any] | bytes, **headers: Any) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return str(jws.sign(raw, signing_key(private), algorithm="RS256", headers=headers or None))


@pytest.fixture(scope="module")
def verifier(key_pair: Keys) -> JwtVerifier:
    return JwtVerifier.from_pem(
        key_pair[1], issuer=DEFAULT_ISSUER, audience=DEFAULT_AUDIENCE, leeway_seconds=30
    )


def refused(verifier: JwtVerifier, token: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    challenge = caught.value.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="co", error="invalid_token"')
    return caught.value


# --------------------------------------------------------------------------- accepted


def test_valid_token_gives_subject_and_roles(verifier: JwtVerifier, key_pair: Keys) -> None:
    principal = verifier.verify(make_token(key_pair[0], "alice", roles=["admin", "author"]))
    assert principal == Principal("alice", frozenset({"admin", "author"}))
    assert principal.is_admin


def test_expired_within_leeway_is_accepted(verifier: JwtVerifier, key_pair: Keys) -> None:
    assert verifier.verify(make_token(key_pair[0], "alice", ttl_seconds=-10)).user_id == "alice"


def test_nbf_within_leeway_is_accepted(verifier: JwtVerifier, key_pair: Keys) -> None:
    token = make_token(key_pair[0], "alice", nbf=int(time.time()) + 10)
    assert verifier.verify(token).user_id == "alice"


def test_audience_list_containing_ours_is_accepted(verifier: JwtVerifier, key_pair: Keys) -> None:
    token = rs256(key_pair[0], claims(aud=["other", DEFAULT_AUDIENCE]))
    assert verifier.verify(token).user_id == "alice"


def test_kid_equal_to_the_key_thumbprint_is_accepted(verifier: JwtVerifier, key_pair: Keys) -> None:
    token = rs256(key_pair[0], claims(), kid=key_id_of(key_pair[1]))
    assert verifier.verify(token).user_id == "alice"


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["admin"], {"admin"}),
        ("admin author", {"admin", "author"}),
        ({"admin": True}, set()),
        (["admin", 7, None], {"admin"}),
    ],
)
def test_roles_come_from_the_roles_claim(
    verifier: JwtVerifier, key_pair: Keys, roles: object, expected: set[str]
) -> None:
    assert verifier.verify(rs256(key_pair[0], claims(roles=roles))).roles == frozenset(expected)


def test_require_role_is_403() -> None:
    with pytest.raises(Forbidden):
        Principal("bob", frozenset({"learner"})).require_role("admin")
    Principal("ann", frozenset({"admin"})).require_role("admin")


# --------------------------------------------------------------------------- refused


def test_expired_token_is_refused(verifier: JwtVerifier, key_pair: Keys) -> None:
    error = refused(verifier, make_token(key_pair[0], "alice", ttl_seconds=-120))
    assert error.detail == "the token has expired"


def test_nbf_in_the_future_is_refused(verifier: JwtVerifier, key_pair: Keys) -> None:
    error = refused(verifier, make_token(key_pair[0], "alice", nbf=int(time.time()) + 300))
    assert "not valid yet" in error.detail


def test_wrong_issuer_is_refused(verifier: JwtVerifier, key_pair: Keys) -> None:
    error = refused(verifier, make_token(key_pair[0], "alice", issuer="https://evil.example"))
    assert "issuer" in error.detail


def test_wrong_audience_is_refused(verifier: JwtVerifier, key_pair: Keys) -> None:
    error = refused(verifier, make_token(key_pair[0], "alice", audience="another-service"))
    assert "audience" in error.detail


@pytest.mark.parametrize("claim", ["exp", "aud", "iss", "sub"])
def test_missing_required_claim_is_refused(
    verifier: JwtVerifier, key_pair: Keys, claim: str
) -> None:
    refused(verifier, rs256(key_pair[0], claims(**{claim: _DROP})))


@pytest.mark.parametrize(
    "value",
    [str(int(time.time()) + 600), [1], None, True, float("inf"), float("nan")],
    ids=["string", "list", "null", "bool", "infinity", "nan"],
)
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_time_claims_must_be_numbers(
    verifier: JwtVerifier, key_pair: Keys, claim: str, value: object
) -> None:
    # Python's json writes Infinity/NaN, and python-jose would crash on int(inf).
    refused(verifier, rs256(key_pair[0], claims(**{claim: value})))


@pytest.mark.parametrize("subject", ["", 42, "x" * 201])
def test_invalid_subject_is_refused(verifier: JwtVerifier, key_pair: Keys, subject: object) -> None:
    refused(verifier, rs256(key_pair[0], claims(sub=subject)))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
def test_alg_none_is_refused(verifier: JwtVerifier, alg: str) -> None:
    error = refused(verifier, hand_made({"alg": alg, "typ": "JWT"}, claims()))
    assert "RS256" in error.detail


def test_missing_alg_is_refused(verifier: JwtVerifier) -> None:
    refused(verifier, hand_made({"typ": "JWT"}, claims()))


def test_hs256_signed_with_the_public_key_pem_is_refused(
    verifier: JwtVerifier, key_pair: Keys
) -> None:
    # The classic key-confusion attack: the public key, public by definition, as HMAC secret.
    for secret in (key_pair[1].encode(), key_pair[1].strip().encode()):
        refused(verifier, hand_made({"alg": "HS256", "typ": "JWT"}, claims(), hmac_key=secret))


def test_hs256_signed_with_the_public_key_der_is_refused(
    verifier: JwtVerifier, key_pair: Keys
) -> None:
    der = load_public_pem(key_pair[1]).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    refused(verifier, hand_made({"alg": "HS256", "typ": "JWT"}, claims(), hmac_key=der))


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES256", "HS512"])
def test_other_algorithms_are_refused(verifier: JwtVerifier, alg: str) -> None:
    refused(verifier, hand_made({"alg": alg}, claims(), hmac_key=b"k"))


def test_unknown_kid_is_refused(verifier: JwtVerifier, key_pair: Keys) -> None:
    error = refused(verifier, rs256(key_pair[0], claims(), kid="not-a-key-we-know"))
    assert "key id" in error.detail


def test_non_string_kid_is_refused(verifier: JwtVerifier, key_pair: Keys) -> None:
    refused(verifier, rs256(key_pair[0], claims(), kid=["a"]))


def test_token_signed_by_another_key_is_refused(
    verifier: JwtVerifier, other_key_pair: Keys
) -> None:
    error = refused(verifier, make_token(other_key_pair[0], "alice"))
    assert "signature" in error.detail


def test_critical_header_extensions_are_refused(verifier: JwtVerifier, key_pair: Keys) -> None:
    refused(verifier, rs256(key_pair[0], claims(), crit=["exp"]))


def test_keys_embedded_in_the_header_are_ignored(
    verifier: JwtVerifier, other_key_pair: Keys
) -> None:
    # jwk/jku/x5u point at the attacker's own key: only configured keys verify.
    attacker = jwk_of(other_key_pair[1], "attacker")
    token = rs256(other_key_pair[0], claims(), jwk=attacker, jku="https://evil.example/jwks")
    assert "signature" in refused(verifier, token).detail


def test_tampered_payload_is_refused(verifier: JwtVerifier, key_pair: Keys) -> None:
    header, _, signature = make_token(key_pair[0], "alice").split(".")
    forged = b64(json.dumps(claims(sub="root", roles=["admin"])).encode())
    refused(verifier, f"{header}.{forged}.{signature}")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "abc.def.ghi",
        "...",
        b64(b"[]") + "." + b64(b"{}") + ".",
        b64(b'"RS256"') + "." + b64(b"{}") + ".",
        b64(b"\xff\xfe") + "." + b64(b"{}") + ".",
    ],
)
def test_malformed_token_is_refused(verifier: JwtVerifier, token: str) -> None:
    refused(verifier, token)


def test_payload_that_is_not_an_object_is_refused(verifier: JwtVerifier, key_pair: Keys) -> None:
    refused(verifier, rs256(key_pair[0], b"[1, 2]"))


def test_oversized_token_is_refused(key_pair: Keys) -> None:
    small = JwtVerifier.from_pem(
        key_pair[1], issuer=DEFAULT_ISSUER, audience=DEFAULT_AUDIENCE, max_bytes=1024
    )
    token = make_token(key_pair[0], "alice", padding="x" * 2000)
    assert "too large" in refused(small, token).detail


def test_token_without_kid_needs_a_single_key(key_pair: Keys, other_key_pair: Keys) -> None:
    two = JwtVerifier(
        {key_id_of(p): p for p in (key_pair[1], other_key_pair[1])},
        issuer=DEFAULT_ISSUER,
        audience=DEFAULT_AUDIENCE,
    )
    assert "no key id" in refused(two, make_token(key_pair[0], "alice")).detail
    token = rs256(other_key_pair[0], claims(), kid=key_id_of(other_key_pair[1]))
    assert two.verify(token).user_id == "alice"


# --------------------------------------------------------------------------- the header


def test_missing_authorization_is_a_bare_challenge() -> None:
    with pytest.raises(Unauthorized) as caught:
        parse_authorization(None)
    assert caught.value.headers["WWW-Authenticate"] == 'Bearer realm="co"'


@pytest.mark.parametrize("value", ["Basic YTpi", "Bearer", "Bearer    ", "token"])
def test_non_bearer_authorization_is_refused(value: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        parse_authorization(value)
    assert 'error="invalid_request"' in caught.value.headers["WWW-Authenticate"]


def test_bearer_scheme_is_case_insensitive() -> None:
    assert parse_authorization("bearer abc.def.ghi") == "abc.def.ghi"


def test_error_description_cannot_break_the_header() -> None:
    error = Unauthorized('bad "quoted"\r\nInjected: yes')
    challenge = error.headers["WWW-Authenticate"]
    assert "\r" not in challenge
    assert "\n" not in challenge
    assert '"quoted"' not in challenge


# --------------------------------------------------------------------------- keys at start-up


def _pem(key: Any) -> str:
    return str(
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.parametrize(
    "pem",
    [
        "not a key",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        _pem(ec.generate_private_key(ec.SECP256R1())),
    ],
    ids=["text", "garbage-pem", "rsa-1024", "ec"],
)
def test_unusable_key_fails_at_start_up(pem: str) -> None:
    with pytest.raises(SettingsError, match="CO_JWT_PUBLIC_KEY"):
        JwtVerifier.from_pem(pem, issuer=DEFAULT_ISSUER, audience=DEFAULT_AUDIENCE)


def test_private_key_is_not_a_verification_key(key_pair: Keys) -> None:
    with pytest.raises(UnusableKeyError):
        load_public_pem(key_pair[0])


def test_thumbprint_matches_rfc_7638() -> None:
    # The example key and thumbprint of RFC 7638 §3.1.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
        "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5"
        "v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08"
        "qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8aw"
        "apJzKnqDKgw"
    )
    e = "AQAB"

    def as_int(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    key = rsa.RSAPublicNumbers(as_int(e), as_int(n)).public_key()
    assert thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


# --------------------------------------------------------------------------- JWKS


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def jwk_of(public_pem: str, kid: str, **extra: Any) -> dict[str, Any]:
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    numbers = key.public_numbers()

    def enc(value: int) -> str:
        return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "kid": kid, "n": enc(numbers.n), "e": enc(numbers.e), **extra}


class FakeJwks:
    """A JWKS endpoint whose document the test changes, counting fetches."""

    def __init__(self, *keys: Any) -> None:
        self.document: Any = {"keys": list(keys)}
        self.calls = 0
        self.fail = False

    async def __call__(self, url: str, timeout: float) -> object:
        self.calls += 1
        if self.fail:
            raise OSError("identity service down")
        return self.document


def jwks_verifier(fetch: FakeJwks, clock: FakeClock) -> JwtVerifier:
    source = JwksKeySource(
        "https://id.example/jwks.json", fetch=fetch, clock=clock, min_refresh_seconds=30
    )
    return JwtVerifier({}, issuer=DEFAULT_ISSUER, audience=DEFAULT_AUDIENCE, jwks=source)


TokenFor = Callable[[str, str], str]


@pytest.fixture
def signed(key_pair: Keys, other_key_pair: Keys) -> TokenFor:
    private = {"k1": key_pair[0], "k2": other_key_pair[0]}

    def _sign(kid: str, signer: str) -> str:
        return rs256(private[signer], claims(), kid=kid)

    return _sign


async def test_jwks_keys_are_fetched_once_and_cached(key_pair: Keys, signed: TokenFor) -> None:
    fetch, clock = FakeJwks(jwk_of(key_pair[1], "k1")), FakeClock()
    verifier = jwks_verifier(fetch, clock)
    for _ in range(5):
        assert (await verifier.averify(signed("k1", "k1"))).user_id == "alice"
    assert fetch.calls == 1


async def test_jwks_unknown_kid_refreshes_and_picks_up_a_rotated_key(
    key_pair: Keys, other_key_pair: Keys, signed: TokenFor
) -> None:
    fetch, clock = FakeJwks(jwk_of(key_pair[1], "k1")), FakeClock()
    verifier = jwks_verifier(fetch, clock)
    await verifier.averify(signed("k1", "k1"))
    fetch.document["keys"].append(jwk_of(other_key_pair[1], "k2"))  # the issuer rotates
    clock.now += 31
    assert (await verifier.averify(signed("k2", "k2"))).user_id == "alice"
    assert fetch.calls == 2


async def test_jwks_refresh_on_unknown_kid_is_rate_limited(
    key_pair: Keys, signed: TokenFor
) -> None:
    fetch, clock = FakeJwks(jwk_of(key_pair[1], "k1")), FakeClock()
    verifier = jwks_verifier(fetch, clock)
    await verifier.averify(signed("k1", "k1"))
    for i in range(20):  # a flood of made-up key ids
        with pytest.raises(Unauthorized, match="key id"):
            await verifier.averify(signed(f"made-up-{i}", "k1"))
        clock.now += 1
    assert fetch.calls == 1  # 20 s < min_refresh_seconds: no refetch at all
    clock.now += 30
    with pytest.raises(Unauthorized):
        await verifier.averify(signed("made-up-again", "k1"))
    assert fetch.calls == 2


async def test_jwks_key_under_another_kid_does_not_verify(
    key_pair: Keys, other_key_pair: Keys, signed: TokenFor
) -> None:
    fetch = FakeJwks(jwk_of(key_pair[1], "k1"), jwk_of(other_key_pair[1], "k2"))
    verifier = jwks_verifier(fetch, FakeClock())
    with pytest.raises(Unauthorized, match="signature"):
        await verifier.averify(signed("k1", "k2"))


async def test_jwks_fetch_failure_keeps_the_known_keys(key_pair: Keys, signed: TokenFor) -> None:
    fetch, clock = FakeJwks(jwk_of(key_pair[1], "k1")), FakeClock()
    verifier = jwks_verifier(fetch, clock)
    await verifier.averify(signed("k1", "k1"))
    fetch.fail = True
    clock.now += 7200  # stale: a refresh is attempted and fails
    assert (await verifier.averify(signed("k1", "k1"))).user_id == "alice"
    assert fetch.calls == 2


async def test_jwks_skips_keys_it_cannot_use(key_pair: Keys, signed: TokenFor) -> None:
    weak = _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    fetch = FakeJwks(
        jwk_of(key_pair[1], "enc", use="enc"),
        jwk_of(key_pair[1], "rs512", alg="RS512"),
        jwk_of(weak, "weak"),
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        "not an object",
        jwk_of(key_pair[1], "k1"),
    )
    verifier = jwks_verifier(fetch, FakeClock())
    assert (await verifier.averify(signed("k1", "k1"))).user_id == "alice"
    assert verifier.jwks is not None
    assert verifier.jwks.kids == frozenset({"k1"})
    for kid in ("enc", "rs512", "weak", "ec", "broken"):
        with pytest.raises(Unauthorized, match="key id"):
            await verifier.averify(signed(kid, "k1"))


async def test_jwks_document_without_keys_is_ignored(key_pair: Keys, signed: TokenFor) -> None:
    fetch = FakeJwks()
    fetch.document = {"not": "a jwks"}
    verifier = jwks_verifier(fetch, FakeClock())
    with pytest.raises(Unauthorized, match="key id"):
        await verifier.averify(signed("k1", "k1"))


async def test_jwks_refuses_before_fetching_a_non_rs256_token(signed: TokenFor) -> None:
    fetch = FakeJwks()
    verifier = jwks_verifier(fetch, FakeClock())
    with pytest.raises(Unauthorized, match="RS256"):
        await verifier.averify(hand_made({"alg": "none", "kid": "x"}, claims()))
    assert fetch.calls == 0


def test_verifier_needs_a_key_or_a_jwks_url() -> None:
    with pytest.raises(ValueError, match="at least one"):
        JwtVerifier({}, issuer=DEFAULT_ISSUER, audience=DEFAULT_AUDIENCE)


def test_jose_still_refuses_hmac_with_an_rsa_key(key_pair: Keys) -> None:
    # Belt and braces: even without our header check, python-jose 3.5 will not do it.
    with pytest.raises(Exception):  # noqa: B017, PT011 - any refusal will do
        jwt.decode(
            hand_made({"alg": "HS256"}, claims(), hmac_key=key_pair[1].encode()),
            key_pair[1],
            algorithms=["HS256"],
            audience=DEFAULT_AUDIENCE,
        )


# --------------------------------------------------------------------------- verification cache


def test_a_verified_token_is_served_from_the_cache_until_exp(
    verifier: JwtVerifier, key_pair: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_token(key_pair[0], "alice", ttl_seconds=60)
    first = verifier.verify(token)
    calls: list[str] = []
    real = verifier._verify

    def counting(t: str) -> tuple[Any, float]:
        calls.append(t)
        return real(t)

    monkeypatch.setattr(verifier, "_verify", counting)
    assert verifier.verify(token) == first
    assert calls == []  # the same bytes: no second signature check
    # Past its exp the entry is dropped and the token checked again (here: within leeway).
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 61)
    assert verifier.verify(token).user_id == "alice"
    assert calls == [token]


def test_a_refused_token_is_never_cached(verifier: JwtVerifier, key_pair: Keys) -> None:
    token = make_token(key_pair[0], "alice", ttl_seconds=-120)
    refused(verifier, token)
    refused(verifier, token)
    assert token not in verifier._verified
    # A token that differs in one byte of its signature is checked on its own.
    good = make_token(key_pair[0], "bob")
    verifier.verify(good)
    tampered = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    refused(verifier, tampered)


def test_the_cache_is_bounded(key_pair: Keys) -> None:
    small = JwtVerifier.from_pem(
        key_pair[1], issuer=DEFAULT_ISSUER, audience=DEFAULT_AUDIENCE, cache_size=2
    )
    tokens = [make_token(key_pair[0], f"u{i}") for i in range(3)]
    for token in tokens:
        small.verify(token)
    assert list(small._verified) == tokens[1:]
