"""The adoption's step table: an existing account brought under management, nothing created.

``verify_access`` comes first because every later step acts in the account through its
execution role; the rest are the vend's own steps from ``move_to_ou`` on, so an adopted
account ends exactly as a vended one does (in its OU, enrolled, baselined, protected, billed).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.account_lifecycle import AdoptionActivities, VerifyAccessInput
    from common.models import ADOPT_STEP_NAMES, RequestState, VendingInput
    from workflows.steps.vend import STEPS, StepSpec, activity_step


def _verify_input(_: VendingInput, state: RequestState) -> VerifyAccessInput:
    assert state.account_id, "an adoption names its account"
    return VerifyAccessInput(account_id=state.account_id)


ADOPT_STEPS: dict[str, StepSpec] = {
    "verify_access": StepSpec(activity_step(AdoptionActivities.verify_access, _verify_input)),
    **{name: spec for name, spec in STEPS.items() if name != "create_account"},
}
assert tuple(ADOPT_STEPS) == ADOPT_STEP_NAMES
