"""Runs one step of the table until it succeeds, parking the request for an operator each time
it fails for good (the activity's own retries are spent): the step shows AWS's reason, the
request waits, and the operator's retry, skip or cancel decides what happens next."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from common.models import CancelInput, RequestStatus, SkipInput, StepStatus
    from common.preflight import PREREQUISITE_FAILED
    from common.step_plan import skip_reason
    from workflows.request import metrics
    from workflows.request.failures import error_of
    from workflows.request.operator_actions import OperatorActions
    from workflows.request.record import SYSTEM
    from workflows.steps.context import StepContext
    from workflows.steps.policy import attempts_of
    from workflows.steps.spec import StepSpec


async def run_step(name: str, spec: StepSpec, ctx: StepContext, operator: OperatorActions) -> bool:
    """True once the step succeeded or was skipped; False when cancelled while parked."""
    record = ctx.record
    step = record.step(name)
    skip = skip_reason(ctx.inp, name)  # the rule the preview showed (common/step_plan.py)
    if skip is not None:
        step.status, step.detail = StepStatus.skipped, skip
        record.event(SYSTEM, f"step:{name}", "skipped", skip)
        metrics.step_outcome(name, "skipped", None)
        return True
    held_back = 0  # how many times in a row a failed prerequisite held the step back
    while True:
        if not held_back:
            step.status, step.error, step.detail = StepStatus.running, None, None
            step.started_at, step.finished_at = workflow.now(), None
            record.current_step = name
            record.touch(step=name)
        try:
            if spec.holds_control_tower_slot(ctx.inp):
                await ctx.slot.acquire()
            result = await spec.run(ctx)
        except (ActivityError, ApplicationError) as err:
            error = error_of(err)
            if error.type == PREREQUISITE_FAILED:
                # The organization is not ready (``vend doctor``): wait and show why; this is
                # nobody's step to fix by retrying, and no attempt was made.
                await ctx.slot.release()
                wait = ctx.inp.step_policy.prerequisite_wait_seconds * 2 ** min(held_back, 3)
                if not held_back:
                    record.event(SYSTEM, f"step:{name}", "waiting", error.message)
                held_back += 1
                record.show(f"waiting for a prerequisite: {error.message}")
                await workflow.sleep(wait)
                continue
            held_back = 0
            step.attempts += attempts_of(err)
            step.status, step.error = StepStatus.failed, error_of(err)
            step.finished_at, step.queue_position = workflow.now(), None
            metrics.step_outcome(name, "failed", step.started_at)
            await ctx.slot.release()  # a parked request must not block others
            record.event(
                SYSTEM, f"step:{name}", "failed", f"{step.error.type}: {step.error.message}"
            )
            record.set_status(RequestStatus.waiting_for_operator)
            decision = await operator.next_decision()
            if isinstance(decision, CancelInput):
                return False
            if isinstance(decision, SkipInput):
                step.status, step.finished_at = StepStatus.skipped, workflow.now()
                step.detail = f"skipped by {decision.by}: {decision.reason}"
                record.touch(step=name)
                return True
            continue
        if held_back:
            record.event(SYSTEM, f"step:{name}", "resumed", "its prerequisites hold again")
        step.attempts += result.attempt
        step.status, step.finished_at = StepStatus.succeeded, workflow.now()
        metrics.step_outcome(name, "succeeded", step.started_at)
        step.detail, step.queue_position = result.detail, None
        record.event(SYSTEM, f"step:{name}", "succeeded", step.detail)
        record.touch(step=name)
        return True
