"""The step table: what each step of a request runs, with what input, and what it records.

Adding a step is one entry here plus its activity; the runner in ``vending.py`` does the rest
(status, attempts, timings, parking on failure, operator retry). A step name in
``STEP_NAMES`` without an entry stays ``pending``: it is not wired in this version.
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
    from vending.models import RequestState, VendingInput


@dataclass(frozen=True)
class StepSpec:
    activity: Callable[..., Any]
    make_input: Callable[[VendingInput, RequestState], BaseModel]
    record: Callable[[RequestState, Any], None]
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


STEPS: dict[str, StepSpec] = {
    "create_account": StepSpec(
        OrganizationsActivities.create_account, _create_account_input, _record_account
    ),
    "move_to_ou": StepSpec(OrganizationsActivities.move_to_ou, _move_input, _record_ou),
}
