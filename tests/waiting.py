"""How the suite waits: for a condition, with a deadline, never for a fixed time.

Built on tenacity's retrying (a stop after the deadline, a fixed pause between reads, a retry
while what was read does not hold), so no test writes a poll loop or a sleep of its own; the
layout test holds tests/ to that. A read that raises fails the wait at once: only a result that
does not hold yet is asked again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryError,
    Retrying,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

T = TypeVar("T")


def wait_until(
    ready: Callable[[], bool], what: str, timeout: float = 60.0, interval: float = 0.1
) -> None:
    """Poll ``ready`` until it holds; past ``timeout``, fail saying what never happened."""
    try:
        Retrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(interval),
            retry=retry_if_result(lambda held: not held),
        )(ready)
    except RetryError:
        raise AssertionError(f"never reached: {what}") from None


def eventually(
    read: Callable[[], T],
    holds: Callable[[T], bool],
    what: str,
    timeout: float = 60.0,
    interval: float = 0.2,
) -> T:
    """Read until what was read ``holds`` and return it; past ``timeout``, fail saying what
    never happened and what was read last. For waits whose answer the test goes on with (a
    request's state, a list that must come to hold an item)."""
    try:
        return Retrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(interval),
            retry=retry_if_result(lambda value: not holds(value)),
        )(read)
    except RetryError as err:
        last = err.last_attempt.result()
        raise AssertionError(f"never reached: {what}; last read: {str(last)[:600]}") from None


async def eventually_async(
    read: Callable[[], Awaitable[T]],
    holds: Callable[[T], bool],
    what: str,
    within: float = 60.0,
    interval: float = 0.2,
) -> T:
    """``eventually`` for a test that reads Temporal with its async client (on the test's own
    event loop, which a blocking wait would stall); ``within`` seconds."""

    async def attempt() -> T:  # tenacity awaits only a coroutine function, not a lambda's coroutine
        return await read()

    try:
        value: T = await AsyncRetrying(
            stop=stop_after_delay(within),
            wait=wait_fixed(interval),
            retry=retry_if_result(lambda value: not holds(value)),
        )(attempt)
    except RetryError as err:
        last = err.last_attempt.result()
        raise AssertionError(f"never reached: {what}; last read: {str(last)[:600]}") from None
    return value
