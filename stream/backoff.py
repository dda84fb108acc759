"""Jittered exponential backoff with a give-up policy: the one every retry loop uses (pure).

Delays follow "equal jitter": the n-th retry waits between half and all of
``min(max_s, initial_s * 2**n)``. Half the ceiling is kept so a retry never comes at once
(a database or broker that just refused is not asked again in the same instant), and half
is random, so many clients failing together (devices after a broker restart, API replicas
after a database failover) do not come back in step. The caller sleeps; this only counts.

>>> b = Backoff(1.0, 8.0, rng=random.Random(1))
>>> [round(b.next_delay(0.0), 2) for _ in range(5)]
[0.57, 1.85, 3.53, 5.02, 5.98]
>>> b.retries_total
5
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff", "GaveUpError", "backoff_delay"]

_MAX_DOUBLINGS = 32
"""Enough doublings to reach any practical cap, few enough to stay a finite float."""


class GaveUpError(Exception):
    """Failures have lasted longer than the backoff's ``give_up_s``."""


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with equal jitter and an optional give-up time.

    Args:
        initial_s: the first ceiling.
        max_s: the largest ceiling.
        give_up_s: give up when failures have gone on this long (None: never).
        rng: source of jitter (seeded in tests).
    """

    initial_s: float = 0.2
    max_s: float = 30.0
    give_up_s: float | None = None
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0
    retries_total: int = 0
    _failing_since: float | None = None

    def next_delay(self, now_s: float) -> float:
        """The delay before the next attempt; counts the retry.

        Args:
            now_s: the caller's monotonic clock, for the give-up policy.

        Raises:
            GaveUpError: when failures have lasted longer than ``give_up_s``.
        """
        if self._failing_since is None:
            self._failing_since = now_s
        elif self.give_up_s is not None and now_s - self._failing_since > self.give_up_s:
            msg = f"gave up after {self.attempts} attempts over {now_s - self._failing_since:.0f} s"
            raise GaveUpError(msg)
        ceiling = min(self.max_s, self.initial_s * 2.0 ** min(self.attempts, _MAX_DOUBLINGS))
        self.attempts += 1
        self.retries_total += 1
        return ceiling * self.rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        """A connection or a write succeeded: start again from the first ceiling."""
        self.attempts = 0
        self._failing_since = None


_shared = random.Random()  # noqa: S311 - jitter, not cryptography


def backoff_delay(attempt: int, *, base_s: float = 0.2, cap_s: float = 30.0) -> float:
    """Delay before retry number ``attempt`` (1-based), for loops that count their own tries.

    The same schedule as :class:`Backoff` (equal jitter, first ceiling ``2 * base_s``).

    >>> 0.2 <= backoff_delay(1) <= 0.4
    True
    >>> backoff_delay(50, cap_s=30.0) <= 30.0
    True
    """
    return Backoff(base_s, cap_s, rng=_shared, attempts=max(attempt, 1)).next_delay(0.0)
