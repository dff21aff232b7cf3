"""What a step sees while it runs: the request as it stands, and how it may act.

Steps are plain async functions of a :class:`StepContext`, so the step table can name them
directly (typed, checked by mypy) instead of naming workflow methods as strings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from common.models import RequestState, VendingInput
    from workflows.request.control_tower_slot import ControlTowerSlot
    from workflows.request.record import RequestRecord
    from workflows.request.stack_set_batch import StackSetBatches
    from workflows.steps.policy import activity_options

if TYPE_CHECKING:
    from workflows.request.close_quota_turn import CloseQuotaTurn

In = TypeVar("In")
Out = TypeVar("Out")


class StepOutcome(Protocol):
    """What every step returns: the attempt it succeeded on and a line for the person."""

    @property
    def attempt(self) -> int: ...

    @property
    def detail(self) -> str | None: ...


@dataclass
class StepContext:
    submitted: VendingInput  # the workflow's input: never changed
    record: RequestRecord
    slot: ControlTowerSlot
    close_quota: CloseQuotaTurn | None = None  # a decommission's place in the close quota
    batches: StackSetBatches | None = None  # new accounts' instances, with other requests'

    @property
    def inp(self) -> VendingInput:
        """The request as the steps run it: as submitted, with operators' corrections."""
        return self.submitted.corrected(self.state.corrections)

    @property
    def state(self) -> RequestState:
        return self.record.state

    def show(self, text: str, position: int | None = None) -> None:
        self.record.show(text, position)

    def attempts_so_far(self, step: str) -> int:
        return self.record.step(step).attempts

    async def activity(
        self, method: Callable[[Any, In], Out], arg: In, *, quick: bool = False
    ) -> Out:
        """Run one activity with the request's step policy (``quick``: a short lookup)."""
        result: Out = await workflow.execute_activity_method(
            method,
            arg,
            **activity_options(self.inp.step_policy, quick=quick),
        )
        return result
