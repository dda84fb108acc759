"""What an attempt comes to, and when the next one is due (pure).

- A ``2xx`` answer is a delivery.
- Anything else — no connection, a time-out, a redirect (never followed: configure the
  final URL), any ``3xx``/``4xx``/``5xx`` — is retried. Client errors are retried too: a
  receiver that answers 401 or 404 for a while (a secret being rotated, an endpoint being
  redeployed) must not lose the department's alerts; the bounds below keep it cheap.
- Retry *n* waits between half and all of ``min(retry_max_s, retry_initial_s · 2ⁿ)`` (the
  project's equal-jitter :class:`~stream.backoff.Backoff`), or what the receiver's
  ``Retry-After`` asks if longer (never more than ``retry_max_s``).
- A delivery is *dead* when it has been attempted ``max_attempts`` times, or when the next
  attempt would come after ``max_age_s`` since it was queued; an admin may redeliver it.

>>> p = RetryPolicy(retry_initial_s=2.0, retry_max_s=600.0, max_age_s=86400.0, max_attempts=100)
>>> p.outcome(Attempt(204), attempts=1, age_s=0.0, rng=random.Random(1)).status
'delivered'
>>> o = p.outcome(Attempt(503, "busy"), attempts=1, age_s=0.0, rng=random.Random(1))
>>> o.status, 2.0 <= o.retry_in_s <= 4.0
('pending', True)
>>> p.outcome(Attempt(None, "refused"), attempts=100, age_s=60.0, rng=random.Random(1)).status
'dead'
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Final

from db.webhooks import Finished
from stream.backoff import Backoff

__all__ = ["Attempt", "RetryPolicy", "retry_after_s"]

_ERROR_CHARS: Final = 500


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST came to.

    Args:
        http_status: the receiver's status code (None: no answer).
        error: what went wrong, if anything.
        retry_after_s: the receiver's ``Retry-After``, in seconds, if it gave one.
    """

    http_status: int | None
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def delivered(self) -> bool:
        """A 2xx answer."""
        return self.http_status is not None and 200 <= self.http_status < 300


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff and give-up limits of the dispatcher (see the module docstring)."""

    retry_initial_s: float
    retry_max_s: float
    max_age_s: float
    max_attempts: int

    def delay_s(self, attempts: int, rng: random.Random) -> float:
        """The wait after the ``attempts``-th failed attempt (jittered)."""
        backoff = Backoff(self.retry_initial_s, self.retry_max_s, rng=rng, attempts=attempts)
        return backoff.next_delay(0.0)

    def outcome(
        self,
        attempt: Attempt,
        *,
        attempts: int,
        age_s: float,
        rng: random.Random,
        delivery_id: uuid.UUID | None = None,
    ) -> Finished:
        """What to record after an attempt.

        Args:
            attempt: what the POST came to.
            attempts: attempts made so far, this one included.
            age_s: seconds since the delivery was queued.
            rng: source of jitter.
            delivery_id: the delivery (for the record).
        """
        did = delivery_id or uuid.UUID(int=0)
        if attempt.delivered:
            return Finished(did, "delivered", http_status=attempt.http_status)
        error = _error_text(attempt)
        delay = self.delay_s(attempts, rng)
        if attempt.retry_after_s is not None:
            delay = max(delay, min(attempt.retry_after_s, self.retry_max_s))
        if attempts >= self.max_attempts or age_s + delay > self.max_age_s:
            reason = f"gave up after {attempts} attempt(s) over {age_s:.0f} s: {error}"
            return Finished(
                did, "dead", http_status=attempt.http_status, error=reason[:_ERROR_CHARS]
            )
        return Finished(did, "pending", delay, attempt.http_status, error)


def _error_text(attempt: Attempt) -> str:
    if attempt.error:
        text = attempt.error
    elif attempt.http_status is not None:
        text = f"HTTP {attempt.http_status}"
    else:
        text = "no answer"
    return text[:_ERROR_CHARS]


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (the HTTP-date form is not honoured).

    >>> retry_after_s("120"), retry_after_s("soon"), retry_after_s(None)
    (120.0, None, None)
    """
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())
