"""Per-sensor detector state for the whole city: lanes of detectors keyed by sensor id.

A :class:`DetectorBank` holds one *lane* per configured detector (:class:`LaneSpec`): the
detector's state arrays plus a :class:`SlotMap` from ``SensorId`` (``<station>.<quantity>``)
to slot. Arrays grow as sensors appear, up to ``max_sensors`` per lane; then the overflow
policy applies: ``refuse`` (readings of new sensors are not scored, and counted) or
``evict_lru`` (the sensor seen longest ago loses its slot and its state). ``process`` scores a
batch of readings in every lane with exact stream semantics and returns scores and flags.
Snapshots (:meth:`DetectorBank.to_bytes`, or pickling) restore every lane after a restart.

>>> from datetime import UTC, datetime, timedelta
>>> from contract import Quantity, Reading, StationId
>>> bank = DetectorBank([LaneSpec("spike", "spike", quantities=frozenset({Quantity.PM25}))])
>>> t0 = datetime(2026, 1, 5, tzinfo=UTC)
>>> def pm25(minute: int, value: float) -> Reading:
...     at = t0 + timedelta(minutes=minute)
...     return Reading(StationId("aq-hoan-kiem"), Quantity.PM25, value, at, at)
>>> _ = bank.process([pm25(m, 40.0 + m % 3) for m in range(30)])
>>> [(d.lane, d.reading.value) for d in bank.process([pm25(30, 400.0)]).detections()]
[('spike', 400.0)]
>>> DetectorBank.from_bytes(bank.to_bytes()).stats()["spike.sensors"]
1
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from contract import Quantity, Reading, SensorId, Station, sensor_id
from processing.columns import QUANTITY_CODE, Columns
from processing.detectors import (
    DETECTORS,
    DetectorSnapshot,
    ParamValue,
    SpatialDetector,
    Thresholder,
    VectorDetector,
    create_detector,
    restore,
)
from processing.errors import DetectorConfigError, SnapshotError
from processing.slots import OverflowPolicy, SlotMap

__all__ = [
    "BANK_VERSION",
    "BankResult",
    "Detection",
    "DetectorBank",
    "LaneResult",
    "LaneSpec",
    "OverflowPolicy",
    "Silence",
    "SlotMap",
]

logger = logging.getLogger(__name__)

BANK_VERSION: Final = 3
"""Layout of a bank snapshot. 2: the stuck, neighbours and silence lanes keep calibrations
(issue 14); 3: so do the pollution-shift (CUSUM) and water-rising lanes. An older snapshot
is refused and the service starts cold."""
Cadence = Literal["reading", "hourly"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
_QUANTITY_CODE: Final = QUANTITY_CODE


@dataclass(frozen=True, slots=True)
class LaneSpec:
    """One detector applied to some quantities.

    Args:
        name: lane id (unique in a bank; appears on detections).
        detector: registry name (see :data:`processing.detectors.DETECTORS`).
        params: the detector's parameters.
        quantities: quantities it scores; None = the detector's primary quantity, or all.
        threshold: decision threshold; None = the detector's documented default.
        protect: flagged readings do not train the baseline.
        cadence: ``reading`` (every raw reading) or ``hourly`` (hourly means, for
            phenomena that last hours, such as pollution episodes).
    """

    name: str
    detector: str
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    quantities: frozenset[Quantity] | None = None
    threshold: float | None = None
    protect: bool = True
    cadence: Cadence = "reading"


@dataclass(frozen=True, slots=True)
class Detection:
    """A reading a lane flagged."""

    reading: Reading
    lane: str
    detector: str
    score: float
    threshold: float


@dataclass(frozen=True, slots=True)
class Silence:
    """A sensor that has not reported for longer than its dropout lane accepts.

    Args:
        lane: the dropout lane.
        sensor: the sensor.
        score: the lane's silence score.
        last_seen_s: measurement time of its last reading, epoch seconds.
    """

    lane: str
    sensor: SensorId
    score: float
    last_seen_s: float


@dataclass(frozen=True, slots=True)
class LaneResult:
    """One lane's verdicts on a batch: positions in the batch, scores and flags."""

    lane: str
    detector: str
    threshold: float
    indices: IntArray
    scores: FloatArray
    flags: BoolArray


