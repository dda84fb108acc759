"""What every alert rule says, and the one interface every rule family speaks (pure).

A *condition* is a rule's verdict on a *subject* at an *event time*: how bad the situation
is right now (a severity, or ``None`` when it is normal), with the value it judged. Whether
it becomes a new alert, an update or a clear is the lifecycle's decision
(:mod:`processing.alerts.lifecycle`). A subject is a station, or one sensor of it: a flood
depth or a PM2.5 reading speaks for a sensor; a silent station, a device clock or an
hourly VN_AQI speaks for the station and names no quantity.

Every rule family is a :class:`ConditionSource`: it declares the rules it can raise
(:class:`RuleSpec`, collected in :data:`processing.conditions.RULES`, which the engine, the
evaluator and the public feeds read) and turns each step of the engine into conditions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from contract import Quantity, Reading, Registry, Station
from processing.alerts.model import Category, Severity
from processing.alerts.wording import Figure
from processing.bank import BankResult, Silence
from processing.columns import Columns
from processing.derived import IndexRow

__all__ = [
    "NO_TEXTS",
    "Condition",
    "ConditionSource",
    "Level",
    "Phase",
    "RuleSpec",
    "Step",
    "Subject",
    "Texts",
]

Texts = tuple[str, str, str, str]
"""An alert's title_vi, title_en, message_vi, message_en."""
NO_TEXTS: Texts = ("", "", "", "")
"""A condition that is not abnormal says nothing."""

Phase = Literal["slice", "watermark", "batch"]
"""When a source speaks: on each slice of measurement time, after the event-time watermark
has moved (silence), or once per batch (device clocks, judged on arrivals)."""


@dataclass(frozen=True, slots=True)
class Subject:
    """What a condition is about: a station, one of its sensors, or the system itself.

    Args:
        station_id: the station; None for the operations centre's own systems (a storage
            job, processing's lag), which name no station.
        quantity: the sensor's quantity; None for the station as a whole.
    """

    station_id: str | None
    quantity: Quantity | None = None


@dataclass(frozen=True, slots=True)
class Level:
    """One step of a rule: at or beyond ``threshold`` the situation is ``severity``."""

    threshold: float
    severity: Severity
    name_vi: str
    name_en: str


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One alert rule, as the rest of the system knows it.

    Args:
        name: rule id (first part of the dedup key, ``<rule>:<subject>``).
        category: ``event`` (something in the city) or ``sensor_health``.
        title_vi: Vietnamese name of the rule.
        title_en: English name.
        public: a hazard the public is warned of (it may leave the operations centre:
            CAP feeds, webhooks to other departments); sensor-health and data-quality
            rules never are.
        forecast: it warns of what is expected, not of what is observed.
        instruction_vi: what the public should do, in Vietnamese (every public rule has
            one; a condition may give a level's own in its details, ``instruction_vi``).
        instruction_en: the same in English.
    """

    name: str
    category: Category
    title_vi: str
    title_en: str
    public: bool = False
    forecast: bool = False
    instruction_vi: str = ""
    instruction_en: str = ""

    def instructions(self) -> dict[str, str | float | int | bool | None]:
        """The instruction as alert details (empty for an internal rule)."""
        if not self.public:
            return {}
        return {"instruction_vi": self.instruction_vi, "instruction_en": self.instruction_en}


@dataclass(frozen=True, slots=True)
class Condition:
    """What a rule says about one subject at one event time.

    Args:
        dedup_key: the situation (``<rule>:<station>`` or ``<lane>:<sensor>``).
        rule: the rule's name (a :class:`RuleSpec` of :data:`processing.conditions.RULES`).
        category: event or sensor_health.
        subject: the station, or its sensor, judged.
        at: the event time (tz-aware UTC measurement time).
        value: the value judged (in the quantity's unit; for a station-level rule, the
            rule's own figure: minutes of silence, the VN_AQI, seconds of clock offset).
        severity: how bad it is now; None when it is not abnormal.
        normal: True when it is back to normal (past any hysteresis): counts towards a clear.
        threshold: the threshold crossed, in the value's unit (None for a detector's verdict:
            its score and score threshold are in the details, never with a unit).
        texts: title_vi, title_en, message_vi, message_en (empty when not abnormal).
        group: incident grouping key (e.g. ``flood_depth:Đống Đa``).
        details: extra facts stored with the alert.
        hold: an abnormal verdict on a reading that may be a glitch (an isolated spike):
            the lifecycle acts only if the key's next condition is abnormal too.
        confirm: consecutive abnormal conditions of the key a new alert needs (1: the
            first raises); an open alert follows each one at once.
        clear_after: consecutive normal conditions that clear the alert (None: the
            lifecycle's default).
        figure: what the value is, when the open alert's updates should follow it (the
            current value and trend beside the peak); None: updates only when it worsens.
    """

    dedup_key: str
    rule: str
    category: Category
    subject: Subject
    at: datetime
    value: float
    severity: Severity | None
    normal: bool
    threshold: float | None = None
    texts: Texts = NO_TEXTS
    group: str = ""
    details: dict[str, str | float | int | bool | None] = field(default_factory=dict)
    hold: bool = False
    clear_after: int | None = None
    confirm: int = 1
    figure: Figure | None = None

    @property
    def station_id(self) -> str | None:
        """The subject's station (None: the system itself)."""
        return self.subject.station_id

    @property
    def measured(self) -> bool:
        """True when it judges a sensor's measurement (False: the station as a whole)."""
        return self.subject.quantity is not None

    @staticmethod
    def subject_of(reading: Reading) -> Subject:
        """The subject of a condition that judges ``reading``: its sensor."""
        return Subject(reading.station_id, reading.quantity)


@dataclass(frozen=True, slots=True)
class Step:
    """What the engine knows at one step, for the sources to read.

    Args:
        readings: the step's readings (one slice of measurement time, or the whole batch
            for the ``batch`` phase), in measurement-time order.
        registry: the registry in force.
        watched: dedup keys whose *normal* conditions matter (open or held alerts).
        open_keys: dedup keys with an open alert.
        scored: the detector bank's verdicts on the slice (None outside the slice phase).
        spikes: positions in ``scored`` of readings the spike lane flagged.
        index_rows: index rows of the hours that closed in the slice.
        hourly: the bank's verdicts on the hourly means that closed (None: none closed).
        watermark_s: the event-time watermark (epoch s), for the watermark phase.
        reported: stations with a reading in the slice.
        silences: what the bank's dropout lanes say at the watermark (watermark phase).
        columns: ``readings`` as columns (the engine's; None: a caller without them).
    """

    readings: Sequence[Reading]
    registry: Registry
    watched: Collection[str]
    open_keys: Collection[str]
    scored: BankResult | None = None
    spikes: Collection[int] = ()
    index_rows: Sequence[IndexRow] = ()
    hourly: BankResult | None = None
    watermark_s: float = float("-inf")
    reported: Collection[str] = ()
    silences: Sequence[Silence] = ()
    columns: Columns | None = None

    @property
    def stations(self) -> Mapping[str, Station]:
        """The registry's stations."""
        return self.registry.stations


class ConditionSource(Protocol):
    """A rule family: the rules it raises and what it says at each step."""

    @property
    def rules(self) -> Sequence[RuleSpec]:
        """The rules this source can raise."""
        ...

    @property
    def phase(self) -> Phase:
        """When the engine asks it."""
        ...

    def conditions(self, step: Step) -> list[Condition]:
        """Conditions for one step, in any order (the engine sorts them by event time)."""
        ...
