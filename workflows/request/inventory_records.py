"""What a request tells the inventory about its account when it closes: the record as it now is.

Plain functions of the request's state, so the vending workflow stays the process and the
account workflow stays the single writer (it applies what it is sent, in order).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from common import step_registry as steps
    from common.models import (
        AccountStatus,
        BaselineRecord,
        ManagedAccount,
        StepStatus,
    )
    from workflows.steps.context import StepContext


def _step_status(ctx: StepContext, name: str) -> StepStatus | None:
    return next((s.status for s in ctx.state.steps if s.name == name), None)


def vended_account(ctx: StepContext) -> ManagedAccount:
    """The account a completed vend made, as the inventory's first record of it."""
    inp, state = ctx.inp, ctx.state
    assert state.account_id
    enrolled = _step_status(ctx, steps.ENROLL_CONTROL_TOWER.name) == StepStatus.succeeded
    deployed = _step_status(ctx, steps.APPLY_BASELINES.name) == StepStatus.succeeded
    billed = _step_status(ctx, steps.REGISTER_BILLING.name) == StepStatus.succeeded
    return ManagedAccount(
        account_id=state.account_id,
        request=inp.request,
        status=AccountStatus.active,
        organizational_unit_id=state.organizational_unit_id,
        control_tower=f"enrolled ({inp.ou.enrollment.value})" if enrolled else "not enrolled",
        baselines=[
            BaselineRecord(stack_set=b.stack_set_name, status="CURRENT" if deployed else "none")
            for b in inp.ou.baseline_stack_sets
        ],
        workload_security_connector_id=state.workload_security_connector_id,
        workload_security_policy=inp.request.workload_security.policy
        if state.workload_security_connector_id
        else None,
        billing_registration_id=state.billing_registration_id,
        billing_status="active" if billed and state.billing_registration_id else None,
        requested_by=state.requested_by,
        requests=[state.id],
        settings=inp.settings.model_copy(
            update={
                "access": inp.settings.access
                if _step_status(ctx, steps.ASSIGN_ACCESS.name) == StepStatus.succeeded
                else None,
                "budget": inp.settings.budget
                if _step_status(ctx, steps.CREATE_BUDGET.name) == StepStatus.succeeded
                else None,
            }
        ),
        owner_digest=inp.owner_digest,
        managed_since=workflow.now(),
        updated_at=workflow.now(),
        last_checked_at=workflow.now(),
    )


def decommissioned_account(ctx: StepContext) -> ManagedAccount:
    """The account after a completed decommission: closed, in the suspended OU, nothing left."""
    assert ctx.inp.account is not None
    before = ctx.inp.account
    return before.model_copy(
        update={
            "status": AccountStatus.closed,
            "request": before.request.model_copy(
                update={"organizational_unit": ctx.inp.ou.suspended_ou}
            ),
            "organizational_unit_id": ctx.state.organizational_unit_id,
            "control_tower": "not enrolled",
            "baselines": [],
            "settings": before.settings.model_copy(update={"access": None, "budget": None}),
            "workload_security_connector_id": None,
            "workload_security_policy": None,
            "billing_registration_id": None,
            "billing_status": "ended" if before.billing_registration_id else None,
            "last_checked_at": workflow.now(),
        }
    )


def restored_account(ctx: StepContext) -> ManagedAccount:
    """The account after a cancelled change was undone: as before, with the ids that the undo
    made anew (a new billing registration, a new Workload Security connector)."""
    assert ctx.inp.account is not None
    before, state = ctx.inp.account, ctx.state
    return before.model_copy(
        update={
            "status": AccountStatus.active,
            "billing_registration_id": state.billing_registration_id,
            "workload_security_connector_id": state.workload_security_connector_id,
            "last_checked_at": workflow.now(),
        }
    )


def updated_account(ctx: StepContext) -> ManagedAccount:
    """The account after a completed update: as asked, with what the steps made."""
    inp, state = ctx.inp, ctx.state
    assert inp.account is not None
    before = inp.account
    enrolled = _step_status(ctx, steps.ENROLL_CONTROL_TOWER.name)
    control_tower = before.control_tower
    if enrolled == StepStatus.succeeded:
        control_tower = f"enrolled ({inp.ou.enrollment.value})"
    elif inp.request.organizational_unit != before.request.organizational_unit:
        control_tower = "not enrolled"  # moved to an OU Control Tower does not govern
    protected = inp.protect_workload_security
    return before.model_copy(
        update={
            "status": AccountStatus.active,
            "request": inp.request,
            "owner_digest": inp.owner_digest or before.owner_digest,
            "organizational_unit_id": state.organizational_unit_id,
            "control_tower": control_tower,
            "baselines": [
                BaselineRecord(stack_set=b.stack_set_name, status="CURRENT")
                for b in inp.ou.baseline_stack_sets
            ],
            "workload_security_connector_id": state.workload_security_connector_id
            if protected
            else None,
            "workload_security_policy": inp.request.workload_security.policy if protected else None,
            "billing_registration_id": state.billing_registration_id,
            "billing_status": "active" if state.billing_registration_id else None,
            "last_checked_at": workflow.now(),
        }
    )
