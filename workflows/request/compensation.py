"""Cancel's compensation: undo, newest first, every step that did (or may have half-done) work.

Each undo is idempotent; one that fails is recorded and the others still run, so a cancellation
never parks again.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from common.models import CompensationRecord, StepStatus
    from workflows.request.failures import error_of
    from workflows.request.record import SYSTEM
    from workflows.steps.context import StepContext
    from workflows.steps.spec import StepSpec


async def compensate(ctx: StepContext, table: dict[str, StepSpec]) -> None:
    record = ctx.record
    for name in reversed(tuple(table)):
        undo = table[name].undo
        if undo is None or record.step(name).status not in (
            StepStatus.succeeded,
            StepStatus.failed,
        ):
            continue
        try:
            result = await undo(ctx)
            if result is None:
                continue  # the step made nothing to undo
            outcome, detail = "undone", result.detail or "done"
        except (ActivityError, ApplicationError) as err:
            error = error_of(err)
            outcome, detail = "failed", f"{error.type}: {error.message}"
        record.state.compensations.append(
            CompensationRecord(step=name, status=outcome, detail=detail, at=workflow.now())
        )
        record.event(SYSTEM, f"undo:{name}", outcome, detail)
        record.touch()
