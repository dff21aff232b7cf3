"""The decommission, as a specification: never automatic (an approval even where vending needs
none); it waits for the account's turn (one change at a time), shuts the account in first, ends
billing, removes protection, and closes the account only when the close quota's queue grants
it; the account's record ends closed."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from temporalio.testing import WorkflowEnvironment

from api.schemas import DecommissionBody
from api.services.changes import change_input
from common import account_contract
from common import vending_contract as contract
from common.landing_zone import load_landing_zone
from common.managed_account_input import ManagedAccountInput
from common.models import (
    AccountStatus,
    ApproveInput,
    ManagedAccount,
    Principal,
    RequestKind,
    RequestState,
    RequestStatus,
    Role,
    VendingInput,
)
from common.step_plan import skip_reason
from common.step_registry import step_names
from tests.conftest import ROOT
from tests.workflows.conftest import settings
from tests.workflows.fakes import Fakes
from tests.workflows.harness import QUEUE, state_of, submit, wait_for, worker
from workflows.close_quota import CLOSE_QUOTA_ID, CloseQuotaQueue, CloseQuotaState
from workflows.managed_account import ManagedAccountWorkflow
from workflows.vending import AccountVending

OU = "Experiments/Protected"  # vending there needs no approval


def _decommission(record: ManagedAccount) -> VendingInput:
    lz = load_landing_zone(ROOT / "tests" / "landing_zone.yaml")
    body = DecommissionBody(
        kind="decommission",
        justification="the project ended",
        confirm_account_name=record.request.account_name,
    )
    alice = Principal(sub="alice", email="alice@example.com", roles=[Role.requester])
    source = lz.find(OU)
    assert source is not None
    return change_input(record, source, body, alice, lz, settings(), key=None)


async def test_a_decommission_waits_for_approval_and_its_turn_then_closes_last(
    time_skipping: WorkflowEnvironment, vend_input: Callable[..., VendingInput]
) -> None:
    env, fakes = time_skipping, Fakes()
    account_id = str(500000000000 + uuid.uuid4().int % 10**9)
    record = ManagedAccount(
        account_id=account_id,
        request=vend_input(OU).request,
        workload_security_connector_id=7,
        billing_registration_id="reg-1",
    )
    inp = _decommission(record)
    assert inp.kind == RequestKind.decommission and inp.ou.approvals_required == 1
    workflows = [AccountVending, ManagedAccountWorkflow, CloseQuotaQueue]
    async with worker(env, workflows, fakes.activities()):
        account = await env.client.start_workflow(
            ManagedAccountWorkflow.run,
            ManagedAccountInput(account=record),
            id=account_contract.account_workflow_id(account_id),
            task_queue=QUEUE,
        )
        await env.client.start_workflow(
            CloseQuotaQueue.run, CloseQuotaState(), id=CLOSE_QUOTA_ID, task_queue=QUEUE
        )
        handle = await submit(env, inp)
        assert (await state_of(handle)).status == RequestStatus.pending_approval
        assert fakes.steps() == []  # closing is never automatic
        await handle.execute_update(
            contract.APPROVE, ApproveInput(by="bob", comment="ok"), result_type=RequestState
        )
        final = await handle.result()
        closed: ManagedAccount = await account.result()
    assert final.status == RequestStatus.completed
    running = [s for s in step_names(RequestKind.decommission) if skip_reason(inp, s) is None]
    assert running[0] == "quarantine" and running[-1] == "close_account"
    assert "remove_baselines" not in running  # the OU gives none
    assert fakes.steps() == [
        "quarantine_account",
        "deregister_billing",
        "remove_workload_security",
        "close_account",
        "wait_for_closure",
    ]
    assert closed.status == AccountStatus.closed


async def test_a_failed_step_parks_the_decommission_and_the_account_waits_with_it(
    time_skipping: WorkflowEnvironment, vend_input: Callable[..., VendingInput]
) -> None:
    """The quarantine finds the account elsewhere: nothing after it runs, the request waits for
    an operator, and the account stays the request's (its turn is not given away)."""
    env = time_skipping
    fakes = Fakes(failing={"quarantine_account": "AccountMovedElsewhere"})
    account_id = str(500000000000 + uuid.uuid4().int % 10**9)
    record = ManagedAccount(account_id=account_id, request=vend_input(OU).request)
    inp = _decommission(record)
    workflows = [AccountVending, ManagedAccountWorkflow, CloseQuotaQueue]
    async with worker(env, workflows, fakes.activities()):
        account = await env.client.start_workflow(
            ManagedAccountWorkflow.run,
            ManagedAccountInput(account=record),
            id=account_contract.account_workflow_id(account_id),
            task_queue=QUEUE,
        )
        handle = await submit(env, inp)
        await handle.execute_update(
            contract.APPROVE, ApproveInput(by="bob", comment="ok"), result_type=RequestState
        )
        parked = await wait_for(handle, RequestStatus.waiting_for_operator)
        now: ManagedAccount = await account.query(
            account_contract.GET_ACCOUNT, result_type=ManagedAccount
        )
        await handle.terminate("the specification is over")
        await account.terminate("the specification is over")
    failed = [s for s in parked.steps if s.status.value == "failed"]
    assert [s.name for s in failed] == ["quarantine"]
    assert fakes.steps() == ["quarantine_account"]
    assert now.current_change == inp.request_id and now.status == AccountStatus.decommissioning
