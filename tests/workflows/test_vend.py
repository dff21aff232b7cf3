"""The vend, as a specification: what a request does from its submission to its account, with
every outside system faked and waiting skipped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from common import vending_contract as contract
from common.models import (
    ApproveInput,
    CancelInput,
    RequestKind,
    RequestState,
    RequestStatus,
    RetryInput,
    VendingInput,
)
from common.step_plan import skip_reason
from common.step_registry import step_names
from tests.waiting import eventually_async
from tests.workflows.fakes import Fakes
from tests.workflows.harness import state_of, submit, wait_for, worker_for


async def test_an_approved_vend_runs_its_steps_in_the_registrys_order(
    time_skipping: WorkflowEnvironment, vend_input: Callable[..., VendingInput]
) -> None:
    fakes = Fakes()
    inp = vend_input(approvals_required=1)
    async with worker_for(time_skipping, fakes):
        handle = await submit(time_skipping, inp)
        assert (await state_of(handle)).status == RequestStatus.pending_approval
        assert fakes.steps() == []  # nothing happens before the approval
        await handle.execute_update(
            contract.APPROVE, ApproveInput(by="bob", comment="ok"), result_type=RequestState
        )
        final = await handle.result()
    assert final.status == RequestStatus.completed and final.account_id == "111122223333"
    running = [s for s in step_names(RequestKind.vend) if skip_reason(inp, s) is None]
    assert fakes.steps() == running  # each step's activity once, in order; skipped ones never
    assert [s.status.value for s in final.steps if s.name in running] == ["succeeded"] * len(
        running
    )
    assert len(fakes.inventory) == 1  # the account's own workflow takes over


async def test_the_notices_a_moment_decides_go_out_in_one_activity(
    time_skipping: WorkflowEnvironment, vend_input: Callable[..., VendingInput]
) -> None:
    """Filed, a request tells of its creation and asks for approval at once: one delivery
    activity carries both (an activity per notice and channel cost a third of a filing)."""
    fakes = Fakes()
    inp = vend_input(approvals_required=1)
    async with worker_for(time_skipping, fakes):
        handle = await submit(time_skipping, inp)
        await eventually_async(
            lambda: _now(list(fakes.notices)),
            lambda seen: seen == ["created", "needs_approval"],
            "the filing's two notices delivered",
        )
        assert fakes.calls.count("deliver") == 1
        assert "notify" not in fakes.calls and "notify_email" not in fakes.calls
        await handle.execute_update(
            contract.APPROVE, ApproveInput(by="bob", comment="ok"), result_type=RequestState
        )
        await handle.result()
    assert fakes.notices == ["created", "needs_approval", "approved"]
    # the last word (completed) goes out in the workflow task that closes the request: a local
    # activity per channel, not a delivery of its own
    assert fakes.calls.count("deliver") == 2
    assert fakes.calls.count("notify") == fakes.calls.count("notify_email") == 1


async def test_silence_expires_a_request_when_its_approval_window_ends(
    time_skipping: WorkflowEnvironment, vend_input: Callable[..., VendingInput]
) -> None:
    """A week's window passes in seconds: the request expires, and nothing was created."""
    fakes = Fakes()
    inp = vend_input(approvals_required=1, approval_window_seconds=7 * 24 * 3600)
    async with worker_for(time_skipping, fakes):
        handle = await submit(time_skipping, inp)
        await time_skipping.sleep(timedelta(days=7, minutes=1))  # skipped, not waited
        final = await handle.result()
    assert final.status == RequestStatus.expired
    assert fakes.steps() == []
    waited = final.updated_at - final.created_at
    assert waited >= timedelta(days=7)


async def test_a_step_that_fails_for_good_parks_the_request_until_an_operator_retries_it(
    time_skipping: WorkflowEnvironment, vend_input: Callable[..., VendingInput]
) -> None:
    fakes = Fakes(failing={"register_billing": "InvalidBillingPlan"})
    inp = vend_input()  # approved at once (the OU needs no approval)
    async with worker_for(time_skipping, fakes):
        handle = await submit(time_skipping, inp)
        parked = await wait_for(handle, RequestStatus.waiting_for_operator)
        failed = next(s for s in parked.steps if s.status.value == "failed")
        assert failed.name == "register_billing" and failed.error is not None
        assert failed.error.type == "InvalidBillingPlan"
        del fakes.failing["register_billing"]  # the operator fixed the plan
        await handle.execute_update(
            contract.RETRY,
            RetryInput(by="carol", step="register_billing", reason="plan fixed"),
            result_type=RequestState,
        )
        final = await handle.result()
    assert final.status == RequestStatus.completed
    assert (
        fakes.steps().count("register_billing") == 2 and fakes.steps().count("create_account") == 1
    )


async def test_a_cancel_while_parked_undoes_what_was_done_newest_first(
    time_skipping: WorkflowEnvironment, vend_input: Callable[..., VendingInput]
) -> None:
    fakes = Fakes(failing={"register_billing": "InvalidBillingPlan"})
    async with worker_for(time_skipping, fakes):
        handle = await submit(time_skipping, vend_input())
        await wait_for(handle, RequestStatus.waiting_for_operator)
        done = len(fakes.steps())
        await handle.execute_update(
            contract.CANCEL, CancelInput(by="alice", reason="not needed"), result_type=RequestState
        )
        final = await handle.result()
    assert final.status == RequestStatus.cancelled
    # Workload Security's enrollment, then the account itself; moving it has no undo, and the
    # billing registration was never made.
    assert fakes.steps()[done:] == ["remove_workload_security", "suspend_account"]
    assert [c.step for c in final.compensations if c.status == "undone"] == [
        "enroll_workload_security",
        "create_account",
    ]
    assert fakes.inventory == []  # a cancelled vend leaves nothing to manage


async def _now(value: list[str]) -> list[str]:
    return value
