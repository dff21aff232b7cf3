"""The account-settings steps of the vend's table: each one activity, each undone by a cancel.

What each applies was resolved at intake (``VendingInput.settings``); a step whose setting the
OU does not apply is skipped by its rule (``common/step_registry.py``) before it gets here.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.account_settings import AccountSettingsActivities, ContactsInput, RegionsInput
    from activities.budgets import BudgetActivities, BudgetInput, BudgetRemoval
    from activities.identity_center import AccessInput, IdentityCenterActivities
    from activities.member_settings import (
        AliasInput,
        MemberSettingsActivities,
        VpcInput,
        VpcRestore,
        VpcResult,
    )
    from common import step_registry as steps
    from common.models import RequestState, VendingInput
    from common.step_registry import Step
    from workflows.steps.spec import StepSpec, activity_step, activity_undo


def _account(state: RequestState) -> str:
    assert state.account_id, "the settings steps run after create_account"
    return state.account_id


def _access(inp: VendingInput, state: RequestState) -> AccessInput:
    assert inp.settings.access is not None
    return AccessInput(account_id=_account(state), access=inp.settings.access)


def _budget(inp: VendingInput, state: RequestState) -> BudgetInput:
    assert inp.settings.budget is not None
    return BudgetInput(account_id=_account(state), budget=inp.settings.budget)


def _contacts(inp: VendingInput, state: RequestState) -> ContactsInput:
    return ContactsInput(account_id=_account(state), contacts=inp.settings.alternate_contacts)


def _alias(inp: VendingInput, state: RequestState) -> AliasInput:
    assert inp.settings.account_alias is not None
    return AliasInput(account_id=_account(state), alias=inp.settings.account_alias)


def _regions(inp: VendingInput, state: RequestState) -> RegionsInput:
    return RegionsInput(account_id=_account(state), regions=inp.settings.opt_in_regions)


def _vpcs(_: VendingInput, state: RequestState) -> VpcInput:
    return VpcInput(account_id=_account(state))


def _record_vpcs(state: RequestState, result: VpcResult) -> None:
    state.default_vpcs_deleted_in = sorted({*state.default_vpcs_deleted_in, *result.deleted_in})


def _restore(_: VendingInput, state: RequestState) -> VpcRestore | None:
    if not state.default_vpcs_deleted_in:
        return None
    return VpcRestore(account_id=_account(state), regions=state.default_vpcs_deleted_in)


def _budget_removal(_: VendingInput, state: RequestState) -> BudgetRemoval:
    return BudgetRemoval(account_id=_account(state))


SETTINGS: dict[Step, StepSpec] = {
    steps.ASSIGN_ACCESS: StepSpec(
        activity_step(IdentityCenterActivities.assign_access, _access),
        undo=activity_undo(IdentityCenterActivities.remove_access, _access),
    ),
    steps.CREATE_BUDGET: StepSpec(
        activity_step(BudgetActivities.create_budget, _budget),
        undo=activity_undo(BudgetActivities.delete_budget, _budget_removal),
    ),
    steps.SET_ALTERNATE_CONTACTS: StepSpec(
        activity_step(AccountSettingsActivities.set_alternate_contacts, _contacts),
        undo=activity_undo(AccountSettingsActivities.remove_alternate_contacts, _contacts),
    ),
    steps.SET_ACCOUNT_ALIAS: StepSpec(
        activity_step(MemberSettingsActivities.set_account_alias, _alias),
        undo=activity_undo(MemberSettingsActivities.remove_account_alias, _alias),
    ),
    steps.ENABLE_REGIONS: StepSpec(
        activity_step(AccountSettingsActivities.enable_regions, _regions),
        undo=activity_undo(AccountSettingsActivities.disable_regions, _regions),
    ),
    steps.DELETE_DEFAULT_VPCS: StepSpec(
        activity_step(MemberSettingsActivities.delete_default_vpcs, _vpcs, _record_vpcs),
        undo=activity_undo(MemberSettingsActivities.restore_default_vpcs, _restore),
    ),
}
