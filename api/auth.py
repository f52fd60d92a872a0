"""JWT bearer authentication: RS256 only, keys loaded and checked once at start-up.

python-jose does the signature and the standard claim checks with every option on
(``require_exp``, ``require_aud``, ``require_iss``, ``require_sub``, ``leeway``); around it:

- the header is inspected first, so ``alg: none`` or an HMAC token "signed" with the public
  key (PEM or DER) never reaches a verifier: only ``RS256`` is looked at at all;
- keys are parsed into RSA key objects when the verifier is built (a bad or short key fails
  the start-up, not the first request), and picked by ``kid``;
- the time claims must be JSON numbers: python-jose would take ``"exp": "9999999999"`` and
  crash on ``"exp": Infinity``;
- keys may also come from a JWKS URL (``JwksKeySource``): fetched lazily, cached, and fetched
  again on an unknown ``kid`` at most once per ``min_refresh_seconds``, so a stream of tokens
  with made-up key ids cannot turn the API into a JWKS flooder.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import ExpiredSignatureError, JWTError, jwk, jwt

from api.errors import Forbidden, Unauthorized
from domain.settings import SettingsError

ALGORITHM = "RS256"
MIN_RSA_BITS = 2048
MAX_JWKS_BYTES = 256 * 1024

log = logging.getLogger("co.api.auth")


class UnusableKeyError(ValueError):
    """A verification key that cannot be used (not RSA, too short, unparsable)."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def require_role(self, role: str) -> None:
        if role not in self.roles:
            raise Forbidden(f"this action needs the '{role}' role")


# --------------------------------------------------------------------------- keys


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64u_int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _checked_rsa(key: object) -> rsa.RSAPublicKey:
    if not isinstance(key, rsa.RSAPublicKey):
        raise UnusableKeyError("the JWT verification key must be an RSA public key")
    if key.key_size < MIN_RSA_BITS:
        raise UnusableKeyError(f"the JWT verification key must have at least {MIN_RSA_BITS} bits")
    return key


