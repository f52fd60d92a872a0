from __future__ import annotations

import pytest

from domain.settings import SettingsError, load_settings

REQUIRED = {
    "CO_DB_URL": "postgresql+asyncpg://u@localhost/db",
    "CO_REDIS_URL": "redis://localhost:6379/0",
    "CO_EVAL_BASE": "http://localhost:8102",
    "CO_PROBLEM_BANK_BASE": "http://localhost:8101",
    "CO_TUTOR_BASE": "http://localhost:8103",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(__import__("os").environ):
        if key.startswith("CO_"):
            monkeypatch.delenv(key)
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def test_defaults_are_documented_values(env: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.rate_limit_per_minute == 60
    assert s.sse_max_streams == 2
    assert str(s.api_base) == "https://api.scimigo.com/"
    assert s.cors_origins == ["http://localhost:3000"]


def test_missing_and_malformed_variables_are_named(env: pytest.MonkeyPatch) -> None:
    env.delenv("CO_DB_URL")
    env.setenv("CO_EVAL_BASE", "not a url")
    with pytest.raises(SettingsError) as err:
        load_settings()
    text = str(err.value)
    assert "CO_DB_URL is required" in text
    assert "CO_EVAL_BASE is invalid" in text


def test_cors_origins_are_a_comma_list_and_wildcard_is_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("CO_CORS_ORIGINS", "https://a.example, https://b.example")
    assert load_settings().cors_origins == ["https://a.example", "https://b.example"]
    env.setenv("CO_CORS_ORIGINS", "*")
    with pytest.raises(SettingsError, match="CO_CORS_ORIGINS"):
        load_settings()


def test_public_key_from_file(env: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "k.pem"
    path.write_text("-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n")
    env.setenv("CO_JWT_PUBLIC_KEY_FILE", str(path))
    assert "BEGIN PUBLIC KEY" in (load_settings().public_key_pem() or "")


def test_each_upstream_has_its_own_development_token(env: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert len({s.problem_bank_token, s.eval_token, s.tutor_token}) == 3


def test_the_former_single_token_stands_in_only_for_unset_ones(env: pytest.MonkeyPatch) -> None:
    env.setenv("CO_INTERNAL_TOKEN", "legacy-shared-secret")
    env.setenv("CO_EVAL_TOKEN", "eval-only-secret")
    s = load_settings()
    assert s.problem_bank_token == "legacy-shared-secret"
    assert s.tutor_token == "legacy-shared-secret"
    assert s.eval_token == "eval-only-secret"


PRODUCTION_OK = {
    "CO_ENV": "production",
    "CO_PROBLEM_BANK_TOKEN": "prod-bank-secret-1",
    "CO_EVAL_TOKEN": "prod-eval-secret-1",
    "CO_TUTOR_TOKEN": "prod-tutor-secret-1",
    "CO_JWT_JWKS_URL": "https://api.scimigo.com/.well-known/jwks.json",
    "CO_CORS_ORIGINS": "https://app.scimigo.com",
}


def test_production_starts_with_real_values(env: pytest.MonkeyPatch) -> None:
    for key, value in PRODUCTION_OK.items():
        env.setenv(key, value)
    assert load_settings().env == "production"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("CO_PROBLEM_BANK_TOKEN", "dev-problem-bank-token", "CO_PROBLEM_BANK_TOKEN"),
        ("CO_EVAL_TOKEN", "dev-eval-token", "CO_EVAL_TOKEN"),
        ("CO_TUTOR_TOKEN", "dev-internal-token", "CO_TUTOR_TOKEN"),
        ("CO_INTERNAL_TOKEN", "dev-internal-token", "CO_INTERNAL_TOKEN"),
        ("CO_JWT_JWKS_URL", "http://api.scimigo.com/jwks.json", "CO_JWT_JWKS_URL"),
        ("CO_CORS_ORIGINS", "https://app.scimigo.com,null", "CO_CORS_ORIGINS"),
        ("CO_CORS_ORIGINS", "*", "CO_CORS_ORIGINS"),
    ],
)
def test_production_refuses_development_defaults_naming_each(
    env: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    for key, good in PRODUCTION_OK.items():
        env.setenv(key, good)
    env.setenv(variable, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert named in str(err.value)


def test_production_names_every_problem_at_once(env: pytest.MonkeyPatch) -> None:
    env.setenv("CO_ENV", "production")  # every token left at its development default
    env.setenv("CO_JWT_JWKS_URL", "http://jwks.example/keys")
    env.setenv("CO_CORS_ORIGINS", "null")
    with pytest.raises(SettingsError) as err:
        load_settings()
    text = str(err.value)
    for name in (
        "CO_PROBLEM_BANK_TOKEN",
        "CO_EVAL_TOKEN",
        "CO_TUTOR_TOKEN",
        "CO_JWT_JWKS_URL",
        "CO_CORS_ORIGINS",
    ):
        assert name in text
