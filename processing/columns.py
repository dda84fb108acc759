"""A step's readings as columns, built once and read by every part of the engine.

The engine's parts (the detector bank, the derived series, the silence and clock watches,
the lanes' conditions) each need the same per-reading facts: measurement time in epoch
seconds, value, sensor id, quantity code. Computed per part, that was several
``datetime.timestamp()`` calls and string joins per reading. :class:`Columns` holds them
once, beside the readings they describe (same order), and :meth:`Columns.take` selects a
subset without recomputing anything. The processing service builds them straight from the
reading feed's columns (:meth:`Columns.of_arrays`), so nothing is derived twice.

>>> from datetime import UTC, datetime
>>> from contract import Quantity, Reading, StationId
>>> at = datetime(2025, 9, 30, tzinfo=UTC)
>>> cols = Columns.of([Reading(StationId("fd-x"), Quantity.WATER_DEPTH, 12.0, at, at)])
>>> cols.sensor_ids, cols.times_s.tolist(), cols.values.tolist()
(['fd-x.water_depth'], [1759190400.0], [12.0])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from contract import Quantity, Reading

__all__ = ["QUANTITY_CODE", "Columns", "time_runs"]

QUANTITY_CODE: Final = {q: i for i, q in enumerate(Quantity)}
"""Each quantity's code (its position in :class:`~contract.Quantity`)."""


@dataclass(frozen=True, slots=True)
class Columns:
    """Readings and their per-reading facts, position by position.

    Args:
        readings: the readings.
        times_s: measurement times, epoch seconds.
        values: values.
        sensor_ids: ``<station>.<quantity>`` of each reading.
        codes: :data:`QUANTITY_CODE` of each reading's quantity.
    """

    readings: Sequence[Reading]
    times_s: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    sensor_ids: Sequence[str]
    codes: npt.NDArray[np.intp]

    @classmethod
    def of(cls, readings: Sequence[Reading]) -> Columns:
        """Columns computed from the readings themselves."""
        n = len(readings)
        codes = QUANTITY_CODE
        return cls(
            readings,
            np.fromiter((r.measured_at.timestamp() for r in readings), np.float64, count=n),
            np.fromiter((r.value for r in readings), np.float64, count=n),
            [r.sensor_id for r in readings],
            np.fromiter((codes[r.quantity] for r in readings), np.intp, count=n),
        )

    def __len__(self) -> int:
        return len(self.readings)

    def take(self, index: npt.NDArray[np.intp]) -> Columns:
        """The readings at ``index`` (in that order), with their columns."""
        positions = index.tolist()
        readings, ids = self.readings, self.sensor_ids
        return Columns(
            [readings[i] for i in positions], self.times_s[index], self.values[index],
            [ids[i] for i in positions], self.codes[index],
        )  # fmt: skip


def time_runs(columns: Columns, span_s: float) -> Iterator[Columns]:
    """The readings sorted by measurement time (stable), in runs spanning at most ``span_s``.

    A run starts at its first reading's time and takes every reading up to ``span_s`` later;
    the next starts at the first one after that.
    """
    if not len(columns):
        return
    times = columns.times_s
    if bool(np.all(times[1:] >= times[:-1])):
        ordered = columns  # already in time order (the live stream, mostly): no copy
    else:
        ordered = columns.take(np.argsort(times, kind="stable"))
    times = ordered.times_s
    start, n = 0, len(ordered)
    while start < n:
        beyond = np.flatnonzero(times[start + 1 :] - times[start] > span_s)
        end = start + 1 + int(beyond[0]) if beyond.size else n
        if start == 0 and end == n:
            yield ordered
            return
        yield ordered.take(np.arange(start, end, dtype=np.intp))
        start = end
