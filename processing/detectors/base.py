"""The detector contract: protocols, the thresholder and the vectorised base class.

A detector holds the state of many sensors in numpy arrays indexed by an integer *slot*.
``score_many`` scores a batch without changing anything; ``learn_many`` folds a batch into the
baseline; ``process_many`` does both the way a stream would: for the k-th reading of every
sensor in the batch it scores, lets the :class:`Thresholder` decide, and learns, so a batch
holding several readings of one sensor gives exactly what one-at-a-time processing gives.
``learn_one``/``score_one`` are the same code on a single slot.

Scores lie in [0, 1], higher is more anomalous. Readings the thresholder flags are *protected*:
they do not train the baseline (bookkeeping such as "last value seen" still advances), unless
``relearn_after`` consecutive readings of a sensor were flagged, after which the detector
accepts the new regime (0 disables this). Non-finite values or times score 0 and teach nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from contract import Quantity, Reading
from processing.detectors._private import (
    BoolArray,
    FloatArray,
    IntArray,
    check_count,
    occurrence_rounds,
)
from processing.errors import DetectorConfigError, SnapshotError

__all__ = [
    "STATE_VERSION",
    "Detector",
    "DetectorSnapshot",
    "ParamValue",
    "SeriesScorer",
    "StateField",
    "Thresholder",
    "VectorDetector",
    "occurrence_rounds",
]

STATE_VERSION: Final = 1
_MAX_CAPACITY: Final = 50_000_000

ParamValue = float | int | bool | str | None


@runtime_checkable
class Detector(Protocol):
    """One sensor's detector, river style: learn and score one value at a time."""

    def learn_one(self, x: float | Reading, time_s: float | None = None) -> None:
        """Fold one value (or reading) into the baseline."""

    def score_one(self, x: float | Reading, time_s: float | None = None) -> float:
        """Score one value in [0, 1] without learning it; higher is more anomalous."""


@runtime_checkable
class SeriesScorer(Protocol):
    """A detector with a fast path for one stream (the backtest's case).

    ``process_series`` must give what :meth:`VectorDetector.process_many` gives when every
    point is its own round.
    """

    def process_series(
        self, values: npt.ArrayLike, times_s: npt.ArrayLike, thresholder: Thresholder | None = None
    ) -> tuple[FloatArray, BoolArray]:
        """Score, decide and learn one stream's points in order."""
        ...


@dataclass(frozen=True, slots=True)
class Thresholder:
    """Turns scores into decisions.

    Args:
        threshold: scores at or above it are anomalous.
        protect: when true, anomalous readings do not train the detector's baseline.

    >>> Thresholder(0.5).classify(0.7), Thresholder(0.5).classify(0.2)
    (True, False)
    """

    threshold: float
    protect: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            msg = f"threshold must lie in [0, 1], got {self.threshold!r}"
            raise DetectorConfigError(msg)

    def classify(self, score: float) -> bool:
        """True when ``score`` is anomalous."""
        return score >= self.threshold

    def classify_many(self, scores: FloatArray) -> BoolArray:
        """Vectorised :meth:`classify`."""
        decided: BoolArray = np.asarray(scores) >= self.threshold
        return decided


@dataclass(frozen=True, slots=True)
class StateField:
    """One per-slot state array: its trailing shape and the value of an empty slot."""

    shape: tuple[int, ...] = ()
    fill: float = 0.0


@dataclass(frozen=True, slots=True)
class DetectorSnapshot:
    """A versioned copy of a detector's parameters and state arrays (picklable, no code).

    Args:
        version: :data:`STATE_VERSION` when written.
        detector: registry name of the detector.
        params: constructor parameters, JSON-compatible.
        arrays: every state array, first axis = slot.
    """

    version: int
    detector: str
    params: Mapping[str, ParamValue]
    arrays: Mapping[str, FloatArray] = field(default_factory=dict)


