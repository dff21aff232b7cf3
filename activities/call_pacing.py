"""Calls to AWS paced to the rates AWS allows, before AWS has to refuse them.

A drift check of thousands of accounts is made of reads that AWS throttles (Organizations and
Control Tower publish no rates; their callers meet ``TooManyRequestsException`` when they go
too fast). Met, a throttle costs botocore's backoff, a second or more, and its retry quota; so
the worker paces its own calls instead: each call takes the next free slot of its API's rate
(``VEND_AWS__CALL_RATES``, per worker process: with several workers, give each its share) and
waits for it, heartbeating. It runs ahead by half a second's worth of calls at most (two at
the least): a caller back late for its slot (a busy worker's thread wakes late, a page of a
chain of pages takes longer than the interval) catches up rather than losing it, and AWS's
token bucket, holding a second's worth, keeps the other half for the network's jitter. No rate
is set by default: AWS's are not published, and the throttles botocore waits out remain the
last word.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity

from activities.heartbeats import pause

CREDIT_SECONDS = 0.5  # a late caller may catch up by this much of the rate's calls
MIN_CREDIT = 2.0  # calls, at a slow rate


@dataclass
class _Slots:
    rate: float
    # No call yet: the first may take the whole credit. (Was 0.0, a time on the monotonic
    # clock, which counts from boot: on a machine up for less than a slow rate's credit, the
    # first calls waited for a slot "in the future" and a unit test slept past its timeout.)
    next_free: float = float("-inf")

    def reserve(self, now: float) -> float:
        """When this call may go: one interval after the call before it, or now if that has
        passed (by at most the credit's worth of calls going at once)."""
        credit = max(MIN_CREDIT, CREDIT_SECONDS * self.rate)
        slot = max(self.next_free, now - credit / self.rate)
        self.next_free = slot + 1 / self.rate
        return max(slot, now)


@dataclass
class CallPacer:
    """``rates``: ``{"organizations": 10, "controltower:ListEnabledBaselines": 5}`` (a service,
    or one of its operations; the operation's own rate wins)."""

    rates: dict[str, float]
    _slots: dict[str, _Slots] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._slots = {key: _Slots(rate) for key, rate in self.rates.items() if rate > 0}

    def wait(self, service: str, operation: str) -> float:
        """Wait for this call's slot; the seconds waited."""
        slots = self._slots.get(f"{service}:{operation}") or self._slots.get(service)
        if slots is None:
            return 0.0
        now = time.monotonic()
        with self._lock:
            at = slots.reserve(now)
        delay = at - now
        if delay <= 0:
            return 0.0
        if activity.in_activity():
            pause(delay, waiting_for=f"the {service} rate's next free call")
        else:
            time.sleep(delay)
        return delay

    def before_send(self, event_name: str = "", **_: Any) -> None:
        """botocore's ``before-send.<service>.<Operation>`` event: every attempt, botocore's
        own retries included, waits for its slot."""
        parts = [*event_name.split(".", 2), "", ""]
        self.wait(parts[1], parts[2])

    def install(self, client: Any) -> Any:
        if self._slots:
            client.meta.events.register("before-send", self.before_send)
        return client
