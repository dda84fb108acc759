"""Ingest configuration, read once from the environment (prefix ``INGEST_``).

What every service shares (``DATABASE_URL``, ``MQTT_URL``, the accepted time window …) is
described in :mod:`stream.settings`.
"""

from typing import ClassVar

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from contract import DEFAULT_STALE_FACTOR, DEFAULT_STALE_MIN_S, StaleRule
from stream.settings import StreamSettings

__all__ = ["IngestSettings"]


class IngestSettings(StreamSettings):
    """Settings of one ingestor instance."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")
    service: ClassVar[str] = "ingest"

    write_queue_batches: int = Field(2, ge=1)
    write_concurrency: int = Field(2, ge=1, le=8)
    retention_days: int = Field(400, ge=1)
    maintenance_interval_s: float = Field(30.0, gt=0)
    feed_retention_h: float = Field(
        24.0, gt=0,
        description=(
            "how long stored readings wait in the reading feed for a consumer that is away "
            "(processing down); older batches are pruned and counted as missed by it"
        ),
    )  # fmt: skip
    quarantine_retention_days: float = Field(
        30.0, gt=0, description="quarantine rows and counts older than this are dropped"
    )
    stale_factor: float = Field(
        DEFAULT_STALE_FACTOR, gt=1, validation_alias=AliasChoices("STALE_FACTOR", "stale_factor")
    )
    stale_min_s: float = Field(
        DEFAULT_STALE_MIN_S, ge=0, validation_alias=AliasChoices("STALE_MIN_S", "stale_min_s")
    )

    @property
    def stale_rule(self) -> StaleRule:
        """When a station counts as stale (the one rule the ops API shows too)."""
        return StaleRule(self.stale_factor, self.stale_min_s)
