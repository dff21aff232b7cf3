"""What an operator may do with a request: retry a failed step (with corrections), skip it when
the landing zone allows, or cancel. The checks are plain functions of the state, run by the
update validators before anything is written to history; the decision itself waits here for the
step runner, which acts on it."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from common import step_registry as steps
    from common.models import (
        CancelInput,
        RequestState,
        RequestStatus,
        RetryInput,
        SkipInput,
        StepStatus,
        VendingInput,
    )

Decision = RetryInput | SkipInput | CancelInput


class OperatorActions:
    def __init__(self) -> None:
        self.decision: Decision | None = None

    def decide(self, decision: Decision) -> None:
        self.decision = decision

    async def next_decision(self) -> Decision:
        """Wait, parked, until an operator (or the requester, for cancel) decides."""
        await workflow.wait_condition(lambda: self.decision is not None)
        decision, self.decision = self.decision, None
        assert decision is not None
        return decision


def check_cancel(state: RequestState) -> None:
    if state.status not in (RequestStatus.pending_approval, RequestStatus.waiting_for_operator):
        raise ApplicationError(
            f"the request is {state.status.value}; it can be cancelled only while waiting for "
            "approval or for an operator",
            type="InvalidState",
        )
    closing = next((s for s in state.steps if s.name == steps.CLOSE_ACCOUNT.name), None)
    if closing is not None and closing.status != StepStatus.pending:
        # From here a decommission only goes forward: a closure is not undone by a cancel.
        raise ApplicationError(
            "close_account has started: an account closure cannot be undone by a cancel; "
            "retry the step (a closed account can be reopened within 90 days through AWS "
            "Support)",
            type="InvalidState",
        )


def check_retry(state: RequestState, inp: RetryInput) -> None:
    failed = next((s for s in state.steps if s.status == StepStatus.failed), None)
    if state.status != RequestStatus.waiting_for_operator or failed is None:
        raise ApplicationError(
            f"the request is {state.status.value}; only a request waiting for an operator can "
            "be retried",
            type="InvalidState",
        )
    if failed.name != inp.step:
        raise ApplicationError(
            f"step {inp.step} has not failed; the failed step is {failed.name}",
            type="InvalidState",
        )
    corrects = steps.STEPS[inp.step].corrects
    if inp.account_email is not None and "account_email" not in corrects:
        raise ApplicationError(
            f"the account email can be corrected only when {_correcting('account_email')} failed",
            type="InvalidState",
        )
    if inp.ou is not None:
        if "organizational_unit" not in corrects:
            raise ApplicationError(
                f"the OU can be corrected only when {_correcting('organizational_unit')} failed",
                type="InvalidState",
            )
        given = len(state.approvals)
        if inp.ou.approvals_required > given:
            raise ApplicationError(
                f"OU {inp.ou.path} needs {inp.ou.approvals_required} approvals and this "
                f"request has {given}; cancel it and request the account there",
                type="InvalidState",
            )


def check_skip(state: RequestState, current: VendingInput, inp: SkipInput) -> None:
    check_retry(state, RetryInput(by=inp.by, step=inp.step))
    if inp.step not in current.ou.skippable_steps:
        allowed = ", ".join(current.ou.skippable_steps) or "none"
        raise ApplicationError(
            f"step {inp.step} may not be skipped (skippable: {allowed})", type="InvalidState"
        )


def _correcting(field: str) -> str:
    return " or ".join(name for name, step in steps.STEPS.items() if field in step.corrects)
