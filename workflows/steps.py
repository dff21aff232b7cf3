"""The step table: what each step of a request runs, with what input, and what it records.

Adding a step is one entry here plus its activity (or, for a step that orchestrates several
activities, a method on the workflow named by ``run``); the runner in ``vending.py`` does the
rest: status, attempts, timings, parking on failure, operator retry. A name in ``STEP_NAMES``
without an entry stays ``pending``: it is not wired in this version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from activities.billing import (
        BillingActivities,
        BillingInput,
        BillingResult,
        RegistrationInput,
    )
    from activities.organizations import (
        CreateAccountInput,
        CreateAccountResult,
        MoveToOuInput,
        MoveToOuResult,
        OrganizationsActivities,
        SuspendInput,
    )
    from activities.workload_security import (
        WorkloadSecurityActivities,
        WorkloadSecurityInput,
        WorkloadSecurityResult,
    )
    from common.landing_zone import EnrollmentStrategy
    from common.models import RequestState, VendingInput


def _never(_: VendingInput) -> str | None:
    return None


def _no(_: VendingInput) -> bool:
    return False


def _ignore(_: RequestState, __: Any) -> None:
    return None


@dataclass(frozen=True)
class StepSpec:
    activity: Callable[..., Any] | None = None
    make_input: Callable[[VendingInput, RequestState], BaseModel] | None = None
    record: Callable[[RequestState, Any], None] = _ignore
    run: str | None = None  # name of a workflow method, for steps made of several activities
    skip_reason: Callable[[VendingInput], str | None] = _never
    holds_control_tower_slot: Callable[[VendingInput], bool] = _no
    # How a cancellation undoes the step: an activity and its input, or a workflow method.
    undo: Callable[..., Any] | None = None
    undo_input: Callable[[VendingInput, RequestState], BaseModel | None] | None = None
    undo_run: str | None = None


def _create_account_input(inp: VendingInput, _: RequestState) -> CreateAccountInput:
    return CreateAccountInput(
        request_id=inp.request_id,
        account_name=inp.request.account_name,
        account_email=inp.request.account_email,
    )


def _record_account(state: RequestState, result: CreateAccountResult) -> None:
    state.account_id = result.account_id


def _move_input(inp: VendingInput, state: RequestState) -> MoveToOuInput:
    assert state.account_id, "move_to_ou runs after create_account"
    return MoveToOuInput(
        request_id=inp.request_id,
        account_id=state.account_id,
        ou_path=inp.ou.path,
        tags={
            **inp.request.tags,
            "vending:environment": inp.request.environment.value,
            "vending:cost-center": inp.request.cost_center,
            "vending:owner": inp.request.owner_email,
        },
    )


def _record_ou(state: RequestState, result: MoveToOuResult) -> None:
    state.organizational_unit_id = result.ou_id


def _auto_enrolls(inp: VendingInput) -> bool:
    """With auto-enrollment, MoveAccount starts a Control Tower operation: it needs a slot."""
    return inp.ou.enrollment == EnrollmentStrategy.auto_enroll


def _not_governed(inp: VendingInput) -> str | None:
    if inp.ou.enrollment == EnrollmentStrategy.none:
        return f"OU {inp.ou.path} is not governed by Control Tower"
    return None


def _no_baselines(inp: VendingInput) -> str | None:
    return None if inp.ou.baseline_stack_sets else f"OU {inp.ou.path} has no baseline StackSets"


def _unprotected(inp: VendingInput) -> str | None:
    if inp.protect_workload_security:
        return None
    return f"Workload Security is not required by OU {inp.ou.path} nor asked for by the request"


def _ws_input(inp: VendingInput, state: RequestState) -> WorkloadSecurityInput:
    assert state.account_id
    return WorkloadSecurityInput(
        request_id=inp.request_id,
        account_id=state.account_id,
        account_name=inp.request.account_name,
        policy=inp.request.workload_security.policy,
    )


def _record_connector(state: RequestState, result: WorkloadSecurityResult) -> None:
    state.workload_security_connector_id = result.connector_id


def _billing_input(inp: VendingInput, state: RequestState) -> BillingInput:
    assert state.account_id
    return BillingInput(
        request_id=inp.request_id,
        account_id=state.account_id,
        account_name=inp.request.account_name,
        customer_id=inp.request.billing.customer_id,
        plan=inp.request.billing.plan,
        cost_center=inp.request.cost_center,
        contact_email=inp.request.owner_email,
        workload_security=inp.protect_workload_security,
        run=next(s.attempts for s in state.steps if s.name == "register_billing") + 1,
    )


def _record_registration(state: RequestState, result: BillingResult) -> None:
    state.billing_registration_id = result.registration_id


def _suspend_input(inp: VendingInput, state: RequestState) -> SuspendInput | None:
    if not state.account_id:
        return None  # nothing was created
    return SuspendInput(
        request_id=inp.request_id,
        account_id=state.account_id,
        suspended_ou_path=inp.ou.suspended_ou,
        close=inp.ou.close_cancelled_accounts,
    )


def _registration_input(_: VendingInput, state: RequestState) -> RegistrationInput | None:
    if not state.billing_registration_id:
        return None
    return RegistrationInput(registration_id=state.billing_registration_id)


def _ws_undo_input(inp: VendingInput, state: RequestState) -> WorkloadSecurityInput | None:
    return _ws_input(inp, state) if state.account_id else None


STEPS: dict[str, StepSpec] = {
    "create_account": StepSpec(
        OrganizationsActivities.create_account,
        _create_account_input,
        _record_account,
        undo=OrganizationsActivities.suspend_account,
        undo_input=_suspend_input,
    ),
    "move_to_ou": StepSpec(
        OrganizationsActivities.move_to_ou,
        _move_input,
        _record_ou,
        holds_control_tower_slot=_auto_enrolls,
    ),
    "enroll_control_tower": StepSpec(run="_enroll_control_tower", skip_reason=_not_governed),
    "apply_baselines": StepSpec(
        run="_apply_baselines", skip_reason=_no_baselines, undo_run="_remove_baselines"
    ),
    "enroll_workload_security": StepSpec(
        WorkloadSecurityActivities.enroll_workload_security,
        _ws_input,
        _record_connector,
        skip_reason=_unprotected,
        undo=WorkloadSecurityActivities.remove_workload_security,
        undo_input=_ws_undo_input,
    ),
    "register_billing": StepSpec(
        BillingActivities.register_billing,
        _billing_input,
        _record_registration,
        undo=BillingActivities.deregister_billing,
        undo_input=_registration_input,
    ),
}
