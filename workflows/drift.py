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
    from common.landing_zone import StackSetBaseline

FIRST_PAGE = 100
# Accounts of surveyed OUs cost a look-up each once their OU is read: a batch of them is large,
# so that the many batches waiting on a survey do not then file through the lanes one by one.
SURVEYED_BATCH = 500
SURVEY_LANES = 8
_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=60))


@workflow.defn(name=drift.WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class DriftCheck:
    def __init__(self) -> None:
        self._result = DriftCheckResult()
        self._named = False
        self._detections: dict[str, asyncio.Task[StackSetDetection]] = {}
        self._in_ou: dict[str, int] = {}  # targets listed so far, by OU id
        self._control_tower_ous: set[str] = set()

    @workflow.run
    async def run(self, inp: DriftCheckInput) -> DriftCheckResult:
        """The accounts are inspected while visibility is still being listed, page by page:
        at 10,000 accounts the listing alone is seconds in which AWS's rates go unused."""
        self._result.listed_at = workflow.now()
        self._named = bool(inp.account_ids)
        checked_at = self._result.checked_at = workflow.now()
        check_id = workflow.info().workflow_id
        lanes = asyncio.Semaphore(inp.parallel_batches)
        # Batches answered by surveys wait on them, then finish at once: lanes of their own, so
        # they neither hold up the accounts asked of one by one nor file through their lanes.
        survey_lanes = asyncio.Semaphore(SURVEY_LANES)
        batches: list[asyncio.Task[None]] = []
        # A short first page: the OUs' surveys start as soon as it is in.
        page = DriftTargetsInput(account_ids=inp.account_ids, page_size=FIRST_PAGE)
        while True:
            found = await workflow.execute_activity_method(
                DriftTargetActivities.drift_targets,
                page,
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=_RETRY,
            )
            self._result.unchecked.extend(found.busy)
            targets = found.targets
            for target in targets:
                if ou := target.organizational_unit_id:
                    self._in_ou[ou] = self._in_ou.get(ou, 0) + 1
                    if target.control_tower:
                        self._control_tower_ous.add(ou)
            surveys = self._surveys()
            for batch, cheap in _batches(targets, surveys, inp.batch_size):
                waits = [self._detection(b, inp) for t in batch for b in t.baselines]
                batches.append(
                    asyncio.create_task(
                        self._batch(
                            batch,
                            survey_lanes if cheap else lanes,
                            check_id,
                            checked_at,
                            surveys,
                            waits,
                        )
                    )
                )
            if not found.next_page_token:
                break
            page = DriftTargetsInput(page_token=found.next_page_token)
        await asyncio.gather(*batches)
        for name in sorted(self._detections):
            self._result.detections.append(self._detections[name].result())
        self._metrics()
        return self._result

    def _surveys(self) -> dict[str, bool]:
        """The OUs to read whole so far (``drift.SURVEY_THRESHOLD``), each with whether to read
        its Control Tower enrollments too. Every batch starts every one of them, so each API's
        rate is used from the start rather than when a batch of that OU comes up."""
        return {
            ou: ou in self._control_tower_ous
            for ou, n in sorted(self._in_ou.items())
            if n >= drift.SURVEY_THRESHOLD
        }

    def _detection(
        self, baseline: StackSetBaseline, inp: DriftCheckInput
    ) -> asyncio.Task[StackSetDetection] | None:
        """DetectStackSetDrift on a baseline StackSet, once per check, started when the first
        account with it is listed; the accounts with it are inspected once it has ended."""
        if not inp.detects:
            return None
        name = baseline.stack_set_name
        if name not in self._detections:
            self._detections[name] = asyncio.create_task(self._detect(baseline, inp))
        return self._detections[name]

    async def _detect(self, baseline: StackSetBaseline, inp: DriftCheckInput) -> StackSetDetection:
        try:
            return await workflow.execute_activity_method(
                DriftActivities.detect_stack_set_drift,
                DetectDriftInput(
                    check_id=workflow.info().workflow_id,
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
        except ActivityError as err:
            return StackSetDetection(
                stack_set=baseline.stack_set_name, status="error", reason=str(err)
            )

    async def _batch(
        self,
        batch: list[DriftTarget],
        lanes: asyncio.Semaphore,
        check_id: str,
        checked_at: datetime,
        surveys: dict[str, bool],
        detections: list[asyncio.Task[StackSetDetection] | None],
    ) -> None:
        for detection in detections:
            if detection is not None:
                await detection  # its accounts' stack instances say what it found
        async with lanes:
            try:
                inspected = await workflow.execute_activity_method(
                    DriftActivities.inspect_accounts,
                    InspectInput(
                        targets=batch,
                        survey_id=f"{check_id}/{workflow.info().run_id}",
                        surveys=surveys,
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


def _batches(
    targets: list[DriftTarget], surveys: dict[str, bool], batch_size: int
) -> list[tuple[list[DriftTarget], bool]]:
    """The targets in batches, each with whether its surveys answer every look: those in large
    ones, the others (a few calls each) in ``batch_size``."""
    cheap: list[DriftTarget] = []
    costly: list[DriftTarget] = []
    for t in targets:
        surveyed = t.organizational_unit_id in surveys and not _own_calls(t)
        (cheap if surveyed else costly).append(t)
    return [
        *((cheap[i : i + SURVEYED_BATCH], True) for i in range(0, len(cheap), SURVEYED_BATCH)),
        *((costly[i : i + batch_size], False) for i in range(0, len(costly), batch_size)),
    ]


def _own_calls(target: DriftTarget) -> bool:
    """Whether looking at the account takes calls of its own (its stack instances, its
    Workload Security connector, its registration, its settings), survey or not."""
    settings = target.settings
    return bool(
        target.baselines
        or target.workload_security_connector_id is not None
        or target.billing_registration_id is not None
        or settings.budget is not None
        or settings.alternate_contacts
        or settings.account_alias is not None
        or settings.opt_in_regions
    )
