"""Hold back the steps whose organization-wide prerequisites failed the doctor's checks.

The worker runs ``vend doctor``'s checks at start and logs what failed. While a check that gates
an activity fails, that activity does not run: it ends at once with ``PrerequisiteFailed``,
carrying the check's finding and fix, and the request's step waits and shows why instead of
spending its attempts and paging an operator, request after request. The failed checks are run
again, at most every ``recheck_seconds``, when an activity they gate comes up; once they pass,
the steps go on by themselves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from activities.preflight import Preflight
from common.preflight import PREREQUISITE_FAILED, CheckResult, CheckStatus, PreflightReport

log = logging.getLogger("vending.worker.doctor")


class PrerequisiteGate:
    def __init__(self, preflight: Preflight, recheck_seconds: float = 30.0) -> None:
        self.preflight = preflight
        self.recheck_seconds = recheck_seconds
        self.report: PreflightReport | None = None
        self._checked_at = 0.0
        self._lock = asyncio.Lock()

    async def check_all(self) -> PreflightReport:
        """At start: every check, each failure logged with its fix."""
        report = await self.preflight.run()
        self.report, self._checked_at = report, time.monotonic()
        for check in report.checks:
            if check.status == CheckStatus.failed:
                held = f" (holds back {', '.join(check.gates)})" if check.gates else ""
                log.error(
                    "doctor: %s FAILED: %s; fix: %s%s", check.name, check.found, check.fix, held
                )
            elif check.status == CheckStatus.warning:
                log.warning("doctor: %s: %s; fix: %s", check.name, check.found, check.fix)
        log.info("doctor: %d checks, %d failed", len(report.checks), len(report.failed()))
        return report

    async def blocking(self, activity_type: str) -> list[CheckResult]:
        if self.report is None:
            return []  # still checking at start: let the work run
        if not self.report.blocking(activity_type):
            return []
        async with self._lock:
            assert self.report is not None
            failing = self.report.blocking(activity_type)
            if failing and time.monotonic() - self._checked_at >= self.recheck_seconds:
                names = {c.name for c in self.report.failed()}
                again = await self.preflight.run(only=names)
                fresh = {c.name: c for c in again.checks}
                self.report = self.report.model_copy(
                    update={"checks": [fresh.get(c.name, c) for c in self.report.checks]}
                )
                self._checked_at = time.monotonic()
                for check in again.checks:
                    if check.status != CheckStatus.failed:
                        log.info("doctor: %s passes now", check.name)
                failing = self.report.blocking(activity_type)
            return failing


class _Gated(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, gate: PrerequisiteGate) -> None:
        super().__init__(next)
        self._gate = gate

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        failing = await self._gate.blocking(activity.info().activity_type)
        if failing:
            first = failing[0]
            raise ApplicationError(
                f"{first.title}: no ({first.found}). Fix: {first.fix}",
                {"checks": [c.name for c in failing]},
                type=PREREQUISITE_FAILED,
                non_retryable=True,
            )
        return await self.next.execute_activity(input)


class PrerequisiteInterceptor(Interceptor):
    def __init__(self, gate: PrerequisiteGate) -> None:
        self.gate = gate

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Gated(next, self.gate)
