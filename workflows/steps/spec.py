"""What a step does (``StepSpec``): how it runs, how a cancel undoes it, whether it needs a
Control Tower slot, and which activities it may call (the worker must register each: a test
holds it). The two shapes most steps take, one activity to run and one to undo, declare their
activity themselves; a step written as a function names its activities in ``uses``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from common.models import RequestState, VendingInput
    from workflows.steps.context import StepContext, StepOutcome

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=StepOutcome)

StepRun = Callable[[StepContext], Awaitable[StepOutcome]]
Undo = Callable[[StepContext], Awaitable[StepOutcome | None]]  # None: nothing to undo
Activity = Callable[..., Any]  # an activity method, as workflows name them (Class.method)


def _no(_: VendingInput) -> bool:
    return False


@dataclass(frozen=True)
class StepSpec:
    run: StepRun
    holds_control_tower_slot: Callable[[VendingInput], bool] = _no
    undo: Undo | None = None
    uses: tuple[Activity, ...] = ()  # activities ``run`` and ``undo`` call themselves

    @property
    def activities(self) -> tuple[Activity, ...]:
        """Every activity this step may run, its undo's included."""
        found = list(self.uses)
        for part in (self.run, self.undo):
            found += getattr(part, "activities", ())
        return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class activity_step(Generic[In, Out]):
    """A step that is one activity: build its input, run it, keep what it made."""

    method: Callable[[Any, In], Out]
    make_input: Callable[[VendingInput, RequestState], In]
    record: Callable[[RequestState, Out], None] | None = None

    @property
    def activities(self) -> tuple[Activity, ...]:
        return (self.method,)

    async def __call__(self, ctx: StepContext) -> StepOutcome:
        result = await ctx.activity(self.method, self.make_input(ctx.inp, ctx.state))
        if self.record is not None:
            self.record(ctx.state, result)
        return result


@dataclass(frozen=True)
class activity_undo(Generic[In, Out]):
    """An undo that is one activity, or nothing when the step made nothing."""

    method: Callable[[Any, In], Out]
    make_input: Callable[[VendingInput, RequestState], In | None]

    @property
    def activities(self) -> tuple[Activity, ...]:
        return (self.method,)

    async def __call__(self, ctx: StepContext) -> StepOutcome | None:
        arg = self.make_input(ctx.inp, ctx.state)
        return None if arg is None else await ctx.activity(self.method, arg)
