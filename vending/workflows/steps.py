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

    from vending.activities.organizations import (
        CreateAccountInput,
        CreateAccountResult,
        MoveToOuInput,
        MoveToOuResult,
        OrganizationsActivities,
    )
    from vending.landing_zone import EnrollmentStrategy
    from vending.models import RequestState, VendingInput


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
    skippable: bool = False


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


STEPS: dict[str, StepSpec] = {
    "create_account": StepSpec(
        OrganizationsActivities.create_account, _create_account_input, _record_account
    ),
    "move_to_ou": StepSpec(
        OrganizationsActivities.move_to_ou,
        _move_input,
        _record_ou,
        holds_control_tower_slot=_auto_enrolls,
    ),
    "enroll_control_tower": StepSpec(run="_enroll_control_tower", skip_reason=_not_governed),
    "apply_baselines": StepSpec(run="_apply_baselines", skip_reason=_no_baselines),
}
