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
>>> from contract import Quantity, Reading, StationId
>>> at = datetime(2025, 9, 30, tzinfo=UTC)
>>> r = Reading(StationId("rg-1"), Quantity.RAINFALL, 3.5, at, at)
>>> seen = SeenReadings()
>>> len(seen.first_time([r, r])), len(seen.first_time([r])), seen.repeats
(1, 0, 2)
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Final

from contract import Reading

__all__ = ["SeenReadings"]

# A 1-minute sensor's last 16 readings: a quarter of an hour, far longer than a redelivery
# (the broker resends what was unacknowledged: the batches in flight, seconds of readings).
# A plain list per sensor (a scan of 16 floats is cheaper than hashing them): ~0.6 KB each.
PER_SENSOR: Final = 16
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
        self._times: OrderedDict[str, list[float]] = OrderedDict()
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
            times = self._times.get(sensor)
            if times is None:
                times = self._times[sensor] = []
                if len(self._times) > self._max_sensors:
                    self._times.popitem(last=False)
            else:
                self._times.move_to_end(sensor)
            if at in times:
                self.repeats += 1
                continue
            times.append(at)
            if len(times) > self._per_sensor:
                del times[0]
            out.append(reading)
        return out

    def forget(self, readings: Sequence[Reading]) -> None:
        """Unsee readings whose decision did not happen (the engine raised on their batch).

        >>> from datetime import UTC, datetime
        >>> from contract import Quantity, Reading, StationId
        >>> at = datetime(2025, 9, 30, tzinfo=UTC)
        >>> r = Reading(StationId("rg-1"), Quantity.RAINFALL, 3.5, at, at)
        >>> seen = SeenReadings()
        >>> seen.forget(seen.first_time([r]))
        >>> len(seen.first_time([r]))
        1
        """
        for reading in readings:
            times = self._times.get(reading.sensor_id)
            if times is None:
                continue
            with contextlib.suppress(ValueError):
                times.remove(reading.measured_at.timestamp())
