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
    from common.landing_zone import EnrollmentStrategy, StackSetBaseline
    from common.models import UPDATE_STEP_NAMES, AccountRequest, RequestState, VendingInput
    from workflows.baselines import BaselinesResult, apply_baselines
    from workflows.enrollment import enroll_control_tower
    from workflows.step_context import StepContext, StepOutcome
    from workflows.steps import (
        STEPS,
        StepSpec,
        activity_step,
        record_connector,
        ws_input,
    )


def _before(inp: VendingInput) -> AccountRequest:
    assert inp.account is not None, "an update names its account"
    return inp.account.request


def _moves(inp: VendingInput) -> bool:
    return inp.request.organizational_unit != _before(inp).organizational_unit


def account_tags(request: AccountRequest) -> dict[str, str]:
    """The tags the engine keeps on an account (the vend's move_to_ou sets the same)."""
    return {
        **request.tags,
        "vending:environment": request.environment.value,
        "vending:cost-center": request.cost_center,
        "vending:owner": request.owner_email,
    }


def _unchanged(what: str) -> str:
    return f"{what} unchanged"


def _skip_move(inp: VendingInput) -> str | None:
    return None if _moves(inp) else _unchanged("OU")


def _skip_rename(inp: VendingInput) -> str | None:
    return None if inp.request.account_name != _before(inp).account_name else _unchanged("name")


def _skip_enroll(inp: VendingInput) -> str | None:
    if not _moves(inp):
        return _unchanged("OU")
    if inp.ou.enrollment == EnrollmentStrategy.none:
        return f"OU {inp.ou.path} is not governed by Control Tower"
    return None


def _baseline_key(baselines: list[StackSetBaseline]) -> list[str]:
    return sorted(b.model_dump_json() for b in baselines)


def _skip_baselines(inp: VendingInput) -> str | None:
    before = inp.previous_ou.baseline_stack_sets if inp.previous_ou else []
    if _baseline_key(before) == _baseline_key(inp.ou.baseline_stack_sets):
        return _unchanged("baselines")
    return None


def _skip_protect(inp: VendingInput) -> str | None:
    if inp.protect_workload_security and not inp.previous_protect_workload_security:
        return None
    return _unchanged("Workload Security") if inp.protect_workload_security else "not protected"


def _skip_unprotect(inp: VendingInput) -> str | None:
    if inp.previous_protect_workload_security and not inp.protect_workload_security:
        return None
    return _unchanged("Workload Security")


def _skip_billing(inp: VendingInput) -> str | None:
    return None if inp.request.billing != _before(inp).billing else _unchanged("billing")


def _skip_retag(inp: VendingInput) -> str | None:
    if account_tags(inp.request) != account_tags(_before(inp)):
        return None
    return _unchanged("tags, owner, cost center and environment")


def _rename_input(inp: VendingInput, state: RequestState) -> RenameInput:
    assert state.account_id
    return RenameInput(account_id=state.account_id, account_name=inp.request.account_name)


def _retag_input(inp: VendingInput, state: RequestState) -> RetagInput:
    assert state.account_id
    now, before = account_tags(inp.request), account_tags(_before(inp))
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
    return await STEPS["register_billing"].run(ctx)


UPDATE_STEPS: dict[str, StepSpec] = {
    "move_to_ou": StepSpec(
        STEPS["move_to_ou"].run,
        skip_reason=_skip_move,
        holds_control_tower_slot=STEPS["move_to_ou"].holds_control_tower_slot,
    ),
    "rename_account": StepSpec(
        activity_step(UpdateActivities.rename_account, _rename_input), skip_reason=_skip_rename
    ),
    "enroll_control_tower": StepSpec(enroll_control_tower, skip_reason=_skip_enroll),
    "apply_baselines": StepSpec(update_baselines, skip_reason=_skip_baselines),
    "enroll_workload_security": StepSpec(
        activity_step(
            WorkloadSecurityActivities.enroll_workload_security, ws_input, record_connector
        ),
        skip_reason=_skip_protect,
    ),
    "remove_workload_security": StepSpec(
        activity_step(WorkloadSecurityActivities.remove_workload_security, ws_input),
        skip_reason=_skip_unprotect,
    ),
    "register_billing": StepSpec(change_billing, skip_reason=_skip_billing),
    "retag": StepSpec(
        activity_step(UpdateActivities.retag_account, _retag_input), skip_reason=_skip_retag
    ),
}
assert tuple(UPDATE_STEPS) == UPDATE_STEP_NAMES
