"""Jittered exponential backoff with a give-up policy (pure; the caller sleeps)."""

import random
from dataclasses import dataclass, field

from simulators.errors import DeviceGaveUpError

__all__ = ["Backoff"]


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with full jitter: delay ~ U(0, min(max_s, initial_s * 2**attempt)).

    Args:
        initial_s: the first ceiling.
        max_s: the largest ceiling.
        give_up_s: give up when failures have gone on this long (None: never).
        rng: source of jitter (seeded in tests).

    >>> b = Backoff(1.0, 8.0, rng=random.Random(1))
    >>> [round(b.next_delay(0.0), 2) for _ in range(5)]
    [0.13, 1.69, 3.06, 2.04, 3.96]
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    give_up_s: float | None = None
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0
    retries_total: int = 0
    _failing_since: float | None = None

    def next_delay(self, now_s: float) -> float:
        """The delay before the next attempt; counts the retry.

        Raises:
            DeviceGaveUpError: when failures have lasted longer than ``give_up_s``.
        """
        if self._failing_since is None:
            self._failing_since = now_s
        elif self.give_up_s is not None and now_s - self._failing_since > self.give_up_s:
            msg = f"gave up after {self.attempts} attempts over {now_s - self._failing_since:.0f} s"
            raise DeviceGaveUpError(msg)
        ceiling = min(self.max_s, self.initial_s * 2.0**self.attempts)
        self.attempts += 1
        self.retries_total += 1
        return self.rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        """A connection succeeded: start again from the first ceiling."""
        self.attempts = 0
        self._failing_since = None
