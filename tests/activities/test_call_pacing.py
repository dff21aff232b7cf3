"""The worker paces its calls to an API's rate: each call takes the next free slot."""

from __future__ import annotations

import time

import pytest

from activities.call_pacing import CallPacer, _Slots


def test_calls_take_slots_one_interval_apart_after_a_burst_of_three_at_most() -> None:
    slots = _Slots(rate=2)
    # Three at once (the credit of two calls, at a slow rate), then one interval apart.
    got = [slots.reserve(100.0) for _ in range(5)]
    assert got == pytest.approx([100.0, 100.0, 100.0, 100.5, 101.0])
    # A caller back late for its slot (101.5) goes at once, and the credit lets the next one
    # too: the rate lost to a late thread is made up, never more than two calls' worth.
    assert slots.reserve(102.25) == pytest.approx(102.25)
    assert slots.reserve(102.25) == pytest.approx(102.25)
    assert slots.reserve(102.25) == pytest.approx(102.5)


def test_a_fast_rate_runs_ahead_by_half_a_seconds_worth_of_calls() -> None:
    slots = _Slots(rate=10)
    # Six at once (credit of five: AWS's bucket of a second's worth keeps the other half).
    got = [slots.reserve(100.0) for _ in range(8)]
    assert got == pytest.approx([100.0] * 6 + [100.1, 100.2])
    # A page of a chain back 0.8 s late catches up five calls' worth, not eight.
    late = 101.5
    assert [slots.reserve(late) for _ in range(7)] == pytest.approx([late] * 6 + [late + 0.1])


def test_an_operations_own_rate_wins_over_its_services_and_others_are_not_paced() -> None:
    pacer = CallPacer({"organizations": 1000, "organizations:ListParents": 0.001})
    assert pacer.wait("organizations", "ListAccountsForParent") == 0.0  # first call: no wait
    assert pacer.wait("controltower", "ListEnabledBaselines") == 0.0  # no rate: never paced
    assert [pacer.wait("organizations", "ListParents") for _ in range(3)] == [0.0] * 3
    # The fourth ListParents would wait its own (slow) rate's interval, not the service's.
    assert pacer._slots["organizations:ListParents"].next_free > time.monotonic() + 100
    assert pacer._slots["organizations"].next_free < time.monotonic() + 1


def test_the_first_calls_take_the_credit_however_long_the_machine_has_been_up() -> None:
    """The monotonic clock counts from boot: a machine up for ten seconds must not make the
    first calls of a slow rate wait for slots its credit reaches back before the clock began."""
    slots = _Slots(rate=0.001)
    assert [slots.reserve(10.0) for _ in range(3)] == pytest.approx([10.0] * 3)
    assert slots.reserve(10.0) == pytest.approx(1010.0)