def load_public_pem(pem: str) -> rsa.RSAPublicKey:
    """Parse a PEM RSA public key, or raise ``UnusableKeyError`` saying why it is unusable."""
    try:
        key = serialization.load_pem_public_key(pem.strip().encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise UnusableKeyError("the JWT verification key is not a PEM public key") from None
    return _checked_rsa(key)


def thumbprint(key: rsa.RSAPublicKey) -> str:
    """The RFC 7638 JWK thumbprint of an RSA key: the ``kid`` most issuers give it."""
    numbers = key.public_numbers()
    canonical = json.dumps(
        {"e": _b64u(_int_bytes(numbers.e)), "kty": "RSA", "n": _b64u(_int_bytes(numbers.n))},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64u(hashlib.sha256(canonical.encode()).digest())


def key_id_of(pem: str) -> str:
    """The key id a PEM key answers to (its RFC 7638 thumbprint)."""
    return thumbprint(load_public_pem(pem))


def _jose_key(key: rsa.RSAPublicKey) -> Any:
    # A prepared key object: python-jose would otherwise re-parse the PEM on every request.
    return jwk.construct(key, ALGORITHM)


def _keys_from_jwks(document: object) -> dict[str, Any]:
    """The usable signing keys of a JWKS document, by ``kid``; unusable entries are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise UnusableKeyError("the JWKS document has no 'keys' list")
    keys: dict[str, Any] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        kid, use, alg = entry.get("kid"), entry.get("use", "sig"), entry.get("alg", ALGORITHM)
        if not isinstance(kid, str) or not kid or use != "sig" or alg != ALGORITHM:
            continue
        try:
            public = rsa.RSAPublicNumbers(_b64u_int(entry["e"]), _b64u_int(entry["n"]))
            keys[kid] = _jose_key(_checked_rsa(public.public_key()))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("skipping an unusable JWKS key", extra={"kid": kid, "reason": str(exc)})
    return keys


async def _http_get_json(url: str, timeout: float) -> object:
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        response = await client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise UnusableKeyError("the JWKS document is too large")
        return response.json()


class JwksKeySource:
    """Signing keys from a JWKS URL: cached, refreshed on expiry and on an unknown ``kid``.

    Refreshes are single-flight and rate-limited (``min_refresh_seconds``). A failed fetch
    keeps the keys already known: an identity provider's hiccup must not log everyone out.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: float = 3600.0,
        min_refresh_seconds: float = 30.0,
        timeout_seconds: float = 5.0,
        fetch: Callable[[str, float], Awaitable[object]] = _http_get_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._ttl = ttl_seconds
        self._min_refresh = min_refresh_seconds
        self._timeout = timeout_seconds
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    def get(self, kid: str) -> Any | None:
        return self._keys.get(kid)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def _wants_refresh(self, kid: str | None) -> bool:
        now = self._clock()
        stale = now - self._fetched_at > self._ttl
        unknown = kid is not None and kid not in self._keys
        return (stale or unknown) and now - self._attempted_at >= self._min_refresh

    async def ensure(self, kid: str | None) -> None:
        """Fetch the document if it is stale or does not know ``kid`` (rate-limited)."""
        if not self._wants_refresh(kid):
            return
        async with self._lock:
            if not self._wants_refresh(kid):  # another request refreshed while we waited
                return
            self._attempted_at = self._clock()
            self.fetch_count += 1
            try:
                keys = _keys_from_jwks(await self._fetch(self.url, self._timeout))
            except Exception as exc:  # any failure keeps the old keys
                log.warning(
                    "JWKS fetch failed; keeping the cached keys",
                    extra={"url": self.url, "error": type(exc).__name__},
                )
                return
            self._keys = keys
            self._fetched_at = self._clock()


# --------------------------------------------------------------------------- verifier


def _numeric_date(claims: Mapping[str, Any], name: str) -> None:
    if name not in claims:
        return
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Unauthorized(f"the token's '{name}' claim is not a number")


class JwtVerifier:
    """Verifies bearer tokens against RSA public keys fixed at start-up and/or a JWKS URL."""

    def __init__(
        self,
        keys: Mapping[str, str],
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = 30,
        max_bytes: int = 8192,
        roles_claim: str = "roles",
        jwks: JwksKeySource | None = None,
        cache_size: int = 10_000,
    ) -> None:
        if not keys and jwks is None:
            raise ValueError("at least one verification key or a JWKS URL is required")
        self._keys: dict[str, Any] = {
            kid: _jose_key(load_public_pem(pem)) for kid, pem in keys.items()
        }
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._max_bytes = max_bytes
        self._roles_claim = roles_claim
        # Verified tokens by their exact text, until their ``exp``: a token is immutable, so
        # the same bytes verified once verify the same way until they expire (RS256 costs
        # ~0.4 ms of CPU per request otherwise). Bounded LRU; failures are never cached.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def from_pem(
        cls, pem: str | None, *, jwks_url: str | None = None, **kwargs: Any
    ) -> JwtVerifier:
        """A verifier for one PEM key (its ``kid`` is its thumbprint) and/or a JWKS URL."""
        try:
            keys = {key_id_of(pem): pem} if pem else {}
        except UnusableKeyError as exc:
            raise SettingsError(
                f"Configuration error:\n  CO_JWT_PUBLIC_KEY is invalid: {exc}"
            ) from None
        jwks = JwksKeySource(jwks_url) if jwks_url else None
        return cls(keys, jwks=jwks, **kwargs)

    @property
    def jwks(self) -> JwksKeySource | None:
        return self._jwks

    def _header(self, token: str) -> dict[str, Any]:
        if len(token.encode()) > self._max_bytes:
            raise Unauthorized("the token is too large")
        if token.count(".") != 2:
            raise Unauthorized("the token is malformed")
        try:
            header = jwt.get_unverified_header(token)
        except (JWTError, ValueError, TypeError):
            raise Unauthorized("the token is malformed") from None
        if not isinstance(header, dict):
            raise Unauthorized("the token is malformed")
        if header.get("alg") != ALGORITHM:
            raise Unauthorized(f"only {ALGORITHM} tokens are accepted")
        if "crit" in header:  # RFC 7515 §4.1.11: extensions we do not understand must fail
            raise Unauthorized("the token uses critical header extensions")
        return header

    def _key_for(self, header: dict[str, Any]) -> Any:
        kid = header.get("kid")
        if kid is None:
            if len(self._keys) == 1 and self._jwks is None:
                return next(iter(self._keys.values()))
            raise Unauthorized("the token names no key id")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None and isinstance(kid, str) and self._jwks is not None:
            key = self._jwks.get(kid)
        if key is None:
            raise Unauthorized("the token's key id is unknown")
        return key

    async def averify(self, token: str) -> Principal:
        """``verify``, after refreshing the JWKS keys if the token names an unknown ``kid``."""
        if self._jwks is not None:
            kid = self._header(token).get("kid")
            await self._jwks.ensure(kid if isinstance(kid, str) else None)
        return self.verify(token)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token, or ``Unauthorized`` saying what is wrong."""
        cached = self._verified.get(token)
        if cached is not None:
            principal, exp = cached
            if time.time() < exp:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, exp = self._verify(token)
        if self._cache_size > 0:
            self._verified[token] = (principal, exp)
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        header = self._header(token)
        key = self._key_for(header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "require_exp": True,
                    "require_aud": True,
                    "require_iss": True,
                    "require_sub": True,
                    "verify_exp": True,
                    "verify_nbf": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "leeway": self._leeway,
                },
            )
        except ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except JWTError as exc:
            raise Unauthorized(_describe(exc)) from None
        except (ValueError, TypeError, OverflowError, json.JSONDecodeError):
            # e.g. "exp": Infinity, which python-jose passes to int()
            raise Unauthorized("the token is malformed") from None
        for name in ("exp", "nbf", "iat"):
            _numeric_date(claims, name)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 200:
            raise Unauthorized("the token's subject is missing or invalid")
        roles = claims.get(self._roles_claim, [])
        if isinstance(roles, str):
            roles = roles.split()
        if not isinstance(roles, list):
            roles = []
        principal = Principal(user_id=sub, roles=frozenset(r for r in roles if isinstance(r, str)))
        # Cached only until ``exp`` itself (stricter than the leeway the check allows).
        return principal, float(claims["exp"])


def _describe(exc: JWTError) -> str:
    text = str(exc).lower()
    if "audience" in text:
        return "the token is not meant for this service (audience)"
    if "issuer" in text:
        return "the token's issuer is not trusted"
    if "not yet valid" in text or "nbf" in text:
        return "the token is not valid yet"
    if "signature" in text:
        return "the token's signature is not valid"
    if "missing" in text or "required" in text:
        return "the token lacks a required claim (exp, aud, iss and sub are required)"
    return "the token is not valid"


def parse_authorization(value: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header, or 401."""
    if not value:
        # RFC 6750 §3.1: a request without credentials gets no error code.
        raise Unauthorized("a bearer token is required", error=None)
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "the Authorization header must be 'Bearer <token>'", error="invalid_request"
        )
    return token.strip()
