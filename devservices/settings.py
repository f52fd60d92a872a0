"""Settings of the local dev services (environment variables, ``CO_`` prefix)."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.settings import (
    DEV_API_TOKEN,
    DEV_EVAL_TOKEN,
    DEV_INTERNAL_TOKEN,
    DEV_PROBLEM_BANK_TOKEN,
    DEV_TUTOR_TOKEN,
    fill_upstream_tokens,
)

DEFAULT_INTERNAL_TOKEN = DEV_INTERNAL_TOKEN  # a service's own token when built alone


class DevServicesSettings(BaseSettings):
    """``CO_{PROBLEM_BANK,EVAL,TUTOR,API}_TOKEN`` (each service accepts only its own; the
    deprecated ``CO_INTERNAL_TOKEN`` stands in for unset ones), ``CO_DEV_HOST`` and
    ``CO_DEV_{PROBLEM_BANK,EVAL,TUTOR}_PORT``."""

    model_config = SettingsConfigDict(env_prefix="CO_", extra="ignore")

    problem_bank_token: str = DEV_PROBLEM_BANK_TOKEN
    eval_token: str = DEV_EVAL_TOKEN
    tutor_token: str = DEV_TUTOR_TOKEN
    api_token: str = DEV_API_TOKEN  # the main API's stand-in
    internal_token: str | None = None
    dev_host: str = "127.0.0.1"
    dev_problem_bank_port: int = 8101
    dev_eval_port: int = 8102
    dev_tutor_port: int = 8103
    dev_main_api_port: int = 8104  # the main API's notifications stand-in

    @model_validator(mode="before")
    @classmethod
    def _fallback_token(cls, values: Any) -> Any:
        return fill_upstream_tokens(values)
