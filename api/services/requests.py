"""Reading account requests and deciding them: who may see one, its state (or its record while
no worker answers), the decisions sent to it, and its pages."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowHandle

from api.errors import Problem, refusal_problem
from api.schemas import AccountRequestSummary, AccountRequestView, PublicStatus, RetryBody
from api.temporal_calls import decided, memo_fields, query_or_recorded
from common import search_attributes as sa
from common import vending_contract as contract
from common.intake import check_against_landing_zone, protects
from common.landing_zone import LandingZone
from common.models import (
    AccountRequest,
    Principal,
    RequestKind,
    RequestState,
    RequestStatus,
    RetryInput,
    Role,
)
from common.settings import Settings
from common.temporal_client import WORKFLOW_ID_PREFIX, workflow_id

NOT_FOUND = Problem(404, "Not found", "no such account request")


def request_view(
    state: RequestState, settings: Settings, *, stale: bool = False
) -> AccountRequestView:
    ui = (
        f"{settings.temporal.ui_url.rstrip('/')}/namespaces/{settings.temporal.namespace}"
        f"/workflows/{workflow_id(state.id)}"
    )
    return AccountRequestView.of(state, ui, stale=stale)


def request_handle(client: Client, request_id: str) -> WorkflowHandle[Any, Any]:
    try:
        parsed = str(uuid.UUID(request_id))
    except ValueError as err:
        raise NOT_FOUND from err
    return client.get_workflow_handle(workflow_id(parsed))


async def visible_state(
    handle: WorkflowHandle[Any, Any], user: Principal, settings: Settings
) -> tuple[RequestState, bool]:
    """The request's state if this user may see it; 404 otherwise (no existence leak)."""
    state, stale = await query_or_recorded(
        handle,
        contract.GET_STATE,
        contract.STATE_MEMO,
        RequestState,
        settings,
        missing=NOT_FOUND,
        unrecorded="no worker answered and nothing was recorded; try again",
    )
    if state.status in (RequestStatus.invalid, RequestStatus.validating):
        raise NOT_FOUND
    if state.requested_by != user.sub and not user.has(Role.approver, Role.operator, Role.admin):
        raise NOT_FOUND
    return state, stale


def refusal(state: RequestState) -> Problem:
    assert state.refusal is not None
    return refusal_problem(state.refusal.type, state.refusal.message)


async def decide(
    client: Client,
    settings: Settings,
    request_id: str,
    user: Principal,
    update: str,
    arg: Any,
    *,
    requester_may: bool = False,
) -> AccountRequestView:
    """Send one decision (an update) to a request the user may see. ``requester_may``: its
    requester may send it too (besides operators). ``arg`` may be a function of the request's
    state, for an input that depends on the request as it stands."""
    handle = request_handle(client, request_id)
    state, _ = await visible_state(handle, user, settings)
    is_owner = state.requested_by == user.sub
    if requester_may and not is_owner and not user.has(Role.operator, Role.admin):
        raise Problem(403, "Forbidden", "only the requester or an operator may do this")
    if callable(arg):
        arg = arg(state)
    ended = f"the request is {state.status.value} and can no longer change"
    new_state = await decided(handle, update, arg, RequestState, settings, ended=ended)
    return request_view(new_state, settings)


def list_clauses(
    user: Principal, status_filter: PublicStatus | None, kind: RequestKind | None
) -> list[str]:
    """The visibility query of a request list: never the refused or unfinished ones; a
    requester sees only their own."""
    clauses = [
        f"WorkflowType = {sa.quote(contract.WORKFLOW)}",
        f"{sa.STATUS.name} != {sa.quote(RequestStatus.invalid.value)}",
        f"{sa.STATUS.name} != {sa.quote(RequestStatus.validating.value)}",
    ]
    if status_filter is not None:
        clauses.append(f"{sa.STATUS.name} = {sa.quote(status_filter.value)}")
    if kind == RequestKind.vend:  # requests from before kinds existed carry none: vends
        clauses.append(f"({sa.KIND.name} = {sa.quote(kind.value)} OR {sa.KIND.name} IS NULL)")
    elif kind is not None:
        clauses.append(f"{sa.KIND.name} = {sa.quote(kind.value)}")
    if not user.has(Role.approver, Role.operator, Role.admin):
        clauses.append(f"{sa.REQUESTER.name} = {sa.quote(user.sub)}")
    return clauses


# What a list row shows of the memo.
ROW_MEMO_FIELDS = ("account_name", "organizational_unit", "environment", "requested_by")


async def summary(wf: WorkflowExecution) -> AccountRequestSummary:
    memo = await memo_fields(wf, ROW_MEMO_FIELDS)
    attrs = wf.typed_search_attributes
    return AccountRequestSummary(
        id=wf.id.removeprefix(WORKFLOW_ID_PREFIX),
        kind=attrs.get(sa.KIND) or RequestKind.vend.value,
        status=attrs.get(sa.STATUS) or "unknown",
        account_name=memo.get("account_name"),
        organizational_unit=memo.get("organizational_unit"),
        environment=memo.get("environment"),
        requested_by=memo.get("requested_by"),
        created_at=wf.start_time,
        account_id=attrs.get(sa.ACCOUNT_ID),
        current_step=attrs.get(sa.STEP),
    )


def retry_input(
    state: RequestState, body: RetryBody, user: Principal, lz: LandingZone
) -> RetryInput:
    """A retry's input; its corrections are checked against the landing zone, as a new
    request's fields are."""
    inp = RetryInput(by=user.sub, step=str(body.step.value), reason=body.reason)
    if body.account_email is None and body.organizational_unit is None:
        return inp
    changes: dict[str, Any] = {}
    if body.account_email is not None:
        changes["account_email"] = body.account_email.lower()
    if body.organizational_unit is not None:
        changes["organizational_unit"] = body.organizational_unit.strip("/")
    corrected = AccountRequest.model_validate({**state.request.model_dump(), **changes})
    ou = check_against_landing_zone(corrected, lz)
    inp.account_email = changes.get("account_email")
    if "organizational_unit" in changes:
        inp.ou, inp.protect_workload_security = ou, protects(corrected, ou)
    return inp
