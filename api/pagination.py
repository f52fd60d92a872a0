"""Opaque keyset cursors over (created_at, id), for lists ordered by creation time."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from api.errors import Unprocessable


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) a cursor stands for, or 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, row_id = raw.partition("|")
        return datetime.fromisoformat(created), uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError):
        raise Unprocessable("cursor is not valid; use the next_cursor of a previous page") from None


def encode_key_cursor(*parts: str) -> str:
    """A cursor over a list ordered by text keys (e.g. tracks by domain and slug)."""
    raw = "\x1f".join(parts).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_key_cursor(cursor: str, count: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raw = ""
    parts = raw.split("\x1f")
    if len(parts) != count or not all(parts):
        raise Unprocessable("cursor is not valid; use the next_cursor of a previous page")
    return parts
