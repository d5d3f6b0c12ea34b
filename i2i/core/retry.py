"""Retrying a network service (geocoders, Ollama): one back-off rule and one cool-down length.

A transient failure (a timeout, a refused or reset connection, 429, 5xx) is retried after
``backoff`` seconds doubled per retry, jittered and capped; when a job runs out of retries the
service rests for :data:`COOL_DOWN_S`, so queued jobs do not each wait out the same outage.
"""

from __future__ import annotations

import random

COOL_DOWN_S = 60.0
MAX_WAIT_S = 15.0


def backoff_delay(attempt: int, base: float) -> float:
    """Seconds before retry ``attempt + 1``: ``base`` doubled per retry, jittered, capped."""
    return min(base * 2**attempt, MAX_WAIT_S) * random.uniform(0.5, 1.0)
