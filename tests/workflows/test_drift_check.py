"""The drift check, as a specification: every managed account looked at in batches, a few at
a time; each account's workflow told what was found (an empty report clears a drift put back);
accounts in a change, those the check could not look at and those closed meanwhile counted as
unchecked, never as clean."""

from __future__ import annotations

import uuid

from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from common import account_contract
from common.drift import (
    AccountDrift,
    DetectDriftInput,
    DriftCheckInput,
    DriftCheckResult,
    DriftTarget,
    DriftTargets,
    DriftTargetsInput,
    InspectInput,
    InspectResult,
    StackSetDetection,
    fingerprint,
)
from common.landing_zone import StackSetBaseline
from common.models import DriftFinding
from tests.workflows.harness import QUEUE, worker
from tests.workflows.listeners import SignalListener, heard
from workflows.drift import DriftCheck

BASELINE = StackSetBaseline(stack_set_name="vend-audit-role", regions=["us-east-1"])
MOVED = DriftFinding(what="organizational_unit", expected="Workloads/Prod", found="Sandbox")


class Fleet:
    def __init__(self, accounts: list[str]) -> None:
        self.accounts = accounts
        self.batches: list[list[str]] = []
        self.detected: list[str] = []

    def activities(self) -> list[object]:
        @activity.defn(name="drift_targets")
        async def drift_targets(inp: DriftTargetsInput) -> DriftTargets:
            # The first and the fifth accounts' records say they were moved (an earlier check).
            was_moved = {self.accounts[0], self.accounts[-1]}
            targets = [
                DriftTarget(
                    account_id=a,
                    organizational_unit="Workloads/Prod",
                    baselines=[BASELINE],
                    recorded=[fingerprint(MOVED)] if a in was_moved else [],
                )
                for a in self.accounts
            ]
            return DriftTargets(targets=targets, busy=["300000000099"])

        @activity.defn(name="detect_stack_set_drift")
        async def detect_stack_set_drift(inp: DetectDriftInput) -> StackSetDetection:
            self.detected.append(inp.baseline.stack_set_name)
            return StackSetDetection(stack_set=inp.baseline.stack_set_name, status="SUCCEEDED")

        @activity.defn(name="inspect_accounts")
        async def inspect_accounts(inp: InspectInput) -> InspectResult:
            self.batches.append([t.account_id for t in inp.targets])
            out = []
            for t in inp.targets:
                if t.account_id.endswith("2"):
                    out.append(AccountDrift(account_id=t.account_id, findings=[MOVED]))
                elif t.account_id.endswith("3"):
                    out.append(AccountDrift(account_id=t.account_id, error="AccessDenied"))
                else:
                    out.append(AccountDrift(account_id=t.account_id))
            return InspectResult(accounts=out)

        return [drift_targets, detect_stack_set_drift, inspect_accounts]


async def test_every_account_is_looked_at_in_batches_and_told_what_was_found(
    time_skipping: WorkflowEnvironment,
) -> None:
    env, base = time_skipping, 300000000000 + uuid.uuid4().int % 10_000 * 10
    accounts = [str(base + i) for i in range(1, 6)]  # ...1 to ...5
    fleet = Fleet(accounts)
    async with worker(env, [DriftCheck, SignalListener], fleet.activities()):
        listening = {
            a: await env.client.start_workflow(
                SignalListener.run, id=account_contract.account_workflow_id(a), task_queue=QUEUE
            )
            for a in accounts[:4]  # the fifth account's workflow has closed since it was listed
        }
        result: DriftCheckResult = await env.client.execute_workflow(
            DriftCheck.run,
            DriftCheckInput(batch_size=2, parallel_batches=2),
            id=f"drift-check-{uuid.uuid4()}",
            task_queue=QUEUE,
        )
        assert fleet.detected == ["vend-audit-role"]  # a check of every account detects first
        assert sorted(map(len, fleet.batches)) == [1, 2, 2]
        # Told: what changed (the first put back, the second moved). Not told: the fourth,
        # clean as its record says (a check of every account reports changes only).
        told = {a: (await heard(h, 1))[0] for a, h in listening.items() if a[-1] in "12"}
        assert [f["what"] for f in told[accounts[1]]["findings"]] == ["organizational_unit"]
        assert told[accounts[0]]["findings"] == []
        assert await listening[accounts[3]].query(SignalListener.signals) == []
        assert result.checked == 3 and result.drifted == 1 and result.reported == 2
        assert result.checked_at is not None
        assert result.by_kind == {"organizational_unit": 1}
        # In a change, not looked at, closed meanwhile (its report, a change, found no one):
        # unchecked, never reported clean.
        assert sorted(result.unchecked) == sorted(["300000000099", accounts[2], accounts[4]])
        assert await listening[accounts[2]].query(SignalListener.signals) == []
        for handle in listening.values():
            await handle.signal(SignalListener.stop)


