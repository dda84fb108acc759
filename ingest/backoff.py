"""Jittered exponential backoff, shared by every reconnect and retry loop."""

import random

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, *, base_s: float = 0.2, cap_s: float = 30.0) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, capped, "equal jitter".

    >>> 0.1 <= backoff_delay(1) <= 0.4
    True
    >>> backoff_delay(50, cap_s=30.0) <= 30.0
    True
    """
    ceiling: float = min(cap_s, base_s * 2.0 ** min(max(attempt, 1), 16))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
