"""ApiSettings: environment variables, dev defaults, refusal of placeholder secrets; main()."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from contract import Domain
from ops_api.__main__ import main
from ops_api.auth import Role, resolve_token
from ops_api.settings import DEV_TOKENS, ApiSettings

_ENV_VARS = ("ENV", "API_ENV", "DATABASE_URL", "API_DATABASE_URL", "API_TOKENS", "API_HOST")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def test_dev_defaults_work_out_of_the_box() -> None:
    settings = ApiSettings()
    assert settings.is_dev
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.anonymous_viewers
    assert settings.effective_tokens == DEV_TOKENS
    flood = resolve_token("dev-flood", settings.effective_tokens)
    assert flood is not None
    assert flood.scope_domains == frozenset({Domain.FLOOD})


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "3f9c0d6a2b7e4c1f8a5d"
    monkeypatch.setenv("ENV", "prod")
    monkeypatch.setenv("DATABASE_URL", "postgresql://ioc:s3cr3t-pw@db:5432/hanoi")
    monkeypatch.setenv("API_HOST", "0.0.0.0")
    monkeypatch.setenv(
        "API_TOKENS",
        json.dumps({token: {"role": "viewer", "name": "so-tnmt", "scope_domains": ["flood"]}}),
    )
    monkeypatch.setenv("API_WS_MAX_CLIENTS", "42")
    monkeypatch.setenv("API_PUBLIC_BASE_URL", "https://ioc.hanoi.example/")
    settings = ApiSettings()
    assert settings.env == "prod"
    assert settings.database_url.endswith("@db:5432/hanoi")
    assert settings.ws_max_clients == 42
    assert not settings.anonymous_viewers
    principal = resolve_token(token, settings.effective_tokens)
    assert principal is not None
    assert (principal.name, principal.role) == ("so-tnmt", Role.VIEWER)
    assert resolve_token("dev-admin", settings.effective_tokens) is None
    monkeypatch.setenv("API_DATABASE_URL", "postgresql://other/db")
    assert ApiSettings().database_url == "postgresql://other/db"  # the API_ name wins


@pytest.mark.parametrize(
    ("tokens", "database_url", "match"),
    [
        ({"dev-admin": {"role": "admin"}}, "postgresql://db/hanoi", "placeholder token"),
        ({"changethis": {"role": "admin"}}, "postgresql://db/hanoi", "placeholder token"),
        ({"short-token": {"role": "admin"}}, "postgresql://db/hanoi", "at least 16"),
        ({"a" * 24: {"role": "admin"}}, "postgresql://u:changethis@db/hanoi", "password"),
    ],
)
def test_placeholder_secrets_refused_outside_dev(
    tokens: dict[str, object], database_url: str, match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        ApiSettings.model_validate(
            {"env": "prod", "tokens": tokens, "database_url": database_url,
             "public_base_url": "https://x.vn"}
        )  # fmt: skip
    ApiSettings.model_validate({"env": "dev", "tokens": tokens, "database_url": database_url})


def test_dev_tokens_only_on_loopback() -> None:
    with pytest.raises(ValidationError, match="development tokens are public"):
        ApiSettings(host="0.0.0.0")
    assert ApiSettings(host="::1").is_dev
    ApiSettings.model_validate({"host": "0.0.0.0", "tokens": {"x" * 20: {"role": "viewer"}}})


def test_unnamed_tokens_get_a_stable_label() -> None:
    settings = ApiSettings.model_validate(
        {
            "env": "prod",
            "tokens": {"b" * 20: {"role": "operator"}},
            "public_base_url": "https://x.vn",
        }
    )
    first = resolve_token("b" * 20, settings.effective_tokens)
    assert first is not None
    assert first.name.startswith("operator-")
    assert first == resolve_token("b" * 20, settings.effective_tokens)
    assert "b" * 6 not in first.name


def test_main_refuses_bad_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENV", "prod")
    monkeypatch.setenv("API_TOKENS", json.dumps({"changethis": {"role": "admin"}}))
    assert main(["--port", "8123"]) == 2


def test_production_needs_a_public_base_url_and_a_real_secret_key() -> None:
    base = {"env": "prod", "tokens": {"c" * 20: {"role": "admin"}}}
    with pytest.raises(ValidationError, match="API_PUBLIC_BASE_URL"):
        ApiSettings.model_validate(base)
    with pytest.raises(ValidationError, match="API_SECRET_KEY"):
        ApiSettings.model_validate(
            {**base, "public_base_url": "https://x.vn", "secret_key": "changeme"}
        )
    settings = ApiSettings.model_validate({**base, "public_base_url": "https://x.vn/ioc/"})
    assert settings.base_url == "https://x.vn/ioc"
    assert settings.secret_key_bytes is None  # subscribers cannot be made without one
    assert not settings.effective_docs  # API docs are off in prod unless asked for
    assert settings.effective_metrics_role is Role.VIEWER  # /metrics needs a token
    dev = ApiSettings()
    assert (dev.effective_docs, dev.effective_metrics_role) == (True, None)


def test_metrics_role_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_METRICS_ROLE", "open")
    assert ApiSettings().effective_metrics_role is None
    monkeypatch.setenv("API_METRICS_ROLE", "operator")
    assert ApiSettings().effective_metrics_role is Role.OPERATOR
