"""How long to wait before trying again: one rule for every retry in the agent."""

from __future__ import annotations

import random
from collections.abc import Callable


def next_retry_delay(
    attempt: int,
    *,
    base: float = 5.0,
    cap: float = 3600.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Given the number of the attempt that just failed (1 for the first), return the
    seconds to wait before the next: ``base`` doubled each time up to ``cap``, then a
    random point in its upper half, so retries spread out yet never come back at once."""
    exponent = min(max(attempt, 1) - 1, 62)
    ceiling = min(cap, base * 2.0**exponent)
    return ceiling / 2 + rand() * ceiling / 2
