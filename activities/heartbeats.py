"""Heartbeats that keep an activity alive through long runs of calls, without losing its place.

An activity heartbeats the id of what it waits on (``beat``), so a retry resumes it. Between
those, every AWS and HTTP call sends a keep-alive: a step making many slow calls under
throttling is not mistaken for a dead worker. The keep-alive re-sends the last details, so it
never erases the resume point.

Every activity is defined with ``no_thread_cancel_exception=True`` and notices cancellation
itself, at its waits (``pause``, ``activity.wait_for_cancelled_sync``). Otherwise the SDK raises
CancelledError asynchronously inside the activity's thread, wherever it happens to be: once it
landed while the thread held the logging handler's lock, the lock was never released, and the
worker's event loop blocked at its next log line (the whole worker hung, in the 100-request
fault run).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from temporalio import activity
from temporalio.exceptions import CancelledError

SLICE_SECONDS = 5.0  # a long wait heartbeats at least this often (more often for short timeouts)

_last: dict[bytes, tuple[Any, ...]] = {}
_lock = threading.Lock()


def _heartbeats() -> bool:
    """Whether this code runs in an activity that heartbeats at all.

    A local activity has no heartbeats (the server never hears of it; it resumes by the
    workflow's retry, not by details): the worker's core refuses each one as an unknown
    activity and logs it, which was some 1,400 warnings per test run from the notices'
    last words alone.
    """
    return activity.in_activity() and not activity.info().is_local


def beat(*details: Any) -> None:
    """Heartbeat with details to resume from (and remember them for keep-alives)."""
    if not _heartbeats():
        return
    with _lock:
        _last[activity.info().task_token] = details
    activity.heartbeat(*details)


def keepalive(**_: Any) -> None:
    """Heartbeat with the last details; harmless outside an activity (botocore event hook)."""
    if not _heartbeats():
        return
    token = activity.info().task_token
    with _lock:
        details = _last.get(token)
    if details is None:
        details = tuple(activity.info().heartbeat_details)  # a resumed attempt's place
    activity.heartbeat(*details)


def forget() -> None:
    """Called when an activity ends."""
    if not activity.in_activity():
        return
    with _lock:
        _last.pop(activity.info().task_token, None)


def pause(seconds: float, *, waiting_for: str) -> None:
    """Wait, heartbeating every few seconds; CancelledError once the activity is cancelled.

    A single long wait would outlast the heartbeat timeout and get a healthy activity retried
    elsewhere (its cancellation then interrupts the wait).
    """
    deadline = time.monotonic() + seconds
    slice_seconds = _slice_seconds()
    while True:
        keepalive()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        activity.wait_for_cancelled_sync(min(left, slice_seconds))
        if activity.is_cancelled():
            raise CancelledError(f"cancelled while waiting for {waiting_for}")


def _slice_seconds() -> float:
    """A third of the heartbeat timeout at most: a slice as long as the timeout itself let a
    healthy wait time out whenever the worker was a moment late (seen with a 5 s timeout on a
    loaded machine, where the slice was 5 s too)."""
    timeout = activity.info().heartbeat_timeout
    if timeout is None:
        return SLICE_SECONDS
    return max(0.1, min(SLICE_SECONDS, timeout.total_seconds() / 3))
