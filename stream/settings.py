"""The settings bases of our services: every service's, and the MQTT stream's (ingest).

Each service reads its own prefix (``INGEST_``, ``PROC_``); what the services must agree on
is read from one unprefixed name for all of them:

- ``DATABASE_URL``, ``MQTT_URL``, ``MQTT_PROTOCOL``, ``TOPIC_ROOT`` and
  ``STORAGE_STRATEGY`` are the defaults of every service, which its prefixed variable
  (``INGEST_DATABASE_URL`` …) may override for that service alone;
- the accepted measurement-time window, ``MAX_FUTURE_S`` and ``MAX_AGE_DAYS``, has no
  per-service form: ingest stores what lies within it, and processing decides on exactly
  what ingest stored (the reading feed), so it has no window of its own to disagree with.

Broker credentials are ingest's own (``INGEST_MQTT_PASSWORD_FILE`` …, see
docs/security.md): the user is the instance's client id unless ``…_MQTT_USERNAME`` says
otherwise, and the password file is read again at every connection attempt, so a rotated
password is taken up without a restart.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from contract import DEFAULT_ROOT
from db import StrategyName

__all__ = ["SHARED_VARIABLES", "ServiceSettings", "StreamSettings"]

SHARED_VARIABLES: dict[str, str] = {
    "database_url": "DATABASE_URL",
    "mqtt_url": "MQTT_URL",
    "mqtt_protocol": "MQTT_PROTOCOL",
    "topic_root": "TOPIC_ROOT",
    "storage": "STORAGE_STRATEGY",
}
"""Fields every service takes from one unprefixed variable unless its own prefix overrides."""


class _SharedEnv(PydanticBaseSettingsSource):
    """The unprefixed variables of :data:`SHARED_VARIABLES` (below the prefixed ones)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = SHARED_VARIABLES.get(field_name)
        return (os.environ.get(name) if name else None), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {
            field: os.environ[name]
            for field, name in SHARED_VARIABLES.items()
            if name in os.environ and field in self.settings_cls.model_fields
        }


class ServiceSettings(BaseSettings):
    """Settings every long-running service of ours has (database, instance, upkeep periods).

    Subclasses set ``model_config`` with their ``env_prefix`` and name the service in
    ``service``.
    """

    model_config = SettingsConfigDict(extra="ignore")
    service: ClassVar[str] = "service"

    database_url: str = "postgresql://hanoi@127.0.0.1:55432/hanoi"
    storage: Literal["auto"] | StrategyName = Field(
        "auto", description="auto: the strategy a database was built with, else the probe's"
    )
    instance: str = Field("0", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    write_timeout_s: float = Field(30.0, gt=0, description="a commit not done by then is retried")
    shutdown_grace_s: float = Field(
        30.0, ge=0, description="a failing commit is retried this long after a stop"
    )
    heartbeat_interval_s: float = Field(5.0, gt=0)
    registry_refresh_s: float = Field(30.0, gt=0)
    pool_timeout_s: float = Field(
        5.0, gt=0, description="a write waits this long for a database connection, then retries"
    )
    reconnect_timeout_s: float = Field(
        3.0, gt=0,
        description=(
            "the pool's own reconnection gives up after this; every retried write asks again, "
            "so a database that comes back is used within seconds"
        ),
    )  # fmt: skip
    retry_max_s: float = Field(
        3.0, gt=0, description="longest wait between two attempts of a failed write"
    )

    @property
    def forced_storage(self) -> StrategyName | None:
        """The storage strategy asked for, or None to let the database decide."""
        return None if self.storage == "auto" else self.storage

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the service's prefixed variables, then the shared ones."""
        return (
            init_settings,
            env_settings,
            _SharedEnv(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )


class StreamSettings(ServiceSettings):
    """Settings of one instance of an at-least-once MQTT service (ingest).

    Its MQTT client id is ``hanoi-<service>-<instance>``.
    """

    service: ClassVar[str] = "stream"

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    topic_root: str = DEFAULT_ROOT
    share_group: str = Field(
        "",
        description=(
            "MQTT shared-subscription group; empty = a plain persistent subscription. "
            "Mosquitto 2.0 does not restore $share subscriptions of persistent sessions after "
            "a broker restart (messages published before the service resubscribes are "
            "dropped), so set it only for several instances, and prefer EMQX there."
        ),
    )
    session_expiry_s: int = Field(7 * 86400, ge=60)
    receive_maximum: int = Field(20000, ge=10, le=65535)
    buffer_max_mb: float = Field(64.0, gt=0)
    batch_max_readings: int = Field(50000, ge=1)
    batch_max_age_s: float = Field(0.1, gt=0)
    max_future_s: float = Field(
        300.0, ge=0, validation_alias=AliasChoices("MAX_FUTURE_S", "max_future_s"),
        description="measurement times further ahead of arrival are refused (future_time)",
    )  # fmt: skip
    max_age_days: float = Field(
        400.0, gt=0, validation_alias=AliasChoices("MAX_AGE_DAYS", "max_age_days"),
        description="older measurement times are refused (stale_time); the backfill window",
    )  # fmt: skip
    mqtt_username: str | None = Field(
        None, description="broker user; default: the client id (hanoi-<service>-<instance>)"
    )
    mqtt_password: SecretStr | None = Field(None, description="prefer mqtt_password_file")
    mqtt_password_file: Path | None = Field(
        None, description="file holding the broker password (read at every connection)"
    )
    mqtt_ca_file: Path | None = Field(
        None, description="CA bundle the broker's TLS certificate must chain to (mqtts://)"
    )
    quarantine_payload_prefix_bytes: int = Field(
        8192, ge=0, le=1024 * 1024, description="payload bytes kept in a quarantine row"
    )
    quarantine_topic_prefix_chars: int = Field(
        256, ge=16, le=4096, description="topic characters kept in a quarantine row"
    )
    quarantine_rate_per_min: float = Field(
        60.0, ge=0, description="quarantine rows a minute per publisher; beyond: counted only"
    )
    quarantine_burst: int = Field(
        120, ge=1, description="quarantine rows a publisher may use at once"
    )

    @property
    def client_id(self) -> str:
        """Stable MQTT client id: the broker keeps this instance's session under it."""
        return f"hanoi-{self.service}-{self.instance}"

    @property
    def broker_username(self) -> str:
        """The broker user this instance authenticates as."""
        return self.mqtt_username or self.client_id

    def broker_password(self) -> str | None:
        """The broker password now (the file is read on every call: rotation).

        Raises:
            OSError: when the password file cannot be read.
        """
        if self.mqtt_password_file is not None:
            return self.mqtt_password_file.read_text(encoding="utf-8").strip()
        return self.mqtt_password.get_secret_value() if self.mqtt_password else None