@dataclass(frozen=True, slots=True)
class BankResult:
    """Every lane's verdicts on one batch of readings."""

    readings: Sequence[Reading]
    lanes: tuple[LaneResult, ...]
    sensor_ids: Sequence[str] = ()
    """The readings' sensor ids, position by position (empty: not computed)."""

    def sensor_at(self, position: int) -> str:
        """The sensor id of the reading at ``position``."""
        return self.sensor_ids[position] if self.sensor_ids else self.readings[position].sensor_id

    def detections(self) -> list[Detection]:
        """Flagged readings, lane by lane in batch order."""
        out: list[Detection] = []
        for lane in self.lanes:
            for i in np.flatnonzero(lane.flags):
                reading = self.readings[int(lane.indices[i])]
                score = float(lane.scores[i])
                out.append(Detection(reading, lane.lane, lane.detector, score, lane.threshold))
        return out

    def max_scores(self) -> FloatArray:
        """Per reading, the highest score any lane gave (0 when no lane scored it)."""
        best = np.zeros(len(self.readings))
        for lane in self.lanes:
            np.maximum.at(best, lane.indices, lane.scores)
        return best


class _Lane:
    def __init__(self, spec: LaneSpec, max_sensors: int, overflow: OverflowPolicy) -> None:
        self.spec = spec
        self.detector: VectorDetector = create_detector(spec.detector, spec.params)
        primary = self.detector.primary_quantity
        default = frozenset({primary}) if primary is not None else frozenset(Quantity)
        self.quantities = spec.quantities if spec.quantities is not None else default
        self.mask = np.array([q in self.quantities for q in Quantity], dtype=bool)
        threshold = self.detector.default_threshold if spec.threshold is None else spec.threshold
        self.thresholder = Thresholder(threshold, spec.protect)
        self.slots = SlotMap(max_sensors, overflow)

    def assign(self, sensors: Sequence[str], times_s: FloatArray) -> IntArray:
        slots, evicted = self.slots.assign(sensors, times_s)
        if evicted.size:
            self.detector.reset(evicted)
        return slots


def _lane_for(spec: LaneSpec, max_sensors: int, overflow: OverflowPolicy) -> _Lane:
    if spec.detector not in DETECTORS:
        msg = f"lane {spec.name!r}: unknown detector {spec.detector!r}"
        raise DetectorConfigError(msg)
    return _Lane(spec, max_sensors, overflow)


