"""A fault plan: rules that make the sandbox refuse, fail or pause calls, so tests can reach every
failure branch of the engine over real HTTP.

A rule matches a service and action (``*`` for any), optionally a substring of the request
body, and optionally only calls signed with one access key (``caller``: a test's own client, so
nothing else running meanwhile takes its fault; errors only). It can answer an error
(``error`` + ``status``), make an asynchronous operation end FAILED (``failure_reason``), or
hold an operation in progress until released (``hold``), or keep a synchronous call from being
answered until released (``block``: the call is in flight in the caller, as a slow AWS answer
is). ``times`` bounds how often it fires;
``probability`` makes it random (seeded, so runs repeat).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


def release(items: Iterable[Any]) -> int:
    """Let every held operation go (anything with ``held`` and ``ready_at``): at once if its time
    has already come, else when it would have ended anyway."""
    now, released = time.time(), 0
    for item in items:
        if item.held:
            item.held, item.ready_at = False, min(item.ready_at, now)
            released += 1
    return released


@dataclass
class FaultRule:
    service: str
    action: str = "*"
    error: str | None = None
    status: int = 400
    message: str = "injected by the sandbox fault plan"
    failure_reason: str | None = None
    hold: bool = False
    block: bool = False
    match: str | None = None
    caller: str | None = None
    times: int | None = None
    probability: float = 1.0
    fired: int = 0

    def matches(self, service: str, action: str, body: str, caller: str | None = None) -> bool:
        return (
            self.service in ("*", service)
            and self.action in ("*", action)
            and (self.match is None or self.match in body)
            and (self.caller is None or self.caller == caller)
            and (self.times is None or self.fired < self.times)
        )


@dataclass
class FaultPlan:
    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 7
    calls: Counter[str] = field(default_factory=Counter)
    # access key id -> the actions it called: what a least-privilege policy is checked against
    actions_by_key: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self._released = threading.Condition()
        self._generation = 0
        self.blocked = 0  # calls waiting for a release now

    def block(self, timeout: float = 300.0) -> None:
        """Keep this call unanswered until the next release (at most ``timeout``)."""
        with self._released:
            self.blocked += 1
            generation = self._generation
            try:
                self._released.wait_for(lambda: self._generation != generation, timeout)
            finally:
                self.blocked -= 1

    def release_blocked(self) -> int:
        with self._released:
            count = self.blocked
            self._generation += 1
            self._released.notify_all()
            return count

    def add(self, **spec: Any) -> FaultRule:
        rule = FaultRule(**spec)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def record_call(self, service: str, action: str, access_key: str = "") -> None:
        with self._lock:
            self.calls[f"{service}:{action}"] += 1
            self.actions_by_key.setdefault(access_key, set()).add(f"{service}:{action}")

    def take(
        self, service: str, action: str, body: str, kind: str, caller: str | None = None
    ) -> FaultRule | None:
        """The first live rule of ``kind`` (error, failure_reason or hold) for this call."""
        with self._lock:
            for rule in self.rules:
                if getattr(rule, kind) in (None, False):
                    continue
                if not rule.matches(service, action, body, caller):
                    continue
                if self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                return rule
        return None

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rules": [asdict(r) for r in self.rules],
                "calls": dict(self.calls),
                "actions_by_key": {k: sorted(v) for k, v in self.actions_by_key.items()},
            }
