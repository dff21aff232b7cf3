"""The adoption's step table: an existing account brought under management, nothing created.

``verify_access`` comes first because every later step acts in the account through its
execution role; the rest are the vend's own steps from ``move_to_ou`` on, so an adopted
account ends exactly as a vended one does (in its OU, enrolled, baselined, protected, billed).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.account_lifecycle import AdoptionActivities, VerifyAccessInput
    from common import step_registry as steps
    from common.models import RequestState, VendingInput
    from common.step_registry import Step
    from workflows.steps.spec import StepSpec, activity_step
    from workflows.steps.vend import VEND


def _verify_input(_: VendingInput, state: RequestState) -> VerifyAccessInput:
    assert state.account_id, "an adoption names its account"
    return VerifyAccessInput(account_id=state.account_id)


ADOPTION: dict[Step, StepSpec] = {
    steps.VERIFY_ACCESS: StepSpec(activity_step(AdoptionActivities.verify_access, _verify_input)),
    **{step: spec for step, spec in VEND.items() if step is not steps.CREATE_ACCOUNT},
}
