import random

import pytest

from stream.backoff import Backoff, GaveUpError, backoff_delay


def test_backoff_grows_with_equal_jitter_resets_and_gives_up() -> None:
    backoff = Backoff(0.5, 4.0, give_up_s=10.0, rng=random.Random(0))
    delays = [backoff.next_delay(float(t)) for t in range(6)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert backoff.retries_total == 6
    backoff.reset()
    assert backoff.attempts == 0
    backoff.next_delay(100.0)
    with pytest.raises(GaveUpError):
        backoff.next_delay(111.0)


def test_the_retry_function_follows_the_same_schedule() -> None:
    for attempt in (1, 2, 5, 60, 10_000):
        ceiling = min(30.0, 0.2 * 2.0 ** min(attempt, 32))
        assert ceiling / 2 <= backoff_delay(attempt) <= ceiling
