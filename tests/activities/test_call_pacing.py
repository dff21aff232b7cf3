"""The worker paces its calls to an API's rate: each call takes the next free slot."""

from __future__ import annotations

import time

import pytest

from activities.call_pacing import CallPacer, _Slots


def test_calls_take_slots_one_interval_apart_after_a_burst_of_three_at_most() -> None:
    slots = _Slots(rate=10)
    # Three at once (the caught-up credit of two), then one interval apart.
    got = [slots.reserve(100.0) for _ in range(5)]
    assert got == pytest.approx([100.0, 100.0, 100.0, 100.1, 100.2])
    # A caller back late for its slot (100.3) goes at once, and the credit lets the next one
    # too: the rate lost to a late thread is made up, never more than two calls' worth.
    assert slots.reserve(100.45) == pytest.approx(100.45)
    assert slots.reserve(100.45) == pytest.approx(100.45)
    assert slots.reserve(100.45) == pytest.approx(100.5)


def test_an_operations_own_rate_wins_over_its_services_and_others_are_not_paced() -> None:
    pacer = CallPacer({"organizations": 1000, "organizations:ListParents": 0.001})
    assert pacer.wait("organizations", "ListAccountsForParent") == 0.0  # first call: no wait
    assert pacer.wait("controltower", "ListEnabledBaselines") == 0.0  # no rate: never paced
    assert [pacer.wait("organizations", "ListParents") for _ in range(3)] == [0.0] * 3
    # The fourth ListParents would wait its own (slow) rate's interval, not the service's.
    assert pacer._slots["organizations:ListParents"].next_free > time.monotonic() + 100
    assert pacer._slots["organizations"].next_free < time.monotonic() + 1
