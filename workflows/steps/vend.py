"""What the vend's steps run: for each step of ``common/step_registry.py``'s vend table, the
activity and its input (or a step function such as ``enroll_control_tower``), whether it needs
a Control Tower slot, and how a cancellation undoes it. Which steps run, in what order and when
they are skipped is the registry's; the runner (``runner.py``) does the rest: status,
attempts, timings, parking on failure, operator retry and skip.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
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
    from common import step_registry as steps
    from common.landing_zone import EnrollmentStrategy
    from common.models import RequestState, VendingInput
    from common.step_registry import Step
    from workflows.steps.account_settings import SETTINGS
    from workflows.steps.baselines import APPLY_BASELINES
    from workflows.steps.enrollment import ENROLL_CONTROL_TOWER
    from workflows.steps.spec import StepSpec, activity_step, activity_undo


def _create_account_input(inp: VendingInput, _: RequestState) -> CreateAccountInput:
    return CreateAccountInput(
        request_id=inp.request_id,
        account_name=inp.request.account_name,
        account_email=inp.request.account_email,
    )


def _record_account(state: RequestState, result: CreateAccountResult) -> None:
    state.account_id = result.account_id


def move_input(inp: VendingInput, state: RequestState) -> MoveToOuInput:
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


def ws_input(inp: VendingInput, state: RequestState) -> WorkloadSecurityInput:
    assert state.account_id
    return WorkloadSecurityInput(
        request_id=inp.request_id,
        account_id=state.account_id,
        account_name=inp.request.account_name,
        policy=inp.request.workload_security.policy,
    )


def record_connector(state: RequestState, result: WorkloadSecurityResult) -> None:
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
        run=next(s.attempts for s in state.steps if s.name == steps.REGISTER_BILLING.name) + 1,
    )


def record_registration(state: RequestState, result: BillingResult) -> None:
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
    return ws_input(inp, state) if state.account_id else None


VEND: dict[Step, StepSpec] = {
    steps.CREATE_ACCOUNT: StepSpec(
        activity_step(
            OrganizationsActivities.create_account, _create_account_input, _record_account
        ),
        undo=activity_undo(OrganizationsActivities.suspend_account, _suspend_input),
    ),
    steps.MOVE_TO_OU: StepSpec(
        activity_step(OrganizationsActivities.move_to_ou, move_input, _record_ou),
        holds_control_tower_slot=_auto_enrolls,
    ),
    steps.ENROLL_CONTROL_TOWER: ENROLL_CONTROL_TOWER,
    steps.APPLY_BASELINES: APPLY_BASELINES,
    **SETTINGS,
    steps.ENROLL_WORKLOAD_SECURITY: StepSpec(
        activity_step(
            WorkloadSecurityActivities.enroll_workload_security, ws_input, record_connector
        ),
        undo=activity_undo(WorkloadSecurityActivities.remove_workload_security, _ws_undo_input),
    ),
    steps.REGISTER_BILLING: StepSpec(
        activity_step(BillingActivities.register_billing, _billing_input, record_registration),
        undo=activity_undo(BillingActivities.deregister_billing, _registration_input),
    ),
}
