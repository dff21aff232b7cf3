"""A few seconds' memory of an expensive answer, computed once however many ask at once.

Previews ask the coordinators for their queues, and the landing zone's health runs a preflight
workflow on a worker: answers that change slowly and cost a round trip (or a workflow) each.
Many callers at once get one computation; a failed one is not kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedAnswer(Generic[T]):
    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._value: T | None = None
        self._at = float("-inf")
        self._lock = asyncio.Lock()
        self.computed = 0  # how many times the answer was really computed (for tests/metrics)

    def _fresh(self) -> bool:
        return self._value is not None and time.monotonic() - self._at < self._ttl

    async def get(self, compute: Callable[[], Awaitable[T]]) -> T:
        if self._fresh():
            assert self._value is not None
            return self._value
        async with self._lock:  # the others wait for the one computing
            if self._fresh():
                assert self._value is not None
                return self._value
            value = await compute()
            self.computed += 1
            self._value, self._at = value, time.monotonic()
            return value
