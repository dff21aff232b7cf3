"""Preflight: run ``vend doctor``'s checks on a worker, for the API (which holds no AWS
credentials nor vendor keys, and talks to Temporal only). One short workflow per ask."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from activities.preflight import Preflight as Checks
    from common import preflight
    from common.preflight import PreflightReport


@workflow.defn(name=preflight.WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class Preflight:
    @workflow.run
    async def run(self) -> PreflightReport:
        return await workflow.execute_activity_method(
            Checks.run_preflight,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
