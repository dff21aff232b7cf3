"""Make every activity failure say which attempt it was.

Temporal does not record individual activity retries in history, so without this a step that
failed on its tenth attempt would look like a first failure to the operator. Wrapping here keeps
the activities free of bookkeeping (and it drops an ended activity's heartbeat details).
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from activities import heartbeats


class _ReportAttempt(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self._run(input)
        finally:
            heartbeats.forget()

    async def _run(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except CancelledError:
            raise
        except ApplicationError as err:
            if err.details:
                raise
            raise ApplicationError(
                err.message,
                {"attempt": activity.info().attempt},
                type=err.type,
                non_retryable=err.non_retryable,
                next_retry_delay=err.next_retry_delay,
            ) from err
        except Exception as err:
            raise ApplicationError(
                str(err), {"attempt": activity.info().attempt}, type=type(err).__name__
            ) from err


class AttemptReportingInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ReportAttempt(next)
