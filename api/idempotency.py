"""The ``Idempotency-Key`` header: one rule for every POST that accepts it."""

from __future__ import annotations

from api.errors import Unprocessable

IDEMPOTENCY_KEY_MAX = 200


def check_idempotency_key(key: str | None) -> str | None:
    """The key as given, or 422 when it is empty, too long or not printable ASCII."""
    if key is None:
        return None
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not key.isprintable() or not key.isascii():
        raise Unprocessable(
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters"
        )
    return key
