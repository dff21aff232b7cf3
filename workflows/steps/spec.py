"""What a step table's entry is (``StepSpec``), and the two shapes most entries take: a step
that is one activity, and an undo that is one activity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from common.models import RequestState, VendingInput
    from workflows.steps.context import StepContext, StepOutcome

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=StepOutcome)

StepRun = Callable[[StepContext], Awaitable[StepOutcome]]
Undo = Callable[[StepContext], Awaitable[StepOutcome | None]]  # None: nothing to undo


def _no(_: VendingInput) -> bool:
    return False


@dataclass(frozen=True)
class StepSpec:
    run: StepRun
    holds_control_tower_slot: Callable[[VendingInput], bool] = _no
    undo: Undo | None = None


def activity_step(
    method: Callable[[Any, In], Out],
    make_input: Callable[[VendingInput, RequestState], In],
    record: Callable[[RequestState, Out], None] | None = None,
) -> StepRun:
    """A step that is one activity: build its input, run it, keep what it made."""

    async def run(ctx: StepContext) -> StepOutcome:
        result = await ctx.activity(method, make_input(ctx.inp, ctx.state))
        if record is not None:
            record(ctx.state, result)
        return result

    return run


def activity_undo(
    method: Callable[[Any, In], Out],
    make_input: Callable[[VendingInput, RequestState], In | None],
) -> Undo:
    """An undo that is one activity, or nothing when the step made nothing."""

    async def undo(ctx: StepContext) -> StepOutcome | None:
        arg = make_input(ctx.inp, ctx.state)
        return None if arg is None else await ctx.activity(method, arg)

    return undo
