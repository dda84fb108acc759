"""Processing configuration, read once from the environment (prefix ``PROC_``)."""

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract import DEFAULT_ROOT

__all__ = ["ProcessingSettings"]


class ProcessingSettings(BaseSettings):
    """Settings of one processing instance.

    Alert thresholds are data, not code: see :mod:`processing.rules` for the defaults and
    the sources (QCVN, VN_AQI, and the project's [U] flood-depth proposals).
    """

    model_config = SettingsConfigDict(env_prefix="PROC_", extra="ignore")

    database_url: str = Field(
        "postgresql://hanoi@127.0.0.1:55432/hanoi",
        validation_alias=AliasChoices("PROC_DATABASE_URL", "DATABASE_URL"),
    )
    mqtt_url: str = Field(
        "mqtt://127.0.0.1:1883", validation_alias=AliasChoices("PROC_MQTT_URL", "MQTT_URL")
    )
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        "5", validation_alias=AliasChoices("PROC_MQTT_PROTOCOL", "MQTT_PROTOCOL")
    )
    topic_root: str = Field(
        DEFAULT_ROOT, validation_alias=AliasChoices("PROC_TOPIC_ROOT", "TOPIC_ROOT")
    )
    instance: str = Field("0", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    share_group: str = ""  # empty: plain persistent subscription (see IngestSettings)
    receive_maximum: int = Field(2000, ge=10, le=65535)
    batch_max_age_s: float = Field(0.5, gt=0)
    batch_max_readings: int = Field(20000, ge=1)
    clear_after_samples: int = Field(3, ge=1)
    cooldown_s: float = Field(600.0, ge=0)
    escalation_after_s: float = Field(900.0, gt=0)
    escalation_check_s: float = Field(30.0, gt=0)
    forecast_lead_time_s: float = Field(1800.0, gt=0)
    slice_s: float = Field(60.0, gt=0)  # event time decided in one step (see engine.py)
    min_silence_s: float = Field(300.0, ge=0)  # shortest gap called a silent sensor
    # Measurement times accepted, as ingest accepts them: how far ahead of arrival, and how
    # far behind (a backfill of an older period needs a larger max_age_days).
    max_future_s: float = Field(300.0, ge=0)
    max_age_days: float = Field(400.0, gt=0)
    snapshot_interval_s: float = Field(60.0, gt=0)
    heartbeat_interval_s: float = Field(5.0, gt=0)
    registry_refresh_s: float = Field(30.0, gt=0)
    write_timeout_s: float = Field(30.0, gt=0)  # a commit not done by then is retried
    shutdown_grace_s: float = Field(30.0, ge=0)  # a failing batch retried this long after stop

    @property
    def client_id(self) -> str:
        """Stable MQTT client id of this instance."""
        return f"hanoi-processing-{self.instance}"
