"""Calls made while an activity waits on a long AWS operation.

botocore already retries a throttled call a few times. In a wait loop that is not enough: a step
that polls for half an hour makes hundreds of calls, and under sustained throttling one of them
will exhaust botocore's attempts. Failing the activity for that would spend the step's retry
budget on a busy signal and, at scale, park requests for an operator who can do nothing. The
loop is waiting anyway, so it waits out the transient error too (heartbeating, with backoff);
refusals still raise at once, and the activity's own timeout still bounds the whole wait.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError
from temporalio import activity

from activities import heartbeats
from activities.aws_errors import is_transient

T = TypeVar("T")
MAX_PAUSE_SECONDS = 60.0


def patiently(call: Callable[[], T], pause: float, *, waiting_for: str) -> T:
    """``call()``, with transient AWS errors waited out instead of raised."""
    delay = max(pause, 0.05)
    while True:
        try:
            return call()
        except ClientError as err:
            if not is_transient(err):
                raise
            activity.logger.info("%s: transient %s, waiting", waiting_for, err)
        heartbeats.pause(delay * random.uniform(0.5, 1.5), waiting_for=waiting_for)
        delay = min(delay * 2, MAX_PAUSE_SECONDS)
