"""Process settings, read once from the environment at start-up.

Every variable is documented in the README's table. Workflows never read settings:
only the API, the worker, activities and the dev tooling do.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    Field,
    PostgresDsn,
    RedisDsn,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.limits import TUTOR_MAX_MESSAGE_CHARS

# Development defaults of the upstream credentials: one per upstream, so that a service
# can tell them apart (Problem Bank refuses the Eval's and the Tutor's). Refused in
# production, as is the former shared default.
DEV_PROBLEM_BANK_TOKEN = "dev-problem-bank-token"
DEV_EVAL_TOKEN = "dev-eval-token"
DEV_TUTOR_TOKEN = "dev-tutor-token"
DEV_INTERNAL_TOKEN = "dev-internal-token"
DEV_API_TOKEN = "dev-main-api-token"
KNOWN_DEV_TOKENS = frozenset(
    {DEV_PROBLEM_BANK_TOKEN, DEV_EVAL_TOKEN, DEV_TUTOR_TOKEN, DEV_INTERNAL_TOKEN}
)
UPSTREAM_TOKENS = {
    "problem_bank_token": DEV_PROBLEM_BANK_TOKEN,
    "eval_token": DEV_EVAL_TOKEN,
    "tutor_token": DEV_TUTOR_TOKEN,
    "api_token": DEV_API_TOKEN,
}


def fill_upstream_tokens(values: Any) -> Any:
    """``CO_INTERNAL_TOKEN`` (the former single credential) stands in for any unset
    per-upstream token: a deployment that has not split its secrets yet keeps working."""
    if isinstance(values, dict) and values.get("internal_token"):
        for name in UPSTREAM_TOKENS:
            values.setdefault(name, values["internal_token"])
    return values


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

    # Where this process runs: "production" refuses development defaults at start-up.
    env: Literal["development", "test", "production"] = "development"

    # Upstream services: one credential each (X-Internal-Token).
    problem_bank_token: str = Field(default=DEV_PROBLEM_BANK_TOKEN, min_length=8)
    eval_token: str = Field(default=DEV_EVAL_TOKEN, min_length=8)
    tutor_token: str = Field(default=DEV_TUTOR_TOKEN, min_length=8)
    # Sent to the main API (``CO_API_BASE``) with review notifications.
    api_token: str = Field(default=DEV_API_TOKEN, min_length=8)
    internal_token: str | None = Field(
        default=None, min_length=8, description="Deprecated: fallback for unset *_TOKEN."
    )
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)

    # Temporal.
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "co-main"
    worker_graceful_shutdown_seconds: float = Field(default=30.0, ge=0)
    # A real cluster: mTLS (client certificate and key, CA, server name) and/or an API key
    # (Temporal Cloud). Each PEM setting holds the PEM itself or the path of a PEM file;
    # checked at start-up by ``domain.contracts_connection.tls_config``.
    temporal_tls: bool = False
    temporal_tls_client_cert: str | None = None
    temporal_tls_client_key: str | None = None
    temporal_tls_ca: str | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: str | None = Field(default=None, repr=False)

    # Observability. Metrics are served on ports of their own, never through the public
    # listener (and so never through the load balancer): 0 turns an endpoint off.
    metrics_host: str = "127.0.0.1"
    api_metrics_port: int = Field(default=9100, ge=0, le=65535)
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)
    # OTLP/HTTP traces endpoint (e.g. http://collector:4318); unset: no tracing at all.
    otlp_endpoint: AnyHttpUrl | None = None

    # Workflows kept in a worker's memory between tasks. Most workflows sleep for days
    # (a review schedule per learner): caching them all would cost memory for nothing,
    # a woken one replays its short history. See bench/reviews_sleeping.py.
    worker_max_cached_workflows: int = Field(default=500, ge=0)

    # The HTTP edge.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000"]
    )
    rate_limit_per_minute: int = Field(default=60, ge=1)
    # Published tracks are served from a per-process cache; each process checks at most this
    # often whether anything published changed (one small query), so a publication is seen
    # by every replica within this many seconds. 0: check on every request.
    catalog_recheck_seconds: float = Field(default=1.0, ge=0, le=60)
    catalog_cache_entries: int = Field(default=256, ge=1)
    sse_max_streams: int = Field(default=2, ge=1)
    sse_slot_ttl_seconds: int = Field(default=30, ge=5)
    max_body_bytes: int = Field(default=128 * 1024, ge=1024)
    max_code_bytes: int = Field(default=64 * 1024, ge=1)
    max_answer_bytes: int = Field(default=4 * 1024, ge=1)
    max_submissions_in_flight: int = Field(
        default=5, ge=1, description="Per user: submissions queued or running at once."
    )

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
    tutor_max_message_chars: int = Field(
        default=TUTOR_MAX_MESSAGE_CHARS,
        ge=1,
        le=TUTOR_MAX_MESSAGE_CHARS,
        description="Longest learner message to the tutor; may only tighten the schema's bound.",
    )

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator(
        "temporal_tls_client_cert",
        "temporal_tls_client_key",
        "temporal_tls_ca",
        "temporal_tls_server_name",
        "temporal_api_key",
        "otlp_endpoint",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # ECS injects every secret the task definition names; an empty one means "not used".
        return None if isinstance(value, str) and not value.strip() else value

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

    @model_validator(mode="before")
    @classmethod
    def _fallback_token(cls, values: Any) -> Any:
        return fill_upstream_tokens(values)

    @model_validator(mode="after")
    def _production_refuses_dev_defaults(self) -> Settings:
        if self.env != "production":
            return self
        problems = [
            f"CO_{name.upper()} is a known development token"
            for name in (*UPSTREAM_TOKENS, "internal_token")
            if getattr(self, name) in KNOWN_DEV_TOKENS
        ]
        if self.jwt_jwks_url is not None and self.jwt_jwks_url.scheme != "https":
            problems.append("CO_JWT_JWKS_URL must be an https:// URL")
        problems += [
            f"CO_CORS_ORIGINS must not contain {origin!r}"
            for origin in self.cors_origins
            if origin.strip().lower() in ("*", "null")
        ]
        if problems:
            raise ValueError("CO_ENV=production refuses: " + "; ".join(problems))
        return self

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
            if not err["loc"]:  # a check across variables names them in its message
                problems.append(f"  {str(err['msg']).removeprefix('Value error, ')}")
                continue
            name = "CO_" + "_".join(str(p) for p in err["loc"]).upper()
            reason = "is required" if err["type"] == "missing" else f"is invalid: {err['msg']}"
            problems.append(f"  {name} {reason}")
        raise SettingsError("Configuration error:\n" + "\n".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
