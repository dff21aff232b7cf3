"""An update, as a specification: only the steps its difference needs run (a rename renames;
nothing is moved, enrolled, deployed or retagged again), after the account's turn; the
account's record then holds the new name."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from temporalio.testing import WorkflowEnvironment

from api.schemas import UpdateBody
from api.services.changes import change_input
from common import account_contract
from common import vending_contract as contract
from common.landing_zone import load_landing_zone
from common.managed_account_input import ManagedAccountInput
from common.models import (
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
from tests.workflows.harness import QUEUE, state_of, submit, worker
from workflows.managed_account import ManagedAccountWorkflow
from workflows.vending import AccountVending

OU = "Experiments/Protected"


async def test_a_rename_runs_only_the_steps_a_new_name_needs(
    time_skipping: WorkflowEnvironment, vend_input: Callable[..., VendingInput]
) -> None:
    env, fakes = time_skipping, Fakes()
    account_id = str(600000000000 + uuid.uuid4().int % 10**9)
    record = ManagedAccount(
        account_id=account_id,
        request=vend_input(OU).request,
        workload_security_connector_id=7,  # protected, as its request asked
        billing_registration_id="reg-1",
    )
    lz = load_landing_zone(ROOT / "tests" / "landing_zone.yaml")
    source = lz.find(OU)
    assert source is not None
    new_name = f"t-renamed-{uuid.uuid4().hex[:6]}"
    body = UpdateBody(kind="update", justification="a clearer name", account_name=new_name)
    alice = Principal(sub="alice", email="alice@example.com", roles=[Role.requester])
    inp = change_input(record, source, body, alice, lz, settings(), key=None)
    async with worker(env, [AccountVending, ManagedAccountWorkflow], fakes.activities()):
        account = await env.client.start_workflow(
            ManagedAccountWorkflow.run,
            ManagedAccountInput(account=record),
            id=account_contract.account_workflow_id(account_id),
            task_queue=QUEUE,
        )
        handle = await submit(env, inp)
        if (await state_of(handle)).status == RequestStatus.pending_approval:
            await handle.execute_update(
                contract.APPROVE, ApproveInput(by="bob", comment="ok"), result_type=RequestState
            )
        final = await handle.result()
        now: ManagedAccount = await account.query(
            account_contract.GET_ACCOUNT, result_type=ManagedAccount
        )
        await account.terminate("the specification is over")
    assert final.status == RequestStatus.completed
    running = [s for s in step_names(RequestKind.update) if skip_reason(inp, s) is None]
    assert running == ["rename_account"]  # its tags, OU and protection are as they were
    assert fakes.steps() == ["rename_account"]
    assert now.request.account_name == new_name and now.current_change is None
