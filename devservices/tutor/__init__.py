"""Tutor reference implementation: level-appropriate hints from the public hint ladder,
streamed token by token as NDJSON (``POST /v1/hints/stream``)."""

from __future__ import annotations

from typing import Any

from devservices.settings import DevServicesSettings
from devservices.tutor.app import TutorFaults, TutorSettings, create_app
from devservices.tutor.compose import compose_answer, tokenize, tokens_from


def build_dev_app(settings: DevServicesSettings) -> Any:
    """The entry ``devservices.registry`` serves on ``CO_DEV_TUTOR_PORT`` (8103)."""
    return create_app(TutorSettings(internal_token=settings.tutor_token))


__all__ = [
    "TutorFaults",
    "TutorSettings",
    "build_dev_app",
    "compose_answer",
    "create_app",
    "tokenize",
    "tokens_from",
]
