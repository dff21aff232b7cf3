"""The ``apply_baselines`` step and its undo: the OU's baseline StackSets, one instance each.

StackSets run in parallel up to the OU's ``max_parallel_stack_sets``; one that fails does not
stop the others, and the step fails with every failure's message, so an operator sees them all
at once instead of one per retry.
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
    from common.landing_zone import StackSetBaseline
    from workflows.failures import error_of
    from workflows.step_context import StepContext


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

    async def deploy(baseline: StackSetBaseline) -> DeployBaselineResult:
        async with limit:
            return await ctx.activity(StackSetActivities.deploy_baseline, _input(ctx, baseline))

    outcomes = await asyncio.gather(
        *(deploy(b) for b in ctx.inp.ou.baseline_stack_sets), return_exceptions=True
    )
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures:
        first = failures[0]
        if len(failures) == 1 or not isinstance(first, ActivityError):
            raise first
        messages = "; ".join(error_of(f).message for f in failures if isinstance(f, ActivityError))
        raise ApplicationError(messages, type=error_of(first).type)
    done = [o for o in outcomes if isinstance(o, DeployBaselineResult)]
    deployed = [d.stack_set_name for d in done if not d.already_current]
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
