"""JWT bearer authentication: RS256 only, keys loaded once at start-up.

python-jose is used with every check it can do turned on (``require_exp``,
``require_aud``, ``require_iat`` off, ``leeway``); the header is inspected first
so that ``alg: none`` or an HMAC token "signed" with the public key never reaches
a verifier.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from jose import ExpiredSignatureError, JWTError, jwt

from api.errors import Forbidden, Unauthorized

ALGORITHM = "RS256"


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


def key_id_of(pem: str) -> str:
    """A stable key id for a PEM key (SHA-256 of the key text, like a thumbprint)."""
    normalised = "".join(pem.split())
    return base64.urlsafe_b64encode(hashlib.sha256(normalised.encode()).digest())[:16].decode()


class JwtVerifier:
    """Verifies bearer tokens against a fixed set of RSA public keys."""

    def __init__(
        self,
        keys: dict[str, str],
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = 30,
        max_bytes: int = 8192,
        roles_claim: str = "roles",
    ) -> None:
        if not keys:
            raise ValueError("at least one verification key is required")
        self._keys = dict(keys)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._max_bytes = max_bytes
        self._roles_claim = roles_claim

    @classmethod
    def from_pem(cls, pem: str, **kwargs: Any) -> JwtVerifier:
        return cls({key_id_of(pem): pem}, **kwargs)

    def _header(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except JWTError:
            raise Unauthorized("the token is malformed") from None
        if not isinstance(header, dict):
            raise Unauthorized("the token is malformed")
        return header

    def _key_for(self, header: dict[str, Any]) -> str:
        kid = header.get("kid")
        if kid is None:
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            raise Unauthorized("the token names no key id")
        if not isinstance(kid, str) or kid not in self._keys:
            raise Unauthorized("the token's key id is unknown")
        return self._keys[kid]

    def verify(self, token: str) -> Principal:
        if len(token.encode()) > self._max_bytes:
            raise Unauthorized("the token is too large")
        if token.count(".") != 2:
            raise Unauthorized("the token is malformed")
        header = self._header(token)
        if header.get("alg") != ALGORITHM:
            raise Unauthorized(f"only {ALGORITHM} tokens are accepted")
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
        except (ValueError, TypeError, json.JSONDecodeError):
            raise Unauthorized("the token is malformed") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 200:
            raise Unauthorized("the token's subject is missing or invalid")
        roles = claims.get(self._roles_claim, [])
        if isinstance(roles, str):
            roles = roles.split()
        if not isinstance(roles, list):
            roles = []
        return Principal(user_id=sub, roles=frozenset(str(r) for r in roles))


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
        raise Unauthorized("a bearer token is required")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()