class VectorDetector(ABC):
    """Base of every detector: per-slot state arrays, rounds, protection and snapshots.

    Subclasses declare their state in :meth:`_fields` and implement the pure :meth:`_score`
    and the in-place :meth:`_learn` for one round (unique slots, finite inputs).

    Args:
        params: the subclass's constructor parameters (for snapshots).
        relearn_after: consecutive flagged readings after which learning resumes (0: never).
        capacity: slots to allocate up front; arrays grow on demand.
    """

    name: ClassVar[str]
    default_threshold: ClassVar[float]
    catches: ClassVar[str]
    cross_sensor: ClassVar[bool] = False
    context_quantities: ClassVar[frozenset[Quantity]] = frozenset()
    primary_quantity: ClassVar[Quantity | None] = None

    def __init__(
        self, params: Mapping[str, ParamValue], *, relearn_after: int, capacity: int
    ) -> None:
        check_count("relearn_after", relearn_after)
        check_count("capacity", capacity)
        self.relearn_after = relearn_after
        self._params: dict[str, ParamValue] = {**params, "relearn_after": relearn_after}
        self._specs: dict[str, StateField] = {"protected_run": StateField(), **self._fields()}
        self._capacity = 0
        self._memo: tuple[str, IntArray, FloatArray, FloatArray, FloatArray] | None = None
        self._state: dict[str, FloatArray] = {
            key: np.full((0, *spec.shape), spec.fill) for key, spec in self._specs.items()
        }
        self.ensure_capacity(capacity)

    # --- subclass hooks -------------------------------------------------------------------

    @abstractmethod
    def _fields(self) -> dict[str, StateField]:
        """The per-slot state arrays this detector needs."""

    @abstractmethod
    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        """Scores in [0, 1] for finite inputs; must not modify any state."""

    @abstractmethod
    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        """Advance bookkeeping for all, and the baseline where ``train``; slots are unique."""

    # --- capacity and state ---------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Number of slots currently allocated."""
        return self._capacity

    @property
    def params(self) -> dict[str, ParamValue]:
        """The constructor parameters (a copy)."""
        return dict(self._params)

    def thresholder(self, *, protect: bool = True) -> Thresholder:
        """A thresholder at this detector's documented default threshold."""
        return Thresholder(self.default_threshold, protect)

    def ensure_capacity(self, needed: int) -> None:
        """Grow every state array so that slots ``0 .. needed-1`` exist."""
        if needed <= self._capacity:
            return
        if needed > _MAX_CAPACITY:
            msg = f"{needed} slots exceed the hard limit of {_MAX_CAPACITY}"
            raise DetectorConfigError(msg)
        new_capacity = max(needed, self._capacity + self._capacity // 2, 1)
        for key, spec in self._specs.items():
            grown = np.full((new_capacity, *spec.shape), spec.fill)
            grown[: self._capacity] = self._state[key]
            self._state[key] = grown
        self._capacity = new_capacity

    def reset(self, slots: npt.ArrayLike) -> None:
        """Forget everything about ``slots`` (e.g. when a slot is reused for a new sensor)."""
        chosen = np.asarray(slots, dtype=np.intp)
        chosen = chosen[chosen < self._capacity]
        for key, spec in self._specs.items():
            self._state[key][chosen] = spec.fill
        self._memo = None

    def snapshot(self) -> DetectorSnapshot:
        """A versioned copy of parameters and state (restore with ``processing.detectors``)."""
        arrays = {key: arr[: self._capacity].copy() for key, arr in self._state.items()}
        return DetectorSnapshot(STATE_VERSION, self.name, dict(self._params), arrays)

    def load_snapshot(self, snapshot: DetectorSnapshot) -> None:
        """Replace this detector's state with ``snapshot``'s.

        Raises:
            SnapshotError: on a different version, detector, parameters or array shape.
        """
        if snapshot.version != STATE_VERSION or snapshot.detector != self.name:
            msg = (
                f"snapshot of {snapshot.detector!r} v{snapshot.version} cannot be loaded "
                f"into {self.name!r} v{STATE_VERSION}"
            )
            raise SnapshotError(msg)
        if dict(snapshot.params) != self._params:
            msg = f"snapshot parameters {dict(snapshot.params)} differ from {self._params}"
            raise SnapshotError(msg)
        if set(snapshot.arrays) != set(self._specs):
            msg = f"snapshot arrays {sorted(snapshot.arrays)} != {sorted(self._specs)}"
            raise SnapshotError(msg)
        capacity = {len(a) for a in snapshot.arrays.values()}
        if len(capacity) != 1:
            msg = "snapshot arrays disagree on the number of slots"
            raise SnapshotError(msg)
        for key, spec in self._specs.items():
            if snapshot.arrays[key].shape[1:] != spec.shape:
                msg = f"snapshot array {key!r} has shape {snapshot.arrays[key].shape}"
                raise SnapshotError(msg)
        self._state = {key: np.array(a, dtype=np.float64) for key, a in snapshot.arrays.items()}
        self._capacity = capacity.pop()
        self._memo = None

    def _memoised(
        self,
        name: str,
        slots: IntArray,
        values: FloatArray,
        times_s: FloatArray,
        compute: Callable[[], FloatArray],
    ) -> FloatArray:
        """``compute()``, reused when scoring and then learning the same round.

        The memo is dropped whenever the state changes (learning, reset, restore), so a hit
        means the same inputs on the same state.
        """
        memo = self._memo
        if (
            memo is not None
            and memo[0] == name
            and np.array_equal(memo[1], slots)
            and np.array_equal(memo[2], values)
            and np.array_equal(memo[3], times_s)
        ):
            return memo[4]
        result = compute()
        self._memo = (name, slots.copy(), values.copy(), times_s.copy(), result)
        return result

    # --- vectorised API -------------------------------------------------------------------

    def _inputs(
        self, slots: npt.ArrayLike, values: npt.ArrayLike, times_s: npt.ArrayLike
    ) -> tuple[IntArray, FloatArray, FloatArray]:
        slot_arr = np.asarray(slots, dtype=np.intp)
        value_arr = np.asarray(values, dtype=np.float64)
        time_arr = np.asarray(times_s, dtype=np.float64)
        if not slot_arr.ndim == value_arr.ndim == time_arr.ndim == 1 or not (
            slot_arr.shape == value_arr.shape == time_arr.shape
        ):
            msg = "slots, values and times_s must be 1-D arrays of one length"
            raise DetectorConfigError(msg)
        if slot_arr.size:
            if slot_arr.min() < 0:
                msg = "slots must be >= 0"
                raise DetectorConfigError(msg)
            self.ensure_capacity(int(slot_arr.max()) + 1)
        return slot_arr, value_arr, time_arr

    def _begin_round(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> None:
        """Hook before a round is scored (cross-sensor detectors publish the round's values).

        The default does nothing: a per-sensor detector's state is its own business.
        """
        del slots, values, times_s

    def _safe_score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        scores = np.zeros(slots.shape[0])
        ok = np.flatnonzero(np.isfinite(values) & np.isfinite(times_s))
        if ok.size:
            with np.errstate(all="ignore"):
                raw = self._score(slots[ok], values[ok], times_s[ok])
            scores[ok] = np.clip(np.nan_to_num(raw, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
        return scores

    def _commit(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, protect: BoolArray
    ) -> None:
        ok = np.flatnonzero(np.isfinite(values) & np.isfinite(times_s))
        if ok.size == 0:
            return
        slots, protect = slots[ok], protect[ok]
        run = self._state["protected_run"]
        new_run = np.where(protect, run[slots] + 1.0, 0.0)
        run[slots] = new_run
        train = ~protect
        if self.relearn_after > 0:
            train = train | (new_run > self.relearn_after)
        with np.errstate(all="ignore"):
            self._learn(slots, values[ok], times_s[ok], train)
        self._memo = None

    def score_many(
        self, slots: npt.ArrayLike, values: npt.ArrayLike, times_s: npt.ArrayLike
    ) -> FloatArray:
        """Score a batch against the current state without learning.

        A slot repeated in the batch is scored against the same (current) state each time;
        use :meth:`process_many` for stream semantics.
        """
        slot_arr, value_arr, time_arr = self._inputs(slots, values, times_s)
        return self._safe_score(slot_arr, value_arr, time_arr)

    def learn_many(
        self,
        slots: npt.ArrayLike,
        values: npt.ArrayLike,
        times_s: npt.ArrayLike,
        mask: npt.ArrayLike | None = None,
    ) -> None:
        """Learn a batch in stream order; ``mask`` False marks confirmed anomalies (protected)."""
        slot_arr, value_arr, time_arr = self._inputs(slots, values, times_s)
        allowed = np.ones(slot_arr.shape[0], dtype=bool)
        if mask is not None:
            allowed = np.asarray(mask, dtype=bool)
        for idx in occurrence_rounds(slot_arr):
            s, v, t = slot_arr[idx], value_arr[idx], time_arr[idx]
            self._begin_round(s, v, t)
            self._commit(s, v, t, ~allowed[idx])

    def process_many(
        self,
        slots: npt.ArrayLike,
        values: npt.ArrayLike,
        times_s: npt.ArrayLike,
        thresholder: Thresholder | None = None,
    ) -> tuple[FloatArray, BoolArray]:
        """Score, decide and learn a batch exactly as one-at-a-time processing would.

        Returns:
            The scores and the thresholder's decisions, in batch order.
        """
        decide = thresholder or self.thresholder()
        slot_arr, value_arr, time_arr = self._inputs(slots, values, times_s)
        scores = np.zeros(slot_arr.shape[0])
        flags = np.zeros(slot_arr.shape[0], dtype=bool)
        for idx in occurrence_rounds(slot_arr):
            s, v, t = slot_arr[idx], value_arr[idx], time_arr[idx]
            self._begin_round(s, v, t)
            round_scores = self._safe_score(s, v, t)
            round_flags = decide.classify_many(round_scores)
            scores[idx] = round_scores
            flags[idx] = round_flags
            protect = round_flags if decide.protect else np.zeros_like(round_flags)
            self._commit(s, v, t, protect)
        return scores, flags

    # --- single-sensor API (the Detector protocol) ----------------------------------------

    def score_one(self, x: float | Reading, time_s: float | None = None, *, slot: int = 0) -> float:
        """Score one value (or reading) for ``slot`` without learning it.

        A reading of one of :attr:`context_quantities` scores 0 (it only informs).
        """
        if isinstance(x, Reading) and x.quantity in self.context_quantities:
            return 0.0
        value, when = self._point(x, time_s)
        scores = self.score_many(np.array([slot]), np.array([value]), np.array([when]))
        return float(scores[0])

    def learn_one(
        self,
        x: float | Reading,
        time_s: float | None = None,
        *,
        slot: int = 0,
        protect: bool = False,
    ) -> None:
        """Learn one value for ``slot``; ``protect`` marks it a confirmed anomaly."""
        value, when = self._point(x, time_s)
        slots, values, times = np.array([slot]), np.array([value]), np.array([when])
        if isinstance(x, Reading) and x.quantity in self.context_quantities:
            self.update_context(slots, x.quantity, values, times)
            return
        self.learn_many(slots, values, times, np.array([not protect]))

    @staticmethod
    def _point(x: float | Reading, time_s: float | None) -> tuple[float, float]:
        if isinstance(x, Reading):
            return float(x.value), x.measured_at.timestamp()
        if time_s is None:
            msg = "time_s is required when scoring a bare value"
            raise DetectorConfigError(msg)
        return float(x), float(time_s)

    def update_context(
        self,
        slots: npt.ArrayLike,
        quantity: Quantity,
        values: npt.ArrayLike,
        times_s: npt.ArrayLike,
    ) -> None:
        """Record auxiliary readings (multivariate detectors only).

        Raises:
            DetectorConfigError: for a detector without context quantities.
        """
        msg = f"{self.name} takes no context readings (got {quantity})"
        raise DetectorConfigError(msg)
