"""The batching policy: flush on size or age (pure; the clock is passed in)."""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.validate import Outcome

__all__ = ["Batch", "Batcher"]


@dataclass(slots=True)
class Batch:
    """Outcomes of consecutive messages, written in one transaction and acked together."""

    outcomes: list[Outcome] = field(default_factory=list)
    readings: int = 0
    opened_at: float = 0.0

    def __len__(self) -> int:
        return len(self.outcomes)


class Batcher:
    """Collects outcomes and says when the batch must go.

    Args:
        max_readings: flush when this many readings (rows) are pending.
        max_messages: flush when this many messages are pending (bounded by the MQTT
            in-flight window: unacked messages cannot exceed it).
        max_age_s: flush when the oldest pending message waited this long.
    """

    def __init__(self, *, max_readings: int, max_messages: int, max_age_s: float) -> None:
        self.max_readings = max_readings
        self.max_messages = max_messages
        self.max_age_s = max_age_s
        self._batch = Batch()

    def add(self, outcome: Outcome, now: float) -> bool:
        """Add an outcome; True when the batch is now full and must be flushed."""
        if not self._batch.outcomes:
            self._batch.opened_at = now
        self._batch.outcomes.append(outcome)
        self._batch.readings += len(outcome.rows)
        return (
            self._batch.readings >= self.max_readings
            or len(self._batch.outcomes) >= self.max_messages
        )

    def due_in(self, now: float) -> float | None:
        """Seconds until the age limit forces a flush (None when empty)."""
        if not self._batch.outcomes:
            return None
        return max(0.0, self._batch.opened_at + self.max_age_s - now)

    def take(self) -> Batch:
        """Hand over the pending batch and start a new one."""
        batch, self._batch = self._batch, Batch()
        return batch

    def __len__(self) -> int:
        return len(self._batch)
