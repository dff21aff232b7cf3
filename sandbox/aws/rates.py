"""Request rates: AWS throttles every API, so the sandbox does too, when told the rates.

AWS answers a caller that goes faster than an API allows with its throttling error
(Organizations' ``TooManyRequestsException``, Control Tower's ``ThrottlingException``...). Most
rates are not published (Organizations': awsdocs/aws-organizations-docs#39; Identity Center
publishes 20 per second for all its APIs together), so each is configured, as a token bucket per
API: ``rate`` calls a second, up to ``burst`` at once after a quiet spell. A key names one action
(``organizations:ListAccountsForParent``) or a whole service (``sso``, the APIs sharing one
bucket, as Identity Center's do). Nothing is throttled until a rate is set
(``POST /_sandbox/config {"rates": {...}}``): the tests' fault runs inject throttling of their
own, and benchmarks set the rates they are measured against.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

# Each service's throttling error, as AWS spells it (the code and the HTTP status).
THROTTLING: dict[str, tuple[str, int]] = {
    "organizations": ("TooManyRequestsException", 400),
    "controltower": ("ThrottlingException", 429),
    "cloudformation": ("Throttling", 400),
    "sts": ("Throttling", 400),
    "iam": ("Throttling", 400),
    "ssm": ("ThrottlingException", 400),
    "servicecatalog": ("ThrottlingException", 400),
    "sso": ("ThrottlingException", 400),
    "identitystore": ("ThrottlingException", 400),
    "account": ("TooManyRequestsException", 429),
    "budgets": ("ThrottlingException", 400),
    "ce": ("LimitExceededException", 400),
    "ec2": ("RequestLimitExceeded", 503),
}
DEFAULT_THROTTLING = ("ThrottlingException", 400)


@dataclass
class Bucket:
    rate: float
    burst: float
    tokens: float
    updated: float
    allowed: int = 0
    throttled: int = 0
    first: float | None = None  # the first and the last call allowed (a caller's busy span)
    last: float | None = None

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.allowed += 1
            self.first = now if self.first is None else self.first
            self.last = now
            return True
        self.throttled += 1
        return False


@dataclass
class RateLimits:
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def configure(self, rates: dict[str, Any]) -> None:
        """Replace the rates: ``{"service:Action": 10}`` or ``{"service": {"rate": 20,
        "burst": 40}}``; an empty mapping throttles nothing. A bucket starts full, its counts
        at zero."""
        now = time.monotonic()
        buckets = {}
        for key, spec in rates.items():
            rate = float(spec["rate"] if isinstance(spec, dict) else spec)
            default_burst = max(1.0, rate)
            burst = float(
                spec.get("burst", default_burst) if isinstance(spec, dict) else default_burst
            )
            if rate <= 0 or burst < 1:
                raise ValueError(f"{key}: a rate above 0 and a burst of at least 1")
            buckets[key] = Bucket(rate=rate, burst=burst, tokens=burst, updated=now)
        with self._lock:
            self.buckets = buckets

    def refusal(self, service: str, action: str) -> tuple[str, int, str] | None:
        """The throttling error (code, status, message) when this call exceeds its rate."""
        if not self.buckets:
            return None
        bucket = self.buckets.get(f"{service}:{action}") or self.buckets.get(service)
        if bucket is None:
            return None
        with self._lock:
            allowed = bucket.take(time.monotonic())
        if allowed:
            return None
        code, status = THROTTLING.get(service, DEFAULT_THROTTLING)
        return code, status, "Rate exceeded"

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                key: {
                    "rate": b.rate,
                    "burst": b.burst,
                    "allowed": b.allowed,
                    "throttled": b.throttled,
                    "span_seconds": round(b.last - b.first, 3) if b.first and b.last else 0.0,
                }
                for key, b in self.buckets.items()
            }
