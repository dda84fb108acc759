"""Processing configuration, read once from the environment (prefix ``PROC_``).

What every service shares (``DATABASE_URL``, ``STORAGE_STRATEGY`` …) is described in
:mod:`stream.settings`. Alert thresholds are data, not code: see
:mod:`processing.conditions.thresholds` for the defaults and their sources (QCVN, VN_AQI,
and the project's [U] flood-depth proposals).
"""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from stream.settings import ServiceSettings

__all__ = ["ProcessingSettings"]


class ProcessingSettings(ServiceSettings):
    """Settings of one processing instance."""

    model_config = SettingsConfigDict(env_prefix="PROC_", extra="ignore")
    service: ClassVar[str] = "processing"

    batch_max_readings: int = Field(
        20000, ge=1, description="readings of the feed decided in one engine step at most"
    )
    feed_poll_s: float = Field(
        1.0, gt=0, description="longest wait for the feed between notifications"
    )
    lag_alert_s: float = Field(
        120.0, gt=0, description="an operations alert when decisions run this far behind"
    )
    clear_after_samples: int = Field(3, ge=1)
    cooldown_s: float = Field(600.0, ge=0)
    escalation_after_s: float = Field(900.0, gt=0)
    escalation_check_s: float = Field(30.0, gt=0)
    forecast_lead_time_s: float = Field(1800.0, gt=0)
    slice_s: float = Field(60.0, gt=0, description="event time decided in one step")
    min_silence_s: float = Field(300.0, ge=0, description="shortest gap called a silent sensor")
    snapshot_interval_s: float = Field(60.0, gt=0)
    operations_check_s: float = Field(
        15.0, gt=0, description="how often the system's own health is judged (jobs, lag)"
    )
