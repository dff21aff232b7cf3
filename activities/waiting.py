"""The one way activities wait: for an AWS (or vendor) operation to end, out a transient error,
or past a busy resource.

botocore retries a throttled call a few times (standard mode), and Temporal retries a failed
activity; neither fits a wait. A step that polls for half an hour makes hundreds of calls, and
under sustained throttling one of them will exhaust botocore's attempts: failing the activity
for that would spend the step's retry budget on a busy signal and, at scale, park requests for
an operator who can do nothing. So a wait waits out the transient error too (heartbeating, with
backoff); refusals still raise at once, and the activity's own timeout still bounds the whole
wait. Every wait heartbeats (``heartbeats.pause``) and notices cancellation.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from botocore.exceptions import ClientError
from temporalio import activity

from activities.aws_errors import is_transient
from activities.heartbeats import pause

T = TypeVar("T")
MAX_PAUSE_SECONDS = 60.0


@dataclass
class Backoff:
    """Pauses that double (with jitter) from ``first`` up to ``most``: what a caller waiting on
    a busy or throttled resource does between tries, so many waiters do not poll it in step."""

    first: float
    most: float = MAX_PAUSE_SECONDS
    _next: float = field(default=0.0, init=False)

    def wait(self, waiting_for: str) -> None:
        delay = self._next or max(self.first, 0.05)
        pause(delay * random.uniform(0.5, 1.5), waiting_for=waiting_for)
        self._next = min(delay * 2, self.most)


def patiently(call: Callable[[], T], pause_seconds: float, *, waiting_for: str) -> T:
    """``call()``, with transient AWS errors waited out instead of raised."""
    backoff = Backoff(pause_seconds)
    while True:
        try:
            return call()
        except ClientError as err:
            if not is_transient(err):
                raise
            activity.logger.info("%s: transient %s, waiting", waiting_for, err)
        backoff.wait(waiting_for)


def until(
    look: Callable[[], T], done: Callable[[T], bool], pause_seconds: float, *, waiting_for: str
) -> T:
    """Look (transient errors waited out) until ``done`` says the operation has ended; answer
    the last look. Between looks the activity heartbeats its last details (its resume point:
    ``heartbeats.beat`` it before waiting)."""
    while True:
        seen = patiently(look, pause_seconds, waiting_for=waiting_for)
        if done(seen):
            return seen
        pause(pause_seconds, waiting_for=waiting_for)
