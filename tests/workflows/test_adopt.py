"""The adoption, as a specification: an account made outside the engine brought under
management. Nothing is created; it runs the vend's steps from the OU on, after at least one
approval even where the destination OU needs none."""

from __future__ import annotations

from collections.abc import Callable

from temporalio.testing import WorkflowEnvironment

from common import vending_contract as contract
from common.models import ApproveInput, RequestKind, RequestState, RequestStatus, VendingInput
from common.step_plan import skip_reason
from common.step_registry import step_names
from tests.workflows.fakes import Fakes
from tests.workflows.harness import state_of, submit, worker_for


async def test_an_adoption_waits_for_an_approval_then_runs_the_vends_steps_but_creation(
    time_skipping: WorkflowEnvironment, vend_input: Callable[..., VendingInput]
) -> None:
    fakes = Fakes()
    inp = vend_input(approvals_required=0).model_copy(
        update={"kind": RequestKind.adopt, "account_id": "444455556666"}
    )
    async with worker_for(time_skipping, fakes):
        handle = await submit(time_skipping, inp)
        waiting = await state_of(handle)
        # The destination needs none; adopting is never automatic.
        assert waiting.status == RequestStatus.pending_approval
        assert waiting.approvals_required == 1 and fakes.steps() == []
        await handle.execute_update(
            contract.APPROVE, ApproveInput(by="bob", comment="ok"), result_type=RequestState
        )
        final = await handle.result()
    assert final.status == RequestStatus.completed and final.account_id == "444455556666"
    running = [s for s in step_names(RequestKind.adopt) if skip_reason(inp, s) is None]
    assert running[0] == "verify_access" and "create_account" not in running
    assert fakes.steps() == running
    assert [a.account.account_id for a in fakes.inventory] == ["444455556666"]
