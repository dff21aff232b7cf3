"""How a step's activity runs (timeouts, heartbeats, retries) and how its failure is counted.

Shared by the request workflow and the coordinator, which runs Account Factory provisioning on a
request's behalf and must run it exactly as the request's own step would.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from common.models import StepPolicy

QUICK_SECONDS = 60.0


def activity_options(policy: StepPolicy, *, quick: bool = False) -> dict[str, Any]:
    """Keyword arguments for ``execute_activity_method`` (``quick``: a short lookup, which
    neither heartbeats nor gets the step's whole budget)."""
    return {
        "start_to_close_timeout": timedelta(
            seconds=QUICK_SECONDS if quick else policy.start_to_close_seconds
        ),
        "heartbeat_timeout": None if quick else timedelta(seconds=policy.heartbeat_timeout_seconds),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=policy.retry_initial_seconds),
            maximum_interval=timedelta(seconds=policy.retry_maximum_seconds),
            maximum_attempts=policy.maximum_attempts,
        ),
    }


def attempts_of(err: ActivityError | ApplicationError) -> int:
    """The attempt number the failing activity reported (see ``activities.interceptors``)."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError) and cause.details:
        detail = cause.details[0]
        if isinstance(detail, dict) and isinstance(detail.get("attempt"), int):
            return int(detail["attempt"])
    return 1
