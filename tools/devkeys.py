"""Development JWT keys and tokens.

``python -m tools.devkeys token --user alice [--roles admin]`` prints a token signed by
the dev key pair in ``.dev/`` (made on first use). Production keys never come from here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

DEV_DIR = Path(__file__).resolve().parent.parent / ".dev"
DEFAULT_ISSUER = "https://api.scimigo.com"
DEFAULT_AUDIENCE = "co.scimigo.com"


def generate_key_pair() -> tuple[str, str]:
    """A fresh RSA-2048 key pair as (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def ensure_dev_keys(directory: Path = DEV_DIR) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / "jwt_private.pem", directory / "jwt_public.pem"
    if not private_path.exists() or not public_path.exists():
        private, public = generate_key_pair()
        private_path.write_text(private)
        private_path.chmod(0o600)
        public_path.write_text(public)
    return private_path, public_path


def make_token(
    private_pem: str,
    user_id: str,
    *,
    roles: list[str] | None = None,
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
    ttl_seconds: int = 24 * 3600,
    headers: dict[str, str] | None = None,
    **claims: object,
) -> str:
    now = int(time.time())
    payload: dict[str, object] = {
        "sub": user_id,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "roles": roles or [],
    }
    payload.update(claims)
    token: str = jwt.encode(payload, private_pem, algorithm="RS256", headers=headers)
    return token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.devkeys")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ensure", help="make the dev key pair if missing and print the public key path")
    tok = sub.add_parser("token", help="print a development token")
    tok.add_argument("--user", required=True)
    tok.add_argument("--roles", default="", help="comma-separated, e.g. admin")
    tok.add_argument("--ttl", type=int, default=24 * 3600, help="seconds")
    args = parser.parse_args(argv)
    private_path, public_path = ensure_dev_keys()
    if args.command == "ensure":
        print(public_path)
        return 0
    roles = [r for r in args.roles.split(",") if r]
    print(make_token(private_path.read_text(), args.user, roles=roles, ttl_seconds=args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
