"""The update's step table: only the steps the difference between the account as it is and as
asked needs, in vending order; each of the others is skipped, saying it is unchanged.

The request's ``inp.request`` is the account as it will be, ``inp.account.request`` as it is;
``inp.ou`` is the destination OU's policy and ``inp.previous_ou`` the source's.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.account_lifecycle import RenameInput, RetagInput, UpdateActivities
    from activities.billing import BillingActivities, RegistrationInput
    from activities.stack_sets import DeployBaselineInput, StackSetActivities
    from activities.workload_security import WorkloadSecurityActivities
    from common import step_registry as steps
    from common.models import RequestState, VendingInput
    from common.step_registry import Step
    from common.step_rules import account_before, account_tags
    from workflows.steps.baselines import DEPLOYS, BaselinesResult, apply_baselines
    from workflows.steps.context import StepContext, StepOutcome
    from workflows.steps.enrollment import ENROLL_CONTROL_TOWER
    from workflows.steps.spec import StepSpec, activity_step
    from workflows.steps.vend import VEND, record_connector, ws_input


def _rename_input(inp: VendingInput, state: RequestState) -> RenameInput:
    assert state.account_id
    return RenameInput(account_id=state.account_id, account_name=inp.request.account_name)


def _retag_input(inp: VendingInput, state: RequestState) -> RetagInput:
    assert state.account_id
    now, before = account_tags(inp.request), account_tags(account_before(inp))
    return RetagInput(
        request_id=inp.request_id,
        account_id=state.account_id,
        tags=now,
        removed=sorted(set(before) - set(now)),
    )


async def update_baselines(ctx: StepContext) -> StepOutcome:
    """Deploy the destination OU's baselines, then delete the instances of those it lacks."""
    deployed = await apply_baselines(ctx) if ctx.inp.ou.baseline_stack_sets else None
    keep = {b.stack_set_name for b in ctx.inp.ou.baseline_stack_sets}
    previous = ctx.inp.previous_ou.baseline_stack_sets if ctx.inp.previous_ou else []
    removed = []
    for baseline in previous:
        if baseline.stack_set_name in keep:
            continue
        result = await ctx.activity(
            StackSetActivities.remove_baseline,
            DeployBaselineInput(
                request_id=ctx.inp.request_id,
                account_id=ctx.state.account_id or "",
                ou_id=ctx.state.organizational_unit_id or "",
                baseline=baseline,
                preferences=ctx.inp.ou.stack_set_preferences,
            ),
        )
        if not result.already_current:
            removed.append(result.stack_set_name)
    parts = [
        deployed.detail if deployed else "",
        f"removed {', '.join(removed)}" if removed else "",
    ]
    return BaselinesResult(
        stack_sets=sorted(keep),
        detail=", ".join(p for p in parts if p) or "nothing to change",
        attempt=deployed.attempt if deployed else 1,
    )


async def change_billing(ctx: StepContext) -> StepOutcome:
    """A new customer or plan: end the old registration, then register anew."""
    old = ctx.inp.account.billing_registration_id if ctx.inp.account else None
    if old and ctx.state.billing_registration_id == old:
        await ctx.activity(
            BillingActivities.deregister_billing, RegistrationInput(registration_id=old)
        )
    return await VEND[steps.REGISTER_BILLING].run(ctx)


UPDATE: dict[Step, StepSpec] = {
    steps.MOVE_TO_OU: StepSpec(
        VEND[steps.MOVE_TO_OU].run,
        holds_control_tower_slot=VEND[steps.MOVE_TO_OU].holds_control_tower_slot,
    ),
    steps.RENAME_ACCOUNT: StepSpec(activity_step(UpdateActivities.rename_account, _rename_input)),
    steps.ENROLL_CONTROL_TOWER: ENROLL_CONTROL_TOWER,
    steps.APPLY_BASELINES: StepSpec(
        update_baselines, uses=(*DEPLOYS, StackSetActivities.remove_baseline)
    ),
    steps.ENROLL_WORKLOAD_SECURITY: StepSpec(
        activity_step(
            WorkloadSecurityActivities.enroll_workload_security, ws_input, record_connector
        ),
    ),
    steps.REMOVE_WORKLOAD_SECURITY: StepSpec(
        activity_step(WorkloadSecurityActivities.remove_workload_security, ws_input),
    ),
    steps.REGISTER_BILLING: StepSpec(
        change_billing,
        uses=(BillingActivities.deregister_billing, BillingActivities.register_billing),
    ),
    steps.RETAG: StepSpec(activity_step(UpdateActivities.retag_account, _retag_input)),
}
