"""Request and response models of the admin routes: tokens, subscribers, stations, audit.

Station bodies are the registry file's format (:func:`contract.decode_registry`) with the
station id in the path; they are checked by the same decoder as the file, and their schema
says everything that decoder and the database will check (one model per domain, so a sensor
of another domain's quantity is refused by the schema itself).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    JsonValue,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
)

from contract import QUANTITIES, Domain, Quantity
from db.webhooks import DeliveryRecord
from ops_api.audit import AuditRow
from ops_api.auth import Role
from ops_api.params import ApiDatetime, Label
from ops_api.subscribers import SubscriberRecord
from ops_api.timefmt import UtcDatetime
from ops_api.tokens import TokenRecord
from processing.alerts import Severity

__all__ = [
    "AuditListOut",
    "AuditOut",
    "DeliveryOut",
    "RedeliverIn",
    "RedeliveredOut",
    "StationDocOut",
    "StationIn",
    "SubscriberCreatedOut",
    "SubscriberIn",
    "SubscriberOut",
    "TokenCreatedOut",
    "TokenIn",
    "TokenOut",
    "TokenRotateIn",
]

_MAX_GRACE_S = 7 * 86400.0
_MAX_SENSORS = 64
_MAX_ATTRIBUTES = 50
_SAFE_INT = 2**53


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


Name = Annotated[Label, Field(min_length=1, max_length=64)]
DomainList = Annotated[list[Domain], Field(max_length=4)]


# --- tokens ----------------------------------------------------------------------------------


class TokenIn(_In):
    """A new token's grant."""

    name: Name = Field(description="who holds it; the actor in audit trails")
    role: Role = Role.VIEWER
    scope_domains: DomainList | None = Field(
        default=None, description="only these domains (null: every domain)"
    )
    expires_at: ApiDatetime | None = Field(default=None, description="null: never expires")


class TokenRotateIn(_In):
    """How long the old token keeps working after a rotation."""

    grace_s: StrictFloat = Field(default=0.0, ge=0.0, le=_MAX_GRACE_S, allow_inf_nan=False)


class TokenOut(_Out):
    """A stored token (never the token itself)."""

    token_id: int
    name: str
    role: Role
    scope_domains: list[Domain] | None
    prefix: str = Field(description="the token's first characters, to recognise it")
    created_at: UtcDatetime
    created_by: str
    expires_at: UtcDatetime | None
    revoked_at: UtcDatetime | None
    revoked_by: str | None
    replaced_by: int | None
    last_used_at: UtcDatetime | None

    @classmethod
    def from_record(cls, record: TokenRecord) -> Self:
        """Build from a stored token."""
        scope = record.scope
        return cls(
            token_id=record.token_id,
            name=record.name,
            role=Role(record.role),
            scope_domains=None if scope is None else sorted(scope),
            prefix=record.prefix,
            created_at=record.created_at,
            created_by=record.created_by,
            expires_at=record.expires_at,
            revoked_at=record.revoked_at,
            revoked_by=record.revoked_by,
            replaced_by=record.replaced_by,
            last_used_at=record.last_used_at,
        )


class TokenCreatedOut(_Out):
    """A new token: shown here once, stored only as a hash."""

    token: str = Field(description="the bearer token; it cannot be shown again")
    record: TokenOut


# --- subscribers -----------------------------------------------------------------------------


class SubscriberIn(_In):
    """An alert subscriber (a webhook receiver) and what it wants."""

    name: Name
    url: HttpUrl = Field(description="where alerts are POSTed (http or https)")
    domains: DomainList | None = Field(default=None, description="null: every domain")
    min_severity: Severity = Severity.INFO
    districts: (
        Annotated[list[Annotated[Label, Field(max_length=100)]], Field(max_length=50)] | None
    ) = Field(default=None, description="null: every district")
    enabled: StrictBool = True


class SubscriberOut(_Out):
    """A stored subscriber (never its secret)."""

    subscriber_id: int
    name: str
    url: str
    domains: list[Domain] | None
    min_severity: Severity
    districts: list[str] | None
    enabled: bool
    secret_version: int
    created_at: UtcDatetime
    created_by: str
    updated_at: UtcDatetime
    updated_by: str

    @classmethod
    def from_record(cls, record: SubscriberRecord) -> Self:
        """Build from a stored subscriber."""
        return cls(
            subscriber_id=record.subscriber_id,
            name=record.name,
            url=record.url,
            domains=None if record.domains is None else [Domain(d) for d in record.domains],
            min_severity=Severity(record.min_severity),
            districts=record.districts,
            enabled=record.enabled,
            secret_version=record.secret_version,
            created_at=record.created_at,
            created_by=record.created_by,
            updated_at=record.updated_at,
            updated_by=record.updated_by,
        )


class SubscriberCreatedOut(_Out):
    """A subscriber with its signing secret: shown here once."""

    secret: str = Field(description="the webhook signing secret; it cannot be shown again")
    record: SubscriberOut


# --- webhook deliveries ---------------------------------------------------------------------


