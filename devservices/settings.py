"""Settings of the local dev services (environment variables, ``CO_`` prefix)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_INTERNAL_TOKEN = "dev-internal-token"


class DevServicesSettings(BaseSettings):
    """``CO_INTERNAL_TOKEN``, ``CO_DEV_HOST`` and the ports (``CO_DEV_*_PORT``)."""

    model_config = SettingsConfigDict(env_prefix="CO_", extra="ignore")

    internal_token: str = DEFAULT_INTERNAL_TOKEN
    dev_host: str = "127.0.0.1"
    dev_problem_bank_port: int = 8101
    dev_eval_port: int = 8102
    dev_tutor_port: int = 8103
    dev_main_api_port: int = 8104  # the main API's notifications stand-in