class DetectorBank:
    """Detector lanes over every sensor of the city (pure; the service feeds it batches).

    Args:
        specs: the lanes (unique names).
        max_sensors: most sensors per lane.
        overflow: what a full lane does with a new sensor.
    """

    def __init__(
        self,
        specs: Sequence[LaneSpec],
        *,
        max_sensors: int = 200_000,
        overflow: OverflowPolicy = OverflowPolicy.REFUSE,
    ) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            msg = f"lane names must be unique: {names}"
            raise DetectorConfigError(msg)
        self.max_sensors, self.overflow = max_sensors, OverflowPolicy(overflow)
        self._lanes = [_lane_for(spec, max_sensors, self.overflow) for spec in specs]

    @property
    def specs(self) -> tuple[LaneSpec, ...]:
        """The lanes' specifications."""
        return tuple(lane.spec for lane in self._lanes)

    def lane_detector(self, name: str) -> VectorDetector:
        """The detector of one lane (e.g. to call ``score_silence`` on a dropout lane)."""
        for lane in self._lanes:
            if lane.spec.name == name:
                return lane.detector
        msg = f"no lane named {name!r}"
        raise DetectorConfigError(msg)

    def register(self, stations: Iterable[Station]) -> None:
        """Reserve slots for registered sensors and place them in spatial lanes."""
        for station in stations:
            for lane in self._lanes:
                quantities = [s.quantity for s in station.sensors if s.quantity in lane.quantities]
                if not quantities:
                    continue
                ids = [sensor_id(station.station_id, q) for q in quantities]
                slots = lane.assign(ids, np.full(len(ids), -np.inf))
                placed = slots >= 0
                if isinstance(lane.detector, SpatialDetector) and placed.any():
                    codes = np.array([_QUANTITY_CODE[q] for q in quantities])[placed]
                    n = int(placed.sum())
                    lane.detector.set_positions(
                        slots[placed], np.full(n, station.lat), np.full(n, station.lon), codes
                    )

    def process(
        self, readings: Sequence[Reading], cadence: Cadence = "reading",
        columns: Columns | None = None,
    ) -> BankResult:  # fmt: skip
        """Score, decide and learn a batch in every lane of ``cadence`` (stream semantics).

        Args:
            readings: raw readings, or hourly means as readings (measured at the hour's end).
            cadence: which lanes take them.
            columns: the readings' columns, when the caller has them.
        """
        batch = Columns.of(readings) if columns is None else columns
        results = []
        for lane in self._lanes:
            if lane.spec.cadence != cadence:
                continue
            self._apply_context(lane, batch)
            chosen = np.flatnonzero(lane.mask[batch.codes])
            ids = batch.sensor_ids
            everything = chosen.size == len(ids)
            slots = lane.assign(ids if everything else [ids[i] for i in chosen.tolist()],
                                batch.times_s[chosen])  # fmt: skip
            kept = chosen[slots >= 0]
            scores, flags = lane.detector.process_many(
                slots[slots >= 0], batch.values[kept], batch.times_s[kept], lane.thresholder
            )
            spec = lane.spec
            results.append(
                LaneResult(
                    spec.name, spec.detector, lane.thresholder.threshold, kept, scores, flags
                )
            )
        return BankResult(readings, tuple(results), batch.sensor_ids)

    @staticmethod
    def _apply_context(lane: _Lane, batch: Columns) -> None:
        primary = lane.detector.primary_quantity
        if primary is None:
            return
        for quantity in lane.detector.context_quantities:
            chosen = np.flatnonzero(batch.codes == _QUANTITY_CODE[quantity])
            if not chosen.size:
                continue
            targets = [sensor_id(batch.readings[i].station_id, primary) for i in chosen.tolist()]
            slots = lane.assign(targets, np.full(chosen.size, -np.inf))
            ok = slots >= 0
            lane.detector.update_context(
                slots[ok], quantity, batch.values[chosen[ok]], batch.times_s[chosen[ok]]
            )

    def check_silence(self, now_s: float) -> list[tuple[str, SensorId, float]]:
        """(lane, sensor, score) for sensors of dropout lanes silent past the threshold."""
        return [(s.lane, s.sensor, s.score) for s in self.silences(now_s)]

    def silences(self, now_s: float, *, since_s: float | None = None) -> list[Silence]:
        """Sensors of dropout lanes silent past the lane's threshold at ``now_s``.

        Args:
            now_s: the current (event) time, epoch seconds.
            since_s: when watching began; gaps count from no earlier than this.
        """
        out: list[Silence] = []
        for lane in self._lanes:
            score_silence = getattr(lane.detector, "score_silence", None)
            if score_silence is None or not len(lane.slots):
                continue
            slots = np.arange(len(lane.slots.ids))
            scores = np.asarray(score_silence(now_s, slots, since_s=since_s))
            seen = lane.slots.last_seen
            for slot in np.flatnonzero(scores >= lane.thresholder.threshold).tolist():
                sensor = SensorId(lane.slots.ids[slot])
                out.append(Silence(lane.spec.name, sensor, float(scores[slot]), float(seen[slot])))
        return out

    def last_seen(self, sensor: str) -> float | None:
        """Latest measurement time (epoch s) of ``sensor`` any lane has taken; None: none."""
        times = [
            float(lane.slots.last_seen[slot])
            for lane in self._lanes
            if (slot := lane.slots.get(sensor)) is not None
        ]
        latest = max(times, default=-math.inf)
        return latest if math.isfinite(latest) else None

    def stats(self) -> dict[str, int]:
        """Counters per lane: sensors held, refused and evicted."""
        out: dict[str, int] = {}
        for lane in self._lanes:
            name = lane.spec.name
            out[f"{name}.sensors"] = len(lane.slots)
            out[f"{name}.refused"] = lane.slots.refused
            out[f"{name}.evicted"] = lane.slots.evicted
        return out

    # --- snapshots ----------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Serialise every lane (npz + JSON header; no pickle, safe to load)."""
        lanes_meta: list[dict[str, object]] = []
        arrays: dict[str, FloatArray] = {}
        for i, lane in enumerate(self._lanes):
            snap = lane.detector.snapshot()
            spec = lane.spec
            lanes_meta.append(
                {
                    "name": spec.name, "detector": spec.detector, "params": dict(snap.params),
                    "spec_params": dict(spec.params), "threshold": spec.threshold,
                    "protect": spec.protect, "cadence": spec.cadence,
                    "state_version": snap.version,
                    "quantities": None if spec.quantities is None else sorted(spec.quantities),
                    "sensors": lane.slots.ids, "arrays": sorted(snap.arrays),
                }
            )  # fmt: skip
            arrays |= {f"{i}/{key}": value for key, value in snap.arrays.items()}
            arrays[f"{i}/__last_seen"] = lane.slots.last_seen
        meta: dict[str, object] = {"version": BANK_VERSION, "max_sensors": self.max_sensors}
        meta |= {"overflow": self.overflow.value, "lanes": lanes_meta}
        buffer = io.BytesIO()
        header = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        np.savez_compressed(buffer, __meta__=header, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, specs: Sequence[LaneSpec] | None = None) -> DetectorBank:
        """Rebuild a bank from :meth:`to_bytes`.

        With ``specs`` (the current configuration) lanes are matched by name: a lane whose
        detector and parameters are unchanged gets its state back, others start cold (logged).

        Raises:
            SnapshotError: when the data is not a bank snapshot of a known version.
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                meta = json.loads(bytes(npz["__meta__"]).decode())
                arrays = {key: np.asarray(npz[key]) for key in npz.files if key != "__meta__"}
        except (ValueError, OSError, KeyError) as exc:
            msg = f"not a detector bank snapshot: {exc}"
            raise SnapshotError(msg) from exc
        if meta.get("version") != BANK_VERSION:
            msg = f"bank snapshot version {meta.get('version')!r} != {BANK_VERSION}"
            raise SnapshotError(msg)
        saved = [_spec_from_meta(lane) for lane in meta["lanes"]]
        bank = cls(
            saved if specs is None else specs,
            max_sensors=int(meta["max_sensors"]),
            overflow=OverflowPolicy(meta["overflow"]),
        )
        by_name = {lane["name"]: (i, lane) for i, lane in enumerate(meta["lanes"])}
        for lane in bank._lanes:
            found = by_name.get(lane.spec.name)
            if found is None or not _load_lane(lane, *found, arrays):
                logger.warning("lane %s starts cold: no matching saved state", lane.spec.name)
        return bank


def _spec_from_meta(lane: Mapping[str, object]) -> LaneSpec:
    quantities = lane["quantities"]
    params = lane["spec_params"]
    threshold = lane["threshold"]
    return LaneSpec(
        str(lane["name"]),
        str(lane["detector"]),
        dict(params) if isinstance(params, dict) else {},
        None if not isinstance(quantities, list) else frozenset(Quantity(q) for q in quantities),
        float(threshold) if isinstance(threshold, int | float) else None,
        bool(lane["protect"]),
        "hourly" if lane.get("cadence") == "hourly" else "reading",
    )


def _load_lane(
    lane: _Lane, index: int, meta: Mapping[str, object], arrays: Mapping[str, FloatArray]
) -> bool:
    params = meta["params"]
    names = meta["arrays"]
    if meta["detector"] != lane.spec.detector or not isinstance(params, dict):
        return False
    if params != lane.detector.params or not isinstance(names, list):
        return False
    snapshot = DetectorSnapshot(
        int(str(meta["state_version"])),
        lane.spec.detector,
        params,
        {str(key): arrays[f"{index}/{key}"] for key in names},
    )
    lane.detector = restore(snapshot)
    sensors = meta["sensors"]
    lane.slots.restore([str(s) for s in sensors] if isinstance(sensors, list) else [],
                       arrays[f"{index}/__last_seen"])  # fmt: skip
    return True