class DeliveryState(StrEnum):
    """Where a delivery is."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    WITHHELD = "withheld"


class DeliveryOut(_Out):
    """One webhook delivery: an alert event for one subscriber (never the body's secret)."""

    delivery_id: str = Field(description="the id receivers deduplicate on (X-Hanoi-Delivery)")
    subscriber_id: int
    event_id: int
    alert_id: int
    rule: str
    action: str
    status: DeliveryState
    attempts: int = Field(description="attempts in the current series (0 after a redelivery)")
    created_at: UtcDatetime
    queued_at: UtcDatetime
    next_attempt_at: UtcDatetime
    last_attempt_at: UtcDatetime | None
    last_status: int | None = Field(description="the receiver's last HTTP status")
    last_error: str | None
    finished_at: UtcDatetime | None

    @classmethod
    def from_record(cls, r: DeliveryRecord) -> Self:
        """Build from a stored delivery."""
        return cls(
            delivery_id=str(r.delivery_id), subscriber_id=r.subscriber_id, event_id=r.event_id,
            alert_id=r.alert_id, rule=r.rule, action=r.action, status=DeliveryState(r.status),
            attempts=r.attempts, created_at=r.created_at, queued_at=r.queued_at,
            next_attempt_at=r.next_attempt_at, last_attempt_at=r.last_attempt_at,
            last_status=r.last_status, last_error=r.last_error, finished_at=r.finished_at,
        )  # fmt: skip


class RedeliverIn(_In):
    """Which deliveries to queue again (by default every dead letter)."""

    status: Literal["dead", "delivered", "pending"] = "dead"
    subscriber_id: int | None = Field(default=None, ge=1, le=_SAFE_INT)


class RedeliveredOut(_Out):
    """What was queued again."""

    count: int
    delivery_ids: list[str]


# --- stations --------------------------------------------------------------------------------


def _quantities(domain: Domain) -> dict[str, str]:
    return {q.name: q.value for q, spec in QUANTITIES.items() if spec.domain is domain}


AirQuantity = StrEnum("AirQuantity", _quantities(Domain.AIR))  # type: ignore[misc]
WaterQuantity = StrEnum("WaterQuantity", _quantities(Domain.WATER))  # type: ignore[misc]
FloodQuantity = StrEnum("FloodQuantity", _quantities(Domain.FLOOD))  # type: ignore[misc]
TrafficQuantity = StrEnum("TrafficQuantity", _quantities(Domain.TRAFFIC))  # type: ignore[misc]

Finite = Annotated[StrictFloat, Field(allow_inf_nan=False, ge=-1e15, le=1e15)]
AttributeKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
AttributeValue = (
    Annotated[Label, Field(max_length=500)]
    | Annotated[StrictInt, Field(ge=-_SAFE_INT, le=_SAFE_INT)]
    | Finite
    | StrictBool
)


class _SensorIn(_In):
    interval_s: StrictFloat = Field(gt=0, le=7 * 86400.0, allow_inf_nan=False)
    valid_min: Finite | None = None
    valid_max: Finite | None = None


class AirSensorIn(_SensorIn):
    """A sensor of an air station."""

    quantity: AirQuantity


class WaterSensorIn(_SensorIn):
    """A sensor of a water station."""

    quantity: WaterQuantity


class FloodSensorIn(_SensorIn):
    """A sensor of a flood station."""

    quantity: FloodQuantity


class TrafficSensorIn(_SensorIn):
    """A sensor of a traffic station."""

    quantity: TrafficQuantity


class _StationIn(_In):
    name: Annotated[Label, Field(min_length=1, max_length=200)]
    district: Annotated[Label, Field(min_length=1, max_length=100)]
    lat: StrictFloat = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: StrictFloat = Field(ge=-180, le=180, allow_inf_nan=False)
    kind: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]
    attributes: dict[AttributeKey, AttributeValue] = Field(
        default_factory=dict,
        max_length=_MAX_ATTRIBUTES,
        # keys must match the pattern: say so (pydantic only writes patternProperties)
        json_schema_extra={"additionalProperties": False},
    )


class AirStationIn(_StationIn):
    """An air-quality station."""

    domain: Literal["air"]
    sensors: list[AirSensorIn] = Field(default_factory=list, max_length=_MAX_SENSORS)


class WaterStationIn(_StationIn):
    """A water-quality station (e.g. a West Lake buoy)."""

    domain: Literal["water"]
    sensors: list[WaterSensorIn] = Field(default_factory=list, max_length=_MAX_SENSORS)


class FloodStationIn(_StationIn):
    """A rain gauge or a street flood-depth sensor."""

    domain: Literal["flood"]
    sensors: list[FloodSensorIn] = Field(default_factory=list, max_length=_MAX_SENSORS)


class TrafficStationIn(_StationIn):
    """A traffic detector."""

    domain: Literal["traffic"]
    sensors: list[TrafficSensorIn] = Field(default_factory=list, max_length=_MAX_SENSORS)


StationIn = Annotated[
    AirStationIn | WaterStationIn | FloodStationIn | TrafficStationIn,
    Field(discriminator="domain"),
]
"""A station as in the registry file, without its id (which is in the path)."""


class SensorDocOut(_Out):
    """A registered sensor as in the registry file."""

    quantity: Quantity
    interval_s: float
    valid_min: float | None
    valid_max: float | None


class StationDocOut(_Out):
    """A registered station as in the registry file, with its retirement time."""

    station_id: str
    domain: Domain
    name: str
    district: str
    lat: float
    lon: float
    kind: str
    sensors: list[SensorDocOut]
    attributes: dict[str, JsonValue]
    retired_at: UtcDatetime | None
    retired_sensors: list[str] = Field(description="quantities retired by this change")


# --- audit -----------------------------------------------------------------------------------


class AuditOut(_Out):
    """One administrative change."""

    audit_id: int
    at: UtcDatetime
    actor: str
    action: str
    target_kind: Literal["token", "subscriber", "station", "delivery"]
    target_id: str
    details: dict[str, JsonValue]

    @classmethod
    def from_row(cls, row: AuditRow) -> Self:
        """Build from an audit row."""
        kind: Literal["token", "subscriber", "station", "delivery"]
        kind = row.target_kind  # type: ignore[assignment]
        return cls(
            audit_id=row.audit_id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            target_kind=kind,
            target_id=row.target_id,
            details=row.details,
        )


class AuditListOut(_Out):
    """Audit rows, newest first; page with ``before=<last audit_id>``."""

    items: list[AuditOut]
