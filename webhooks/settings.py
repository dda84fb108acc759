"""The webhook dispatcher's configuration, read once from the environment (prefix ``WEBHOOK_``).

The signing secrets are derived from the ops API's server key, so the dispatcher reads the
same ``API_SECRET_KEY`` (``WEBHOOK_SECRET_KEY`` overrides it) and the same ``ENV``: in
development without a key it uses the development key the API uses; elsewhere a key is
required. What every service shares (``DATABASE_URL`` …) is described in
:mod:`stream.settings`.
"""

from __future__ import annotations

import ipaddress
from typing import ClassVar, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from contract.webhook import DEV_SECRET_KEY
from stream.settings import ServiceSettings
from webhooks.destinations import DestinationRule

__all__ = ["WebhookSettings"]

_MIN_SECRET_CHARS = 32


class WebhookSettings(ServiceSettings):
    """Settings of one webhook dispatcher instance (several may run on one database)."""

    model_config = SettingsConfigDict(env_prefix="WEBHOOK_", extra="ignore", populate_by_name=True)
    service: ClassVar[str] = "webhooks"

    env: Literal["dev", "test", "staging", "prod"] = Field(
        default="dev", validation_alias=AliasChoices("WEBHOOK_ENV", "API_ENV", "ENV")
    )
    secret_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("WEBHOOK_SECRET_KEY", "API_SECRET_KEY"),
        description="the ops API's server key, which subscriber secrets are derived from",
    )
    poll_s: float = Field(0.5, gt=0, description="longest wait before looking for due work")
    batch: int = Field(32, ge=1, le=1000, description="deliveries claimed at once at most")
    concurrency: int = Field(8, ge=1, le=256, description="requests in flight at most")
    timeout_s: float = Field(10.0, gt=0, le=300, description="one attempt's time limit")
    retry_initial_s: float = Field(
        2.0, gt=0, description="first backoff ceiling (retry n waits ½–1 × min(max, 2ⁿ·this))"
    )
    retry_max_s: float = Field(
        300.0,
        gt=0,
        description="largest wait between two attempts (a receiver back is served within this)",
    )
    max_age_s: float = Field(
        86400.0, gt=0, description="a delivery not made this long after it was queued is dead"
    )
    max_attempts: int = Field(
        500, ge=1, description="a delivery is dead after this many (a backstop: the age rules)"
    )
    max_body_bytes: int = Field(
        65536, ge=4096, le=1048576, description="larger bodies are sent without alert details"
    )
    finished_keep_s: float = Field(
        3 * 86400.0, gt=0, description="delivered and withheld rows are kept this long"
    )
    dead_keep_s: float = Field(30 * 86400.0, gt=0, description="dead letters are kept this long")
    upkeep_s: float = Field(60.0, gt=0, description="how often expiry and pruning run")
    allowed_networks: str = Field(
        "",
        description=(
            "comma-separated private networks deliveries may go to (e.g. 10.20.0.0/16); "
            "outside dev and test only public addresses are allowed otherwise"
        ),
    )

    @field_validator("secret_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        for net in filter(None, (n.strip() for n in value.split(","))):
            ipaddress.ip_network(net, strict=False)  # ValueError names the bad one
        return value

    @property
    def destinations(self) -> DestinationRule:
        """Where deliveries may connect (every address in dev and test)."""
        nets = [n.strip() for n in self.allowed_networks.split(",") if n.strip()]
        return DestinationRule(nets, everything=self.env in ("dev", "test"))

    @model_validator(mode="after")
    def _need_a_key(self) -> Self:
        if self.env == "dev":
            return self
        if self.secret_key is None:
            msg = f"API_SECRET_KEY is required outside dev (ENV={self.env})"
            raise ValueError(msg)
        if len(self.secret_key.get_secret_value()) < _MIN_SECRET_CHARS:
            msg = f"API_SECRET_KEY needs {_MIN_SECRET_CHARS} characters"
            raise ValueError(msg)
        return self

    @property
    def key(self) -> bytes:
        """The server key the subscriber secrets are derived from."""
        if self.secret_key is None:
            return DEV_SECRET_KEY
        return self.secret_key.get_secret_value().encode()

    @property
    def lease_s(self) -> float:
        """How long a claimed delivery is left alone (an attempt and its bookkeeping)."""
        return self.timeout_s * 2 + 30.0
