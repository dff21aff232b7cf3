"""Heartbeats that keep an activity alive through long runs of calls, without losing its place.

An activity heartbeats the id of what it waits on (``beat``), so a retry resumes it. Between
those, every AWS and HTTP call sends a keep-alive: a step making many slow calls under
throttling is not mistaken for a dead worker. The keep-alive re-sends the last details, so it
never erases the resume point.
"""

from __future__ import annotations

import threading
from typing import Any

from temporalio import activity

_last: dict[bytes, tuple[Any, ...]] = {}
_lock = threading.Lock()


def beat(*details: Any) -> None:
    """Heartbeat with details to resume from (and remember them for keep-alives)."""
    with _lock:
        _last[activity.info().task_token] = details
    activity.heartbeat(*details)


def keepalive(**_: Any) -> None:
    """Heartbeat with the last details; harmless outside an activity (botocore event hook)."""
    if not activity.in_activity():
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
