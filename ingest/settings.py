"""Ingest configuration, read once from the environment (prefix ``INGEST_``)."""

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract import DEFAULT_ROOT

__all__ = ["IngestSettings"]


class IngestSettings(BaseSettings):
    """Settings of one ingestor instance.

    ``DATABASE_URL``, ``MQTT_URL`` and ``TOPIC_ROOT`` are shared by every service; the
    ``INGEST_``-prefixed form overrides them for the ingestor alone.
    """

    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    database_url: str = Field(
        "postgresql://hanoi@127.0.0.1:55432/hanoi",
        validation_alias=AliasChoices("INGEST_DATABASE_URL", "DATABASE_URL"),
    )
    mqtt_url: str = Field(
        "mqtt://127.0.0.1:1883", validation_alias=AliasChoices("INGEST_MQTT_URL", "MQTT_URL")
    )
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        "5", validation_alias=AliasChoices("INGEST_MQTT_PROTOCOL", "MQTT_PROTOCOL")
    )
    topic_root: str = Field(
        DEFAULT_ROOT, validation_alias=AliasChoices("INGEST_TOPIC_ROOT", "TOPIC_ROOT")
    )
    instance: str = Field("0", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    share_group: str = Field(
        "",
        description=(
            "MQTT shared-subscription group; empty = a plain persistent subscription. "
            "Mosquitto 2.0 does not restore $share subscriptions of persistent sessions after "
            "a broker restart (messages published before the ingestor resubscribes are "
            "dropped), so set it only for several ingestors, and prefer EMQX there."
        ),
    )
    write_timeout_s: float = Field(30.0, gt=0)
    shutdown_grace_s: float = Field(30.0, ge=0)
    session_expiry_s: int = Field(7 * 86400, ge=60)
    receive_maximum: int = Field(20000, ge=10, le=65535)
    buffer_max_mb: float = Field(64.0, gt=0)
    batch_max_readings: int = Field(50000, ge=1)
    batch_max_age_s: float = Field(0.2, gt=0)
    write_queue_batches: int = Field(2, ge=1)
    write_concurrency: int = Field(2, ge=1, le=8)
    max_future_s: float = Field(300.0, ge=0)
    max_age_days: float = Field(400.0, gt=0)
    stale_factor: float = Field(3.0, gt=1)
    retention_days: int = Field(400, ge=1)
    maintenance_interval_s: float = Field(30.0, gt=0)
    heartbeat_interval_s: float = Field(5.0, gt=0)
    registry_refresh_s: float = Field(30.0, gt=0)
    storage: Literal["auto", "timescale", "plain"] = Field(
        "auto", validation_alias=AliasChoices("INGEST_STORAGE", "STORAGE_STRATEGY")
    )

    @property
    def client_id(self) -> str:
        """Stable MQTT client id: the broker keeps this instance's session under it."""
        return f"hanoi-ingest-{self.instance}"
