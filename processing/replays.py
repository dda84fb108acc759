"""Readings the engine has already decided on: MQTT's at-least-once delivery, made once (pure).

Processing reads the broker directly, at QoS 1: a publisher's retry after a lost PUBACK, or
a batch redelivered because this service stopped between deciding and acknowledging it,
brings readings the engine has seen. The store de-duplicates them on its key; the engine
must too, or a redelivered rain message adds its millimetres to the nowcast twice and a
detector learns the same point again. :class:`SeenReadings` remembers, per sensor, the
measurement times of its last ``per_sensor`` readings and passes a reading only once.

Bounded: at most ``max_sensors`` sensors are remembered (the least recently heard is
forgotten first) and ``per_sensor`` times each. A reading older than every remembered time
of its sensor is passed (a late reading, not provably a repeat): the memory covers the
redelivery window (a few batches), not history.

>>> from datetime import UTC, datetime
>>> from ingest.wire import Quantity, Reading, StationId
>>> at = datetime(2025, 9, 30, tzinfo=UTC)
>>> r = Reading(StationId("rg-1"), Quantity.RAINFALL, 3.5, at, at)
>>> seen = SeenReadings()
>>> len(seen.first_time([r, r])), len(seen.first_time([r])), seen.repeats
(1, 0, 2)
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Final

from ingest.wire import Reading

__all__ = ["SeenReadings"]

# A 1-minute sensor's last 32 readings: half an hour, far longer than a redelivery (the
# broker resends what was unacknowledged: the batches in flight, seconds of readings).
PER_SENSOR: Final = 32
MAX_SENSORS: Final = 200_000


class SeenReadings:
    """Pass each (sensor, measurement time) once, within a bounded memory.

    Args:
        per_sensor: measurement times remembered per sensor.
        max_sensors: sensors remembered (least recently heard forgotten first).
    """

    def __init__(self, per_sensor: int = PER_SENSOR, max_sensors: int = MAX_SENSORS) -> None:
        self._per_sensor = per_sensor
        self._max_sensors = max_sensors
        self._times: OrderedDict[str, tuple[set[float], deque[float]]] = OrderedDict()
        self.repeats = 0
        """Readings withheld as already seen, since start."""

    def __len__(self) -> int:
        return len(self._times)

    def first_time(self, readings: Sequence[Reading]) -> list[Reading]:
        """The readings not seen before, in their order; remembers them."""
        out = []
        for reading in readings:
            sensor = reading.sensor_id
            at = reading.measured_at.timestamp()
            entry = self._times.get(sensor)
            if entry is None:
                entry = self._times[sensor] = (set(), deque())
                if len(self._times) > self._max_sensors:
                    self._times.popitem(last=False)
            else:
                self._times.move_to_end(sensor)
            known, order = entry
            if at in known:
                self.repeats += 1
                continue
            known.add(at)
            order.append(at)
            if len(order) > self._per_sensor:
                known.discard(order.popleft())
            out.append(reading)
        return out
