"""Process settings, read once from the environment at start-up.

Every variable is documented in the README's table. Workflows never read settings:
only the API, the worker, activities and the dev tooling do.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import (
    AnyHttpUrl,
    Field,
    PostgresDsn,
    RedisDsn,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class SettingsError(RuntimeError):
    """Raised at start-up when the environment is missing or malformed."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CO_", extra="ignore", frozen=True)

    # The original README's variables.
    db_url: PostgresDsn
    redis_url: RedisDsn
    jwt_public_key: str | None = Field(
        default=None, description="PEM of the RSA public key that verifies JWTs."
    )
    jwt_public_key_file: str | None = Field(
        default=None, description="Path of a PEM file; used when CO_JWT_PUBLIC_KEY is unset."
    )
    jwt_jwks_url: AnyHttpUrl | None = Field(
        default=None, description="A JWKS endpoint; keys are selected by `kid` and cached."
    )
    api_base: AnyHttpUrl = AnyHttpUrl("https://api.scimigo.com")
    eval_base: AnyHttpUrl
    problem_bank_base: AnyHttpUrl
    tutor_base: AnyHttpUrl

    # Authentication.
    jwt_issuer: str = "https://api.scimigo.com"
    jwt_audience: str = "co.scimigo.com"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    jwt_max_bytes: int = Field(default=8192, ge=512)
    jwt_roles_claim: str = "roles"

    # Upstream services.
    internal_token: str = Field(default="dev-internal-token", min_length=8)
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)

    # Temporal.
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "co-main"
    worker_graceful_shutdown_seconds: float = Field(default=30.0, ge=0)
    # Workflows kept in a worker's memory between tasks. Most workflows sleep for days
    # (a review schedule per learner): caching them all would cost memory for nothing,
    # a woken one replays its short history. See bench/reviews_sleeping.py.
    worker_max_cached_workflows: int = Field(default=500, ge=0)

    # The HTTP edge.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000"]
    )
    rate_limit_per_minute: int = Field(default=60, ge=1)
    sse_max_streams: int = Field(default=2, ge=1)
    sse_slot_ttl_seconds: int = Field(default=30, ge=5)
    max_body_bytes: int = Field(default=128 * 1024, ge=1024)
    max_code_bytes: int = Field(default=64 * 1024, ge=1)
    max_answer_bytes: int = Field(default=4 * 1024, ge=1)

    # Sessions.
    session_idle_days: float = Field(default=14.0, gt=0)

    # The tutor (SSE relay of TutorTurnWorkflow's Redis stream).
    sse_ping_seconds: float = Field(
        default=10.0, gt=0, description="Keep-alive comment interval of an SSE stream."
    )
    sse_send_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A stream whose client does not take an event for this long is closed.",
    )
    tutor_stream_ttl_seconds: int = Field(
        default=3600, ge=10, description="How long a finished turn's Redis stream stays resumable."
    )
    tutor_idle_timeout_seconds: float = Field(
        default=60.0, gt=0, description="A relay that receives nothing for this long gives up."
    )
    tutor_max_message_chars: int = Field(default=2000, ge=1)

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError("'*' is not allowed: list the approved origins")
        return value

    def public_key_pem(self) -> str | None:
        """The JWT verification key, from the variable or the file it names."""
        if self.jwt_public_key:
            return self.jwt_public_key.replace("\\n", "\n")
        if self.jwt_public_key_file:
            with open(self.jwt_public_key_file, encoding="utf-8") as fh:
                return fh.read()
        return None


def load_settings() -> Settings:
    """Read the environment, or fail with a message naming every bad variable."""
    try:
        return Settings()  # type: ignore[call-arg,unused-ignore]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "CO_" + "_".join(str(p) for p in err["loc"]).upper()
            reason = "is required" if err["type"] == "missing" else f"is invalid: {err['msg']}"
            problems.append(f"  {name} {reason}")
        raise SettingsError("Configuration error:\n" + "\n".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