class PagedFleet:
    """35 accounts in two pages of visibility: 30 in one OU, 5 in another."""

    def __init__(self) -> None:
        base = 310000000000 + uuid.uuid4().int % 10_000 * 100
        self.big = [str(base + i) for i in range(30)]
        self.small = [str(base + 50 + i) for i in range(5)]
        self.pages: list[bytes | None] = []
        self.inspected: list[InspectInput] = []

    def activities(self) -> list[object]:
        def target(account: str, ou: str) -> DriftTarget:
            return DriftTarget(
                account_id=account, organizational_unit=ou, organizational_unit_id=ou
            )

        @activity.defn(name="drift_targets")
        async def drift_targets(inp: DriftTargetsInput) -> DriftTargets:
            self.pages.append(inp.page_token)
            if inp.page_token is None:
                return DriftTargets(
                    targets=[target(a, "ou-big") for a in self.big], next_page_token=b"page-2"
                )
            return DriftTargets(targets=[target(a, "ou-small") for a in self.small])

        @activity.defn(name="inspect_accounts")
        async def inspect_accounts(inp: InspectInput) -> InspectResult:
            self.inspected.append(inp)
            return InspectResult(
                accounts=[AccountDrift(account_id=t.account_id) for t in inp.targets]
            )

        return [drift_targets, inspect_accounts]


async def test_a_fleet_is_listed_a_page_at_a_time_and_its_large_ous_are_read_whole(
    time_skipping: WorkflowEnvironment,
) -> None:
    """Visibility's pages are followed to the end (a fleet's list in one activity result would
    pass Temporal's payload limit), and only an OU with a page's worth of accounts to check is
    surveyed whole, under the check's run."""
    fleet = PagedFleet()
    async with worker(env := time_skipping, [DriftCheck], fleet.activities()):
        check_id = f"drift-check-{uuid.uuid4()}"
        result: DriftCheckResult = await env.client.execute_workflow(
            DriftCheck.run,
            DriftCheckInput(batch_size=10, detect_stack_set_drift=False),
            id=check_id,
            task_queue=QUEUE,
        )
        # The check of every account runs under one workflow id each time: a second run must
        # read the OUs afresh, not the first run's surveys.
        first_run = {inp.survey_id for inp in fleet.inspected}
        await env.client.execute_workflow(
            DriftCheck.run,
            DriftCheckInput(batch_size=10, detect_stack_set_drift=False),
            id=check_id,
            task_queue=QUEUE,
        )
        second_run = {inp.survey_id for inp in fleet.inspected} - first_run
        assert len(first_run) == 1 and len(second_run) == 1, (first_run, second_run)
        fleet.inspected = [i for i in fleet.inspected if i.survey_id in first_run]
        fleet.pages = fleet.pages[:2]
    assert fleet.pages == [None, b"page-2"]
    seen = sorted(t.account_id for inp in fleet.inspected for t in inp.targets)
    assert seen == sorted(fleet.big + fleet.small)
    for inp in fleet.inspected:
        assert inp.survey_id.startswith(f"{check_id}/")  # this run's own surveys
        # The large OU is read whole (every batch starts it: each API's rate used at once),
        # without Control Tower (none of its accounts is enrolled); the small one never is.
        assert inp.surveys == {"ou-big": False}, inp.surveys
    # All clean, as their records say: checked, and no account's workflow told.
    assert result.checked == 35 and result.reported == 0 and result.unchecked == []
