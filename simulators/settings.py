"""SimulatorSettings: one typed settings object for the simulators (env prefix ``SIM_``)."""

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract import DEFAULT_ROOT, BrokerAddress, parse_mqtt_url, truth_topic

__all__ = ["Login", "SimulatorSettings"]


@dataclass(frozen=True, slots=True)
class Login:
    """A broker user and the file its password is in."""

    user: str
    password_file: Path

    def password(self) -> str:
        """The password now.

        Raises:
            OSError: when the file cannot be read.
        """
        return self.password_file.read_text(encoding="utf-8").strip()


class SimulatorSettings(BaseSettings):
    """Everything a simulator run needs, from ``SIM_*`` variables, then the CLI.

    ``speed`` is simulated seconds per real second; ``"max"`` (stored as infinity) backfills
    as fast as the broker acknowledges. Fault rates left unset come from the scenario file.
    """

    model_config = SettingsConfigDict(env_prefix="SIM_", extra="ignore", populate_by_name=True)

    mqtt_url: str = Field(
        default="mqtt://127.0.0.1:1883",
        validation_alias=AliasChoices("SIM_MQTT_URL", "MQTT_URL"),
    )
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        default="5", validation_alias=AliasChoices("SIM_MQTT_PROTOCOL", "MQTT_PROTOCOL")
    )
    topic_root: str = Field(
        default=DEFAULT_ROOT, validation_alias=AliasChoices("SIM_TOPIC_ROOT", "TOPIC_ROOT")
    )
    client_id_prefix: str = "sim"
    scenario: str = "demo"
    speed: float = 1.0
    seed: int = 0
    start: datetime | None = None
    end: datetime | None = None
    duration_s: float | None = Field(default=None, gt=0)
    truth_file: Path | None = None
    resume_file: Path | None = Field(
        default=None,
        description=(
            "a state file: a run of the same scenario, seed, root and stations goes on where "
            "the last one stopped, on the same anchor (simulators/resume.py)"
        ),
    )
    stations: tuple[str, ...] = ()
    faults_enabled: bool = True
    fault_stuck_per_day: float | None = Field(default=None, ge=0)
    fault_drift_per_day: float | None = Field(default=None, ge=0)
    fault_spike_rate: float | None = Field(default=None, ge=0, le=1)
    fault_dropout_rate: float | None = Field(default=None, ge=0, lt=1)
    fault_offline_per_day: float | None = Field(default=None, ge=0)
    fault_duplicate_rate: float | None = Field(default=None, ge=0, le=1)
    fault_out_of_order_rate: float | None = Field(default=None, ge=0, le=1)
    fault_clock_skew_per_day: float | None = Field(default=None, ge=0)
    fault_malformed_rate: float | None = Field(default=None, ge=0, le=1)
    credentials_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("SIM_CREDENTIALS_DIR", "credentials_dir"),
        description=(
            "a directory of broker passwords, <user>/password for each (a credential store's "
            "secrets/): each device logs in as its station id, the truth channel as truth_user"
        ),
    )
    truth_user: str = "hanoi-simulator"
    mqtt_ca_file: Path | None = Field(
        default=None, description="CA bundle the broker's TLS certificate must chain to"
    )
    outbox_size: int = Field(default=1000, ge=1)
    ack_timeout_s: float = Field(default=10.0, gt=0)
    reconnect_initial_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    reconnect_give_up_s: float | None = Field(default=None, gt=0)
    progress_interval_s: float = Field(default=5.0, gt=0)

    @field_validator("speed", mode="before")
    @classmethod
    def _parse_speed(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == "max":
            return math.inf
        return value

    @field_validator("speed")
    @classmethod
    def _positive_speed(cls, value: float) -> float:
        if not value > 0:
            msg = "speed must be positive (or 'max')"
            raise ValueError(msg)
        return value

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            msg = "times must carry a UTC offset (e.g. 2025-09-30T07:00:00+07:00)"
            raise ValueError(msg)
        return value

    @field_validator("topic_root")
    @classmethod
    def _root(cls, value: str) -> str:
        truth_topic(value)
        if not value or value.startswith("/") or value.endswith("/") or "+" in value:
            msg = f"topic root {value!r} is not a plain topic path"
            raise ValueError(msg)
        return value

    @property
    def is_backfill(self) -> bool:
        """True when publishing as fast as the broker takes it (``--speed max``)."""
        return math.isinf(self.speed)

    @property
    def broker(self) -> BrokerAddress:
        """The parsed :attr:`mqtt_url`."""
        return parse_mqtt_url(self.mqtt_url)

    def login(self, user: str) -> Login | None:
        """How ``user`` logs in (None: with the URL's credentials, if any).

        Its password is ``<user>/password`` in :attr:`credentials_dir`, read at every
        connection, so a rotated password is used at the next one.
        """
        if self.credentials_dir is None:
            return None
        return Login(user, self.credentials_dir / user / "password")
