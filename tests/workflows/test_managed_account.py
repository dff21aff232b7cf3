"""The managed account, as a specification: the single writer of an account's record. Changes
take turns (one at a time, the rest in arrival order); a drift is recorded and its operators
told once, however many checks find it again; a completed decommission closes the record and
the workflow ends."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities.notifications import Delivered, Notification
from common import account_contract as contract
from common import drift
from common.drift import DriftReport, DriftTargets, DriftTargetsInput
from common.managed_account_input import ManagedAccountInput
from common.models import (
    AccountStatus,
    ChangeFinished,
    ChangeTurn,
    DriftFinding,
    ManagedAccount,
    RequestKind,
    RequestStatus,
    VendingInput,
)
from tests.waiting import eventually_async
from tests.workflows.harness import QUEUE, worker
from tests.workflows.listeners import SignalListener, heard
from workflows.drift import DriftCheck
from workflows.managed_account import ManagedAccountWorkflow

MOVED = DriftFinding(what="organizational_unit", expected="Experiments/Protected", found="Sandbox")


def _notifier(sent: list[str]) -> list[object]:
    @activity.defn(name="notify")
    async def notify(note: Notification) -> Delivered:
        sent.append(f"{note.event}:{note.step}")
        return Delivered(delivered=True, detail="fake")

    @activity.defn(name="notify_email")
    async def notify_email(note: Notification) -> Delivered:
        return Delivered(delivered=True, detail="fake")

    @activity.defn(name="drift_targets")
    async def drift_targets(inp: DriftTargetsInput) -> DriftTargets:
        sent.append(f"drift_check:{','.join(inp.account_ids)}")
        return DriftTargets()  # in a change again: nothing to look at this time

    return [notify, notify_email, drift_targets]


async def test_changes_take_turns_drift_is_told_once_and_a_decommission_closes_it(
    time_skipping: WorkflowEnvironment, vend_input: Callable[..., VendingInput]
) -> None:
    env, sent = time_skipping, []
    account_id = str(400000000000 + uuid.uuid4().int % 10**9)
    record = ManagedAccount(account_id=account_id, request=vend_input().request)
    async with worker(env, [ManagedAccountWorkflow, SignalListener, DriftCheck], _notifier(sent)):
        account = await env.client.start_workflow(
            ManagedAccountWorkflow.run,
            ManagedAccountInput(account=record),
            id=contract.account_workflow_id(account_id),
            task_queue=QUEUE,
        )
        changes = [
            await env.client.start_workflow(
                SignalListener.run, id=f"change-{account_id}-{i}", task_queue=QUEUE
            )
            for i in range(2)
        ]
        kinds = [RequestKind.update, RequestKind.decommission]
        for i, (change, kind) in enumerate(zip(changes, kinds, strict=True)):
            turn = ChangeTurn(request_id=f"c{i}", workflow_id=change.id, kind=kind)
            await account.signal(contract.CHANGE_REQUESTED, turn)
        await account.signal(contract.CHANGE_REQUESTED, turn)  # asked again: in line once
        assert [t["account_id"] for t in await heard(changes[0], 1)] == [account_id]
        now: ManagedAccount = await account.query(contract.GET_ACCOUNT, result_type=ManagedAccount)
        assert now.current_change == "c0" and now.queued_changes == ["c1"]
        assert now.status == AccountStatus.changing
        assert await changes[1].query(SignalListener.signals) == []  # waits its turn

        # A check finds the account moved by hand: recorded, told once, not again next time.
        for day in (1, 2):
            report = DriftReport(check_id=f"check-{day}", checked_at=env_now(day), findings=[MOVED])
            await account.signal(contract.DRIFT_CHECKED, report)
        drifted: ManagedAccount = await eventually_async(  # the notice is an activity
            lambda: account.query(contract.GET_ACCOUNT, result_type=ManagedAccount),
            lambda drifted: bool(sent) and drifted.last_checked_at == env_now(2),
            "the drift noticed and its notice sent",
            within=30,
            interval=0.02,
        )
        assert [d.what for d in drifted.drift] == ["organizational_unit"]
        assert sent[:1] == ["drift_detected:organizational_unit"]

        done = ChangeFinished(
            request_id="c0", kind=RequestKind.update, status=RequestStatus.completed
        )
        await account.signal(contract.CHANGE_FINISHED, done)
        assert len(await heard(changes[1], 1)) == 1  # the decommission's turn now
        closed = ChangeFinished(
            request_id="c1", kind=RequestKind.decommission, status=RequestStatus.completed
        )
        await account.signal(contract.CHANGE_FINISHED, closed)
        # The update ended on a drifted account: it is looked at again now, not tomorrow.
        again = env.client.get_workflow_handle(f"{drift.ID_PREFIX}after-c0")
        await again.result()
        assert sent[-1] == f"drift_check:{account_id}"
        final: ManagedAccount = await account.result()
        assert final.status == AccountStatus.closed and final.requests[:2] == ["c1", "c0"]
        for change in changes:
            await change.signal(SignalListener.stop)


def env_now(day: int) -> datetime:
    return datetime(2026, 12, day, 6, tzinfo=UTC)
