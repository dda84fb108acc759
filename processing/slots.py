"""Sensor ids to integer slots: the bounded map behind every detector lane.

A lane holds at most ``max_sensors`` sensors. When it is full, the :class:`OverflowPolicy`
decides: ``refuse`` (the new sensor is not tracked; counted in ``refused``) or ``evict_lru``
(the sensor seen longest ago, by measurement time, loses its slot; counted in ``evicted``,
and the caller resets that slot's state).

>>> import numpy as np
>>> slots = SlotMap(2, OverflowPolicy.EVICT_LRU)
>>> slots.assign(["a.pm25", "b.pm25"], np.array([10.0, 20.0]))[0].tolist()
[0, 1]
>>> [a.tolist() for a in slots.assign(["c.pm25"], np.array([30.0]))]
[[0], [0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from processing.errors import DetectorConfigError

__all__ = ["OverflowPolicy", "SlotMap"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


class OverflowPolicy(StrEnum):
    """What a full lane does with a new sensor."""

    REFUSE = "refuse"
    EVICT_LRU = "evict_lru"


class SlotMap:
    """Sensor ids to integer slots, bounded, with LRU bookkeeping.

    Args:
        max_sensors: most sensors held.
        overflow: what happens to a new sensor when full.
    """

    def __init__(self, max_sensors: int, overflow: OverflowPolicy) -> None:
        if max_sensors < 1:
            msg = "max_sensors must be >= 1"
            raise DetectorConfigError(msg)
        self.max_sensors, self.overflow = max_sensors, overflow
        self.ids: list[str] = []
        self._slots: dict[str, int] = {}
        self._seen: FloatArray = np.zeros(0)  # grows by doubling; slots beyond ids unused
        self.refused = 0
        self.evicted = 0
        self._clock = -np.inf  # latest time seen, so registered sensors count as fresh

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def last_seen(self) -> FloatArray:
        """Latest measurement time seen per slot (epoch seconds; -inf: never)."""
        return self._seen[: len(self.ids)].copy()

    def get(self, sensor: str) -> int | None:
        """The slot of a known sensor."""
        return self._slots.get(sensor)

    def assign(self, sensors: Sequence[str], times_s: FloatArray) -> tuple[IntArray, IntArray]:
        """Slots for ``sensors`` (-1 where refused) and the slots evicted to make room."""
        seen = np.nan_to_num(np.asarray(times_s, dtype=np.float64), nan=-np.inf)
        lookup = self._slots.get
        slots = np.fromiter(
            (lookup(sensor, -1) for sensor in sensors), dtype=np.intp, count=len(sensors)
        )
        known = slots >= 0
        # Mark known sensors seen first, so a newcomer in this batch cannot evict them.
        np.maximum.at(self._seen, slots[known], seen[known])
        evicted: list[int] = []
        for i in np.flatnonzero(~known).tolist():
            slot = self._slots.get(sensors[i])  # it may have arrived earlier in this batch
            if slot is None:
                slot = self._new_slot(sensors[i], evicted)
            if slot >= 0:
                self._seen[slot] = max(self._seen[slot], seen[i], self._clock)
            slots[i] = slot
        self._clock = max(self._clock, float(seen.max(initial=-np.inf)))
        return slots, np.asarray(evicted, dtype=np.intp)

    def _new_slot(self, sensor: str, evicted: list[int]) -> int:
        if len(self.ids) < self.max_sensors:
            self.ids.append(sensor)
            if len(self.ids) > self._seen.size:
                grown = np.full(min(self.max_sensors, 2 * len(self.ids) + 16), -np.inf)
                grown[: self._seen.size] = self._seen
                self._seen = grown
            slot = len(self.ids) - 1
        elif self.overflow is OverflowPolicy.EVICT_LRU:
            slot = int(np.argmin(self._seen[: len(self.ids)]))
            del self._slots[self.ids[slot]]
            self.ids[slot] = sensor
            self._seen[slot] = -np.inf
            evicted.append(slot)
            self.evicted += 1
        else:
            self.refused += 1
            return -1
        self._slots[sensor] = slot
        return slot

    def restore(self, ids: Sequence[str], last_seen: FloatArray) -> None:
        """Load a saved mapping (slot i belongs to ``ids[i]``)."""
        self.ids = list(ids)
        self._slots = {sensor: i for i, sensor in enumerate(self.ids)}
        self._seen = np.array(last_seen, dtype=np.float64)
