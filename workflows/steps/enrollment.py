"""The ``enroll_control_tower`` step: put the new account under Control Tower's governance.

Three ways, chosen per OU by the landing zone (``enrollment``): Account Factory (provisioned by
the coordinator in one of its slots), an OU baseline reset (the coordinator runs one per OU and
every waiting account shares it), or auto-enrollment (``MoveAccount`` started it: the step
waits for it). An account already enrolled is left alone, so the step can always run again.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.control_tower import (
        AccountFactoryInput,
        AccountInput,
        ControlTowerActivities,
        EnrollResult,
        OuBaselineInput,
        WaitEnrollmentInput,
    )
    from common import step_registry as steps
    from common.landing_zone import EnrollmentStrategy
    from workflows.steps.context import StepContext
    from workflows.steps.spec import StepSpec


async def enroll_control_tower(ctx: StepContext) -> EnrollResult:
    account_id, ou_id = _placed(ctx)
    strategy = ctx.inp.ou.enrollment
    # The look-ups and the execution role Account Factory needs, at once rather than one after
    # another: under a burst they are the ramp before the first Control Tower slot fills
    # (bench/quota's ramp). Making the role is harmless if the account is enrolled.
    role_ready = strategy == EnrollmentStrategy.account_factory
    lookups = asyncio.gather(
        ctx.activity(
            ControlTowerActivities.find_ou_baseline, OuBaselineInput(ou_id=ou_id), quick=True
        ),
        ctx.activity(
            ControlTowerActivities.account_enrollment,
            AccountInput(account_id=account_id),
            quick=True,
        ),
    )
    if role_ready:
        (ou, current), _ = await asyncio.gather(lookups, _ensure_role(ctx, account_id))
    else:
        ou, current = await lookups
    if current.status == "SUCCEEDED":
        await ctx.slot.release()
        return EnrollResult(strategy=strategy.value, detail="already enrolled")
    if strategy == EnrollmentStrategy.baseline_reset or (
        current.status == "FAILED" and strategy == EnrollmentStrategy.auto_enroll
    ):
        # A failed auto-enrollment is remediated the way Control Tower documents it:
        # by resetting the OU's baseline, which re-enrolls the accounts in it.
        await ctx.slot.release()
        return await _enroll_by_ou_reset(ctx, ou.enabled_baseline_arn)
    if strategy == EnrollmentStrategy.account_factory:
        return await enroll_by_account_factory(ctx, role_ready=role_ready)
    return await _wait_for_auto_enrollment(ctx)


async def enroll_by_account_factory(
    ctx: StepContext, ou_id: str | None = None, *, role_ready: bool = False
) -> EnrollResult:
    """The coordinator runs the provisioning in one of its slots (see
    ``ControlTowerCoordinator._provision``); this request waits for the outcome. ``ou_id``:
    the OU to enroll into, when it is not where the request placed the account (a cancelled
    decommission's undo). ``role_ready``: the execution role was already seen to."""
    account_id, _ = _placed(ctx, ou_id)
    if not role_ready:
        await _ensure_role(ctx, account_id)
    outcome = await ctx.slot.provision(factory_input(ctx, ou_id), ctx.inp.step_policy)
    if outcome.status != "SUCCEEDED":
        raise ApplicationError(
            f"Account Factory: {outcome.message or 'no reason given'}",
            {"attempt": outcome.attempt or 1},
            type=outcome.error_type or "AccountFactoryFailed",
        )
    result = await _wait_for_enrollment(ctx, account_id)
    return EnrollResult(
        strategy=EnrollmentStrategy.account_factory.value, detail="enrolled", attempt=result.attempt
    )


async def _ensure_role(ctx: StepContext, account_id: str) -> object:
    return await ctx.activity(
        ControlTowerActivities.ensure_execution_role, AccountInput(account_id=account_id)
    )


async def _wait_for_auto_enrollment(ctx: StepContext) -> EnrollResult:
    """``MoveAccount`` started the enrollment in the slot ``move_to_ou`` took: wait for it, then
    give the slot back."""
    await ctx.slot.acquire()
    try:
        result = await _wait_for_enrollment(ctx)
    finally:
        await ctx.slot.release()
    return EnrollResult(
        strategy=ctx.inp.ou.enrollment.value, detail="enrolled", attempt=result.attempt
    )


async def _enroll_by_ou_reset(ctx: StepContext, enabled_baseline_arn: str) -> EnrollResult:
    account_id, _ = _placed(ctx)
    notice = await ctx.slot.reset_ou(account_id, enabled_baseline_arn)
    if notice.status != "SUCCEEDED":
        raise ApplicationError(
            f"ResetEnabledBaseline {notice.operation_id or ''} {notice.status}: "
            f"{notice.message or 'no reason given'}",
            type="EnrollmentFailed",
        )
    await ctx.activity(
        ControlTowerActivities.wait_for_enrollment,
        WaitEnrollmentInput(account_id=account_id, timeout_seconds=120),
    )
    return EnrollResult(
        strategy=EnrollmentStrategy.baseline_reset.value,
        detail=f"enrolled by OU operation {notice.operation_id}",
    )


async def _wait_for_enrollment(ctx: StepContext, account_id: str | None = None) -> EnrollResult:
    account_id = account_id or _placed(ctx)[0]
    ctx.show("waiting for Control Tower to report the account enrolled")
    return await ctx.activity(
        ControlTowerActivities.wait_for_enrollment,
        WaitEnrollmentInput(
            account_id=account_id, timeout_seconds=ctx.inp.ou.enrollment_timeout_seconds
        ),
    )


def factory_input(ctx: StepContext, into_ou: str | None = None) -> AccountFactoryInput:
    account_id, ou_id = _placed(ctx, into_ou)
    inp = ctx.inp
    return AccountFactoryInput(
        request_id=inp.request_id,
        account_id=account_id,
        account_name=inp.request.account_name,
        account_email=inp.request.account_email,
        ou_name=inp.ou.path.rsplit("/", 1)[-1],
        ou_id=ou_id,
        sso_user_email=inp.request.owner_email,
        product_name=inp.ou.account_factory_product,
        run=ctx.attempts_so_far(steps.ENROLL_CONTROL_TOWER.name) + 1,
    )


def _placed(ctx: StepContext, ou_id: str | None = None) -> tuple[str, str]:
    state = ctx.state
    ou_id = ou_id or state.organizational_unit_id
    assert state.account_id and ou_id, "runs after move_to_ou"
    return state.account_id, ou_id


ENROLLS = (
    ControlTowerActivities.find_ou_baseline,
    ControlTowerActivities.account_enrollment,
    ControlTowerActivities.ensure_execution_role,
    ControlTowerActivities.wait_for_enrollment,
)
ENROLL_CONTROL_TOWER = StepSpec(enroll_control_tower, uses=ENROLLS)
