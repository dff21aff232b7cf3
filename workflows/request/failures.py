"""What a failed activity says to the person who has to act on it: AWS's (or the vendor's) own
error type and message, not Temporal's wrapping of them."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    from common.models import StepError


def error_of(err: ActivityError | ApplicationError) -> StepError:
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError):
        return StepError(type=cause.type or "ApplicationError", message=cause.message)
    if isinstance(cause, TemporalTimeoutError):
        return StepError(
            type=f"Timeout.{cause.type.name if cause.type else 'UNKNOWN'}", message=str(cause)
        )
    return StepError(
        type=type(cause).__name__ if cause else "ActivityError", message=str(cause or err)
    )
