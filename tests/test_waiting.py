"""The suite's waits fail saying what never happened, return what was read once it holds, and
let a read that raises fail at once rather than be asked again until the deadline."""

from __future__ import annotations

import itertools

import pytest

from tests.waiting import eventually, eventually_async, wait_until


def test_a_wait_returns_once_the_condition_holds_and_fails_past_its_deadline() -> None:
    counter = itertools.count()
    assert eventually(lambda: next(counter), lambda n: n >= 3, "three reads", 5, 0.001) == 3
    wait_until(lambda: next(counter) >= 6, "six reads", 5, 0.001)
    with pytest.raises(AssertionError, match=r"never reached: the impossible; last read: 7"):
        eventually(lambda: 7, lambda n: n > 7, "the impossible", 0.05, 0.01)
    with pytest.raises(AssertionError, match=r"never reached: never ready"):
        wait_until(lambda: False, "never ready", 0.05, 0.01)


def test_a_read_that_raises_fails_the_wait_at_once() -> None:
    reads = itertools.count()

    def broken() -> int:
        next(reads)
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        eventually(broken, lambda n: n > 0, "a read that works", 5, 0.001)
    assert next(reads) == 1  # asked once, not until the deadline


async def test_the_async_wait_awaits_each_read() -> None:
    counter = itertools.count()

    async def read() -> int:
        return next(counter)

    assert await eventually_async(lambda: read(), lambda n: n >= 2, "two reads", 5, 0.001) == 2
    with pytest.raises(AssertionError, match=r"never reached: more; last read: \d+"):
        await eventually_async(read, lambda n: n < 0, "more", 0.05, 0.01)
