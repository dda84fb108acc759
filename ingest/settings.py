"""Ingest configuration, read once from the environment (prefix ``INGEST_``).

What every service shares (``DATABASE_URL``, ``MQTT_URL``, the accepted time window …) is
described in :mod:`stream.settings`.
"""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from contract import DEFAULT_STALE_FACTOR, DEFAULT_STALE_MIN_S, StaleRule
from stream.settings import StreamSettings

__all__ = ["IngestSettings"]


class IngestSettings(StreamSettings):
    """Settings of one ingestor instance."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", populate_by_name=True)
    service: ClassVar[str] = "ingest"

    write_queue_batches: int = Field(2, ge=1)
    write_concurrency: int = Field(2, ge=1, le=8)
    retention_days: int = Field(400, ge=1)
    maintenance_interval_s: float = Field(30.0, gt=0)
    quarantine_retention_days: float = Field(
        30.0, gt=0, description="quarantine rows and counts older than this are dropped"
    )
    stale_factor: float = Field(DEFAULT_STALE_FACTOR, gt=1, validation_alias="STALE_FACTOR")
    stale_min_s: float = Field(DEFAULT_STALE_MIN_S, ge=0, validation_alias="STALE_MIN_S")

    @property
    def stale_rule(self) -> StaleRule:
        """When a station counts as stale (the one rule the ops API shows too)."""
        return StaleRule(self.stale_factor, self.stale_min_s)
