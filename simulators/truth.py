"""Ground truth: labels for every injected event and fault, as wire ``TruthEvent`` records.

Labels travel in the message stream (on ``contract.truth_topic(root)``) at the simulated
moment they are known, and are also appended to a JSON-lines file, one
``contract.encode_truth`` object per line, so processing can score itself offline.

When a label is published:

- scripted events and fault episodes: when they start (their end is planned);
- per-message faults (spike, duplicate, out-of-order, malformed): with the message;
- dropout gaps and threshold episodes (``flood``, ``hypoxia``): when they end, because
  only then are both ends known.
"""

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self

import numpy as np
import numpy.typing as npt

from contract import Quantity, StationId, TruthEvent, decode_truth, encode_truth

__all__ = ["Label", "ThresholdEpisodes", "TruthFile", "read_truth_file", "utc"]

Category = Literal["event", "fault"]


def utc(seconds: float) -> datetime:
    """A unix time as a tz-aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True, slots=True)
class Label:
    """One ground-truth label before it gets its id (absolute unix seconds).

    Args:
        station_id: the affected station.
        kind: what happened (``flood``, ``spike``, ...).
        category: ``event`` (in the city) or ``fault`` (in the sensor).
        start_s: start time.
        end_s: end time (equal to start for a single message).
        known_s: the simulated time at which it is published.
        quantities: affected quantities (empty: all of the station's).
        detail: free text.
    """

    station_id: str
    kind: str
    category: Category
    start_s: float
    end_s: float
    known_s: float
    quantities: tuple[Quantity, ...] = ()
    detail: str = ""

    def to_truth(self, scenario: str, event_id: str) -> TruthEvent:
        """The wire record for this label."""
        return TruthEvent(
            event_id,
            scenario,
            StationId(self.station_id),
            self.kind,
            self.category,
            utc(self.start_s),
            utc(self.end_s),
            self.quantities,
            self.detail,
        )


@dataclass(slots=True)
class ThresholdEpisodes:
    """Turns a true series into labelled episodes with hysteresis.

    An episode starts at the first sample beyond ``on`` and ends at the last sample before
    the value comes back past ``off``; it is labelled with its extreme value.

    Args:
        station_id: the station.
        kind: label kind.
        quantity: the quantity watched.
        on: threshold that starts an episode.
        off: threshold that ends it.
        above: True when high values are the event (flood), False for low ones (hypoxia).
        unit: unit for the detail text.
    """

    station_id: str
    kind: str
    quantity: Quantity
    on: float
    off: float
    above: bool = True
    unit: str = ""
    _start_s: float | None = None
    _last_s: float = 0.0
    _extreme: float = 0.0

    def update(
        self, times_s: npt.NDArray[np.float64], values: npt.NDArray[np.float64]
    ) -> list[Label]:
        """Feed true values at sample times; returns the episodes that ended."""
        done: list[Label] = []
        sign = 1.0 if self.above else -1.0
        for t, v in zip(times_s.tolist(), values.tolist(), strict=True):
            if self._start_s is None:
                if sign * v >= sign * self.on:
                    self._start_s, self._last_s, self._extreme = t, t, v
                continue
            if sign * v < sign * self.off:
                done.append(self._close(t))
                continue
            self._last_s = t
            self._extreme = max(self._extreme, v) if self.above else min(self._extreme, v)
        return done

    def flush(self, known_s: float) -> list[Label]:
        """Close an episode still open at the end of the run."""
        return [self._close(known_s)] if self._start_s is not None else []

    def _close(self, known_s: float) -> Label:
        start = self._start_s if self._start_s is not None else known_s
        word = "peak" if self.above else "minimum"
        detail = f"{word} {self._extreme:.1f} {self.unit}; threshold {self.on:g}/{self.off:g}"
        self._start_s = None
        return Label(
            self.station_id,
            self.kind,
            "event",
            start,
            self._last_s,
            known_s,
            (self.quantity,),
            detail,
        )


@dataclass(slots=True)
class TruthFile:
    """Append-only JSON-lines file of truth records (flushed per line).

    Args:
        path: the file; its directory is created.
    """

    path: Path
    count: int = 0
    _handle: IO[bytes] | None = field(default=None, repr=False)

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("ab")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None

    def write(self, event: TruthEvent) -> None:
        """Append one record."""
        if self._handle is None:
            msg = "TruthFile is not open"
            raise RuntimeError(msg)
        self._handle.write(encode_truth(event) + b"\n")
        self._handle.flush()
        self.count += 1


def read_truth_file(path: Path) -> list[TruthEvent]:
    """Read a JSON-lines truth file back into records."""
    return [decode_truth(line) for line in path.read_bytes().splitlines() if line.strip()]
