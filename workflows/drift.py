"""DriftCheck: look at every managed account, and tell each what was found.

A Temporal Schedule starts it (daily by default, ``VEND_DRIFT__INTERVAL_SECONDS``); an operator
can start one at once (``POST /v1/drift-checks``). The accounts are inspected in batches, a few
batches at a time, so a thousand accounts cost a few dozen activities, not a thousand; each
account's workflow gets the findings (an empty list clears what was put back) and is the one to
notify, once per new drift, since only it knows what it had already reported.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.drift import DriftActivities, DriftTargetActivities
    from common import account_contract, drift
    from common.drift import (
        AccountDrift,
        DetectDriftInput,
        DriftCheckInput,
        DriftCheckResult,
        DriftReport,
        DriftTarget,
        DriftTargetsInput,
        InspectInput,
        StackSetDetection,
    )

_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=60))


@workflow.defn(name=drift.WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class DriftCheck:
    def __init__(self) -> None:
        self._result = DriftCheckResult()
        self._named = False

    @workflow.run
    async def run(self, inp: DriftCheckInput) -> DriftCheckResult:
        self._result.listed_at = workflow.now()
        targets = await self._targets(inp)
        if inp.detects:
            await self._detect(targets, inp)
        batches = [targets[i : i + inp.batch_size] for i in range(0, len(targets), inp.batch_size)]
        lanes = asyncio.Semaphore(inp.parallel_batches)
        checked_at = self._result.checked_at = workflow.now()
        check_id = workflow.info().workflow_id
        self._named = bool(inp.account_ids)
        surveyed = drift.survey_ous(targets)
        await asyncio.gather(
            *(self._batch(b, lanes, check_id, checked_at, surveyed) for b in batches)
        )
        self._metrics()
        return self._result

    async def _targets(self, inp: DriftCheckInput) -> list[DriftTarget]:
        """Every account to check, a page of visibility at a time."""
        targets: list[DriftTarget] = []
        page = DriftTargetsInput(account_ids=inp.account_ids)
        while True:
            found = await workflow.execute_activity_method(
                DriftTargetActivities.drift_targets,
                page,
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=_RETRY,
            )
            self._result.unchecked.extend(found.busy)
            targets.extend(found.targets)
            if not found.next_page_token:
                return targets
            page = DriftTargetsInput(page_token=found.next_page_token)

    async def _detect(self, targets: list[DriftTarget], inp: DriftCheckInput) -> None:
        """DetectStackSetDrift on every baseline StackSet the accounts have, all at once (each is
        its own StackSet), before the accounts are looked at."""
        baselines = {b.stack_set_name: b for t in targets for b in t.baselines}
        check_id = workflow.info().workflow_id
        detections = await asyncio.gather(
            *(
                workflow.execute_activity_method(
                    DriftActivities.detect_stack_set_drift,
                    DetectDriftInput(
                        check_id=check_id,
                        baseline=baseline,
                        busy_wait_seconds=inp.detection_busy_wait_seconds,
                        # Asked for by name: a fresh look. Else a detection that just ended
                        # (another check's) is shared rather than queued again.
                        fresh_seconds=0.0 if inp.detect_stack_set_drift else 300.0,
                    ),
                    start_to_close_timeout=timedelta(
                        seconds=inp.detection_busy_wait_seconds + 4 * 3600
                    ),
                    heartbeat_timeout=timedelta(minutes=2),
                    retry_policy=_RETRY,
                )
                for _, baseline in sorted(baselines.items())
            ),
            return_exceptions=True,
        )
        for (name, _), detection in zip(sorted(baselines.items()), detections, strict=True):
            if isinstance(detection, BaseException):
                if not isinstance(detection, ActivityError):
                    raise detection
                detection = StackSetDetection(stack_set=name, status="error", reason=str(detection))
            self._result.detections.append(detection)

    async def _batch(
        self,
        batch: list[DriftTarget],
        lanes: asyncio.Semaphore,
        check_id: str,
        checked_at: datetime,
        surveyed: list[str],
    ) -> None:
        async with lanes:
            try:
                ous = {t.organizational_unit_id for t in batch}
                inspected = await workflow.execute_activity_method(
                    DriftActivities.inspect_accounts,
                    InspectInput(
                        targets=batch,
                        survey_id=f"{check_id}/{workflow.info().run_id}",
                        survey_ous=[ou for ou in surveyed if ou in ous],
                    ),
                    start_to_close_timeout=timedelta(minutes=30),
                    heartbeat_timeout=timedelta(minutes=2),
                    retry_policy=_RETRY,
                )
            except ActivityError:
                # Nothing known about these accounts this time: their records keep what the last
                # check found, rather than being told they are clean.
                self._result.unchecked.extend(t.account_id for t in batch)
                return
        recorded = {t.account_id: sorted(t.recorded) for t in batch}
        for account in inspected.accounts:
            await self._report(account, recorded.get(account.account_id), check_id, checked_at)

    async def _report(
        self,
        account: AccountDrift,
        recorded: list[str] | None,
        check_id: str,
        checked_at: datetime,
    ) -> None:
        """Tell the account's workflow what was found: every named account (its record shows
        when it was checked), and, in a check of every account, those whose drift changed. At
        fleet scale the reports are the check's own cost (a signal and a workflow task each);
        the unchanged ones' check time is the check's (``DriftCheckResult.checked_at``)."""
        if account.error is not None:
            self._result.unchecked.append(account.account_id)
            return
        found = sorted(drift.fingerprint(f) for f in account.findings)
        if self._named or found != recorded:
            report = DriftReport(
                check_id=check_id, checked_at=checked_at, findings=account.findings
            )
            try:
                await workflow.get_external_workflow_handle(
                    account_contract.account_workflow_id(account.account_id)
                ).signal(account_contract.DRIFT_CHECKED, report)
            except FailureError:  # closed since it was listed: nothing left to tell
                self._result.unchecked.append(account.account_id)
                return
            self._result.reported += 1
        self._result.checked += 1
        if account.findings:
            self._result.drifted += 1
        for kind in sorted({f.kind for f in account.findings}):
            self._result.by_kind[kind] = self._result.by_kind.get(kind, 0) + 1

    def _metrics(self) -> None:
        """Accounts drifted, per kind, as of this check (a gauge: the next check replaces it)."""
        gauge = workflow.metric_meter().create_gauge(
            "vend_drifted_accounts", "Managed accounts with drift of this kind at the last check"
        )
        for kind in drift.REPAIR_STEPS:
            gauge.set(self._result.by_kind.get(kind, 0), {"kind": kind})

    @workflow.query(name="get_drift_check")
    def get_result(self) -> DriftCheckResult:
        return self._result
