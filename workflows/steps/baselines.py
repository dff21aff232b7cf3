"""The ``apply_baselines`` step and its undo: the OU's baseline StackSets, one instance each.

StackSets run in parallel up to the OU's ``max_parallel_stack_sets``; one that fails does not
stop the others, and the step fails with every failure's message, so an operator sees them all
at once instead of one per retry.

A new account's instances are made by the StackSet batcher, in one operation with every other
account waiting on the StackSet (``workflows/stack_set_batcher.py``); what the batch does not
settle (an account with instances already, which may need an update or a replacement), or
every account when no batcher answers, the step's own activity does.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.stack_sets import (
        DeployBaselineInput,
        DeployBaselineResult,
        StackSetActivities,
    )
    from activities.workflow_signals import WorkflowSignals
    from common.landing_zone import StackSetBaseline
    from common.stack_set_batches import BatchEntry
    from workflows.request.failures import error_of
    from workflows.steps.context import StepContext
    from workflows.steps.spec import StepSpec


class BaselinesResult(BaseModel):
    stack_sets: list[str]
    detail: str
    attempt: int = 1


def _input(ctx: StepContext, baseline: StackSetBaseline) -> DeployBaselineInput:
    return DeployBaselineInput(
        request_id=ctx.inp.request_id,
        account_id=ctx.state.account_id or "",
        ou_id=ctx.state.organizational_unit_id or "",
        baseline=baseline,
        preferences=ctx.inp.ou.stack_set_preferences,
    )


async def apply_baselines(ctx: StepContext) -> BaselinesResult:
    assert ctx.state.account_id and ctx.state.organizational_unit_id
    limit = asyncio.Semaphore(ctx.inp.ou.stack_set_preferences.max_parallel_stack_sets)

    batched = ctx.batches is not None

    async def deploy(baseline: StackSetBaseline) -> DeployBaselineResult:
        async with limit:
            if batched:
                done = await _batched(ctx, baseline)
                if done is not None:
                    return done
            return await ctx.activity(StackSetActivities.deploy_baseline, _input(ctx, baseline))

    outcomes = await asyncio.gather(
        *(deploy(b) for b in ctx.inp.ou.baseline_stack_sets), return_exceptions=True
    )
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures:
        first = failures[0]
        known = [f for f in failures if isinstance(f, ActivityError | ApplicationError)]
        if len(failures) == 1 or not isinstance(first, ActivityError | ApplicationError):
            raise first
        messages = "; ".join(error_of(f).message for f in known)
        raise ApplicationError(messages, type=error_of(first).type)
    done = [o for o in outcomes if isinstance(o, DeployBaselineResult)]
    deployed = [_deployed(d) for d in done if not d.already_current]
    current = [d.stack_set_name for d in done if d.already_current]
    parts = [
        f"deployed {', '.join(deployed)}" if deployed else "",
        f"already current {', '.join(current)}" if current else "",
    ]
    return BaselinesResult(
        stack_sets=[d.stack_set_name for d in done],
        detail=", ".join(p for p in parts if p),
        attempt=max((d.attempt for d in done), default=1),
    )


async def _batched(ctx: StepContext, baseline: StackSetBaseline) -> DeployBaselineResult | None:
    """The batcher's answer for this account: deployed, failed (raised as the step's failure,
    AWS's reasons named by region), or None when the step's own activity is to deploy."""
    assert ctx.batches is not None and ctx.state.account_id
    name = baseline.stack_set_name
    notice = await ctx.batches.deploy(
        BatchEntry(
            workflow_id=workflow.info().workflow_id,
            request_id=ctx.inp.request_id,
            account_id=ctx.state.account_id,
            ou_id=ctx.state.organizational_unit_id or "",
            baseline=baseline,
            policy=ctx.inp.step_policy,
        )
    )
    if notice.outcome == "failed":
        raise ApplicationError(
            f"StackSet {name} operation {notice.operation_id} FAILED for "
            f"{ctx.state.account_id}: {notice.reason}",
            {"attempt": notice.attempt},
            type="StackSetOperationFailed",
            non_retryable=True,
        )
    if notice.outcome != "deployed":
        return None
    return DeployBaselineResult(
        stack_set_name=name,
        operation_id=notice.operation_id,
        regions_deployed=list(baseline.regions),
        already_current=False,
        attempt=notice.attempt,
        shared_with=max(0, notice.accounts_in_operation - 1),
    )


def _deployed(result: DeployBaselineResult) -> str:
    if not result.shared_with:
        return result.stack_set_name
    return (
        f"{result.stack_set_name} (operation {result.operation_id}, shared with "
        f"{result.shared_with} other account{'s' if result.shared_with > 1 else ''})"
    )


async def remove_baselines(ctx: StepContext) -> BaselinesResult:
    if not ctx.state.account_id:
        return BaselinesResult(stack_sets=[], detail="no account")
    removed = []
    for baseline in ctx.inp.ou.baseline_stack_sets:
        result = await ctx.activity(StackSetActivities.remove_baseline, _input(ctx, baseline))
        if not result.already_current:
            removed.append(result.stack_set_name)
    return BaselinesResult(
        stack_sets=removed,
        detail=f"deleted instances of {', '.join(removed)}" if removed else "none to delete",
    )


DEPLOYS = (StackSetActivities.deploy_baseline, WorkflowSignals.ask_stack_set_batcher)
APPLY_BASELINES = StepSpec(
    apply_baselines, undo=remove_baselines, uses=(*DEPLOYS, StackSetActivities.remove_baseline)
)
