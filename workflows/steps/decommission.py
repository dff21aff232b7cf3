"""The decommission's step table: take away, in order, what the vend gave the account, then
close it.

Each step but the last is undone by the vend step it mirrors (a cancel before ``close_account``
starts puts the account back as the inventory had it: the request's ``inp.request`` describes
the account as it was, so the vend steps' own inputs apply). ``close_account`` waits for its turn
in the organization's close quota (``close_quota.py``), then for AWS to finish the closure.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.account_lifecycle import (
        CLOSE_QUOTA_EXCEEDED,
        CloseAccountInput,
        CloseQuotaInput,
        ClosureResult,
        LifecycleActivities,
        QuarantineInput,
    )
    from activities.billing import BillingActivities, BillingInput, RegistrationInput
    from activities.budgets import BudgetActivities, BudgetInput, BudgetRemoval
    from activities.control_tower import (
        AccountInput,
        ControlTowerActivities,
        UnmanageInput,
        UnmanageResult,
    )
    from activities.identity_center import AccessInput, IdentityCenterActivities
    from activities.organizations import OrganizationsActivities
    from activities.stack_sets import StackSetActivities
    from activities.workload_security import WorkloadSecurityActivities
    from common import step_registry as steps
    from common.models import RequestState, VendingInput
    from common.step_registry import Step
    from workflows.request.failures import error_of
    from workflows.steps.baselines import DEPLOYS, apply_baselines, remove_baselines
    from workflows.steps.context import StepContext, StepOutcome
    from workflows.steps.enrollment import ENROLLS, enroll_by_account_factory
    from workflows.steps.spec import StepSpec, activity_step, activity_undo
    from workflows.steps.vend import move_input, record_connector, record_registration, ws_input


def _account_id(state: RequestState) -> str:
    assert state.account_id, "a change request names its account"
    return state.account_id


def _quarantine_input(inp: VendingInput, state: RequestState) -> QuarantineInput:
    return QuarantineInput(
        request_id=inp.request_id,
        account_id=_account_id(state),
        expected_ou_path=inp.request.organizational_unit,
        expected_owner=inp.request.owner_email,
        suspended_ou_path=inp.ou.suspended_ou,
    )


def _end_billing_input(_: VendingInput, state: RequestState) -> RegistrationInput:
    assert state.billing_registration_id
    return RegistrationInput(registration_id=state.billing_registration_id)


def _billing_again(inp: VendingInput, state: RequestState) -> BillingInput:
    """Register again (the cancel's undo of end_billing); the run number names this request's
    registration apart from the vend's (Sunny Pay's idempotency key includes it)."""
    return BillingInput(
        request_id=inp.request_id,
        account_id=_account_id(state),
        account_name=inp.request.account_name,
        customer_id=inp.request.billing.customer_id,
        plan=inp.request.billing.plan,
        cost_center=inp.request.cost_center,
        contact_email=inp.request.owner_email,
        workload_security=inp.protect_workload_security,
    )


def _access_input(inp: VendingInput, state: RequestState) -> AccessInput:
    assert inp.account is not None and inp.account.settings.access is not None
    return AccessInput(account_id=_account_id(state), access=inp.account.settings.access)


def _budget_removal(_: VendingInput, state: RequestState) -> BudgetRemoval:
    return BudgetRemoval(account_id=_account_id(state))


def _budget_again(inp: VendingInput, state: RequestState) -> BudgetInput:
    assert inp.account is not None and inp.account.settings.budget is not None
    return BudgetInput(account_id=_account_id(state), budget=inp.account.settings.budget)


async def unmanage_control_tower(ctx: StepContext) -> StepOutcome:
    """Terminate the Account Factory product (an account operation: it takes a Control Tower
    slot), then put the account back in quarantine: Control Tower moves an account it stops
    managing to the Root."""
    await ctx.slot.acquire()
    try:
        ctx.show("unmanaging through Account Factory (TerminateProvisionedProduct)")
        result: UnmanageResult = await ctx.activity(
            ControlTowerActivities.unmanage_account_factory,
            UnmanageInput(request_id=ctx.inp.request_id, account_id=_account_id(ctx.state)),
        )
    finally:
        await ctx.slot.release()
    await ctx.activity(
        LifecycleActivities.quarantine_account, _quarantine_input(ctx.inp, ctx.state)
    )
    return result


async def _manage_again(ctx: StepContext) -> StepOutcome:
    """The cancel's undo of unmanage: enroll the account through Account Factory again, into
    the OU the inventory had it in (Control Tower places it there; the quarantine's own undo
    then finds it home)."""
    assert ctx.inp.account is not None and ctx.inp.account.organizational_unit_id
    current = await ctx.activity(
        ControlTowerActivities.account_enrollment,
        AccountInput(account_id=_account_id(ctx.state)),
        quick=True,
    )
    if current.status != "NOT_ENROLLED":  # the termination never took: nothing to make again
        return UnmanageResult(record_id=None, detail=f"still managed ({current.status})")
    return await enroll_by_account_factory(ctx, ou_id=ctx.inp.account.organizational_unit_id)


async def close_account(ctx: StepContext) -> StepOutcome:
    """Wait for a place in the close quota, CloseAccount once, then wait for SUSPENDED."""
    assert ctx.close_quota is not None
    arg = CloseAccountInput(request_id=ctx.inp.request_id, account_id=_account_id(ctx.state))
    quota = await ctx.activity(
        LifecycleActivities.close_quota_limit,
        CloseQuotaInput(),
        quick=True,
    )
    while True:
        await ctx.close_quota.wait(ctx.show, quota.limit)
        try:
            await ctx.activity(LifecycleActivities.close_account, arg)
        except ActivityError as err:
            if error_of(err).type == CLOSE_QUOTA_EXCEEDED:
                await ctx.close_quota.done("refused")  # keeps its place; asked again later
                continue
            await ctx.close_quota.done("withdrawn")
            raise
        await ctx.close_quota.done("closed")
        break
    closed: ClosureResult = await ctx.activity(LifecycleActivities.wait_for_closure, arg)
    return closed


DECOMMISSION: dict[Step, StepSpec] = {
    steps.QUARANTINE: StepSpec(
        activity_step(LifecycleActivities.quarantine_account, _quarantine_input),
        undo=activity_undo(OrganizationsActivities.move_to_ou, move_input),
    ),
    steps.END_BILLING: StepSpec(
        activity_step(BillingActivities.deregister_billing, _end_billing_input),
        undo=activity_step(BillingActivities.register_billing, _billing_again, record_registration),
    ),
    # What the vend's settings made outside the account: nobody signs in to a closed account,
    # and a closed account's budget would only alert.
    steps.REMOVE_ACCESS: StepSpec(
        activity_step(IdentityCenterActivities.remove_access, _access_input),
        undo=activity_step(IdentityCenterActivities.assign_access, _access_input),
    ),
    steps.DELETE_BUDGET: StepSpec(
        activity_step(BudgetActivities.delete_budget, _budget_removal),
        undo=activity_step(BudgetActivities.create_budget, _budget_again),
    ),
    steps.REMOVE_WORKLOAD_SECURITY: StepSpec(
        activity_step(WorkloadSecurityActivities.remove_workload_security, ws_input),
        undo=activity_step(
            WorkloadSecurityActivities.enroll_workload_security, ws_input, record_connector
        ),
    ),
    steps.REMOVE_BASELINES: StepSpec(
        remove_baselines, undo=apply_baselines, uses=(*DEPLOYS, StackSetActivities.remove_baseline)
    ),
    steps.UNMANAGE_CONTROL_TOWER: StepSpec(
        unmanage_control_tower,
        undo=_manage_again,
        uses=(
            ControlTowerActivities.unmanage_account_factory,
            LifecycleActivities.quarantine_account,
            *ENROLLS,
        ),
    ),
    steps.CLOSE_ACCOUNT: StepSpec(
        close_account,
        uses=(
            LifecycleActivities.close_quota_limit,
            LifecycleActivities.close_account,
            LifecycleActivities.wait_for_closure,
        ),
    ),
}
