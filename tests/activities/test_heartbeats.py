"""A long wait inside an activity heartbeats often enough for the activity's own timeout."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.testing import ActivityEnvironment

from activities.heartbeats import pause


def test_a_wait_heartbeats_several_times_within_a_short_heartbeat_timeout() -> None:
    """With a 0.6 s heartbeat timeout, a 1 s wait heartbeats at least every 0.2 s; a slice as
    long as the production default (5 s) would have let the activity time out mid-wait."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=timedelta(seconds=0.6))
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)

    @activity.defn
    def wait() -> None:
        pause(1.0, waiting_for="nothing in particular")

    env.run(wait)
    # One before each slice: at least three for a wait several slices long, however slowly the
    # machine runs (a slow slice only makes fewer, longer slices; two would mean one 1 s slice).
    assert len(beats) >= 3, beats
