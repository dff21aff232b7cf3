"""The worker paces its calls to an API's rate: each call takes the next free slot."""

from __future__ import annotations

import pytest

from activities.call_pacing import CallPacer, _Slots


def test_calls_take_slots_one_interval_apart_and_never_burst() -> None:
    slots = _Slots(rate=10)
    assert [slots.reserve(100.0) for _ in range(3)] == pytest.approx([100.0, 100.1, 100.2])
    # After a quiet spell a call goes at once, and the next one interval after it (no burst:
    # AWS's bucket stays full, and absorbs the network's jitter).
    assert slots.reserve(200.0) == 200.0
    assert slots.reserve(200.0) == pytest.approx(200.1)


def test_an_operations_own_rate_wins_over_its_services_and_others_are_not_paced() -> None:
    pacer = CallPacer({"organizations": 1000, "organizations:ListParents": 0.001})
    assert pacer.wait("organizations", "ListAccountsForParent") == 0.0  # first call: no wait
    assert pacer.wait("controltower", "ListEnabledBaselines") == 0.0  # no rate: never paced
    pacer.wait("organizations", "ListParents")
    assert (
        pacer._slots["organizations:ListParents"].next_free
        > pacer._slots["organizations"].next_free + 100
    )  # the second ListParents would wait its own (slow) rate's interval
