"""``/v1/account-requests``: thin handlers; the workflow holds the state and enforces the rules."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowHandle,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import cursor as cursors
from api.assembly import request_id_for, start_operation, vending_input
from api.deps import (
    Approver,
    ClientDep,
    CurrentUser,
    LandingZoneDep,
    LimiterDep,
    Operator,
    Requester,
    SettingsDep,
)
from api.errors import Problem, refusal_problem
from api.event_reads import request_events
from api.intake import body_fingerprint, check_against_landing_zone, protects
from api.openapi import problems
from api.queues import queue_lengths
from api.quotas import below_open_quota
from api.schemas import (
    AccountRequestPage,
    AccountRequestSummary,
    AccountRequestView,
    ApproveBody,
    CancelBody,
    EventsView,
    NewAccountRequest,
    PublicStatus,
    RejectBody,
    RetryBody,
    SkipBody,
)
from common import search_attributes as sa
from common import vending_contract as contract
from common.models import (
    AccountRequest,
    ApproveInput,
    CancelInput,
    Principal,
    RejectInput,
    RequestKind,
    RequestPlan,
    RequestState,
    RequestStatus,
    RetryInput,
    Role,
    SkipInput,
    SubmitInput,
    VendingInput,
)
from common.settings import Settings
from common.step_plan import plan
from common.temporal_client import WORKFLOW_ID_PREFIX, workflow_id

router = APIRouter(
    prefix="/v1/account-requests",
    tags=["account-requests"],
    responses=problems(400, 401, 403, 413, 422, 429, 503),
)
NOT_FOUND = Problem(404, "Not found", "no such account request")


def _ui_url(settings: Settings, request_id: str) -> str:
    return (
        f"{settings.temporal.ui_url.rstrip('/')}/namespaces/{settings.temporal.namespace}"
        f"/workflows/{workflow_id(request_id)}"
    )


def request_view(
    state: RequestState, settings: Settings, *, stale: bool = False
) -> AccountRequestView:
    return AccountRequestView.of(state, _ui_url(settings, state.id), stale=stale)


def _parse_id(request_id: str) -> str:
    try:
        return str(uuid.UUID(request_id))
    except ValueError as err:
        raise NOT_FOUND from err


async def _read_state(
    handle: WorkflowHandle[Any, Any], settings: Settings
) -> tuple[RequestState, bool]:
    """The request's state from its workflow (a query); while no worker answers, what Temporal
    recorded at the last status change (the memo), flagged stale, instead of an error."""
    try:
        state: RequestState = await handle.query(
            contract.GET_STATE,
            result_type=RequestState,
            rpc_timeout=timedelta(seconds=settings.temporal.query_timeout_seconds),
        )
        return state, False
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise
        try:
            described = await handle.describe(rpc_timeout=_update_timeout(settings))
            recorded: RequestState | None = await described.memo_value(
                contract.STATE_MEMO, None, type_hint=RequestState
            )
        except RPCError:
            recorded = None
        if recorded is None:  # a request from before state-in-memo, or Temporal itself is down
            raise Problem(
                503, "Unavailable", "no worker answered and nothing was recorded; try again"
            ) from err
        return recorded, True


async def _visible_state(
    handle: WorkflowHandle[Any, Any], user: Principal, settings: Settings
) -> tuple[RequestState, bool]:
    """The request's state if this user may see it; 404 otherwise (no existence leak)."""
    state, stale = await _read_state(handle, settings)
    if state.status in (RequestStatus.invalid, RequestStatus.validating):
        raise NOT_FOUND
    if state.requested_by != user.sub and not user.has(Role.approver, Role.operator, Role.admin):
        raise NOT_FOUND
    return state, stale


def _refusal_problem(state: RequestState) -> Problem:
    assert state.refusal is not None
    return refusal_problem(state.refusal.type, state.refusal.message)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountRequestView,
    responses=problems(409),
)
async def create_account_request(
    asked: NewAccountRequest,
    user: Requester,
    client: ClientDep,
    settings: SettingsDep,
    lz: LandingZoneDep,
    limiter: LimiterDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> AccountRequestView:
    body = asked.resolved(lz)
    ou = check_against_landing_zone(body, lz)
    limiter.take(user.sub, "create")
    await below_open_quota(client, settings, user)
    request_id = request_id_for(user, idempotency_key)
    inp = vending_input(request_id, body, user, ou, settings)
    inp.plan = plan(inp, await queue_lengths(client))
    state = await submit_request(client, settings, inp)
    response.headers["Location"] = f"/v1/account-requests/{request_id}"
    return request_view(state, settings)


@router.post("/preview", response_model=RequestPlan)
async def preview_account_request(
    asked: NewAccountRequest,
    user: Requester,
    client: ClientDep,
    settings: SettingsDep,
    lz: LandingZoneDep,
    limiter: LimiterDep,
) -> RequestPlan:
    """What this request would do, before anyone approves it: the steps that would run and
    what each creates, the approvals, the cost estimate, an ETA from the queues. Nothing is
    written; the same plan is kept on the request when it is made."""
    limiter.take(user.sub, "preview")
    body = asked.resolved(lz)
    ou = check_against_landing_zone(body, lz)
    inp = vending_input(request_id_for(user, None), body, user, ou, settings)
    return plan(inp, await queue_lengths(client))


async def submit_request(client: Client, settings: Settings, inp: VendingInput) -> RequestState:
    """Start the request's workflow and have it validate, in one call (update-with-start): the
    answer is the request accepted, or its refusal as a problem. A replayed Idempotency-Key
    finds the same workflow, open or closed."""
    request_id, fingerprint = inp.request_id, inp.body_sha256
    start = start_operation(inp, settings)
    try:
        state: RequestState = await client.execute_update_with_start_workflow(
            contract.SUBMIT,
            SubmitInput(body_sha256=fingerprint),
            start_workflow_operation=start,
            result_type=RequestState,
            rpc_timeout=_update_timeout(settings),
        )
    except WorkflowAlreadyStartedError:
        # Only an Idempotency-Key replay of a request whose workflow has closed lands here.
        state = await client.get_workflow_handle(workflow_id(request_id)).query(
            contract.GET_STATE, result_type=RequestState
        )
        if state.kind == RequestKind.vend and body_fingerprint(state.request) != fingerprint:
            raise Problem(
                422,
                "Invalid request",
                "this Idempotency-Key was already used with a different request body",
                kind="idempotencykeyreused",
            ) from None
        if state.refusal is not None:
            raise _refusal_problem(state) from None
    return state


def _update_timeout(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.temporal.update_timeout_seconds)


async def _summary(wf: WorkflowExecution) -> AccountRequestSummary:
    memo = await wf.memo()
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


@router.get("", response_model=AccountRequestPage)
async def list_account_requests(
    user: CurrentUser,
    client: ClientDep,
    settings: SettingsDep,
    status_filter: Annotated[PublicStatus | None, Query(alias="status")] = None,
    kind: RequestKind | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> AccountRequestPage:
    """Open requests newest first, then closed ones by when they closed (Temporal's visibility
    order: SQL visibility stores have no ORDER BY). Requesters see only their own requests.

    Visibility is eventually consistent: a request created a moment ago may appear a moment later.
    """
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
    key = settings.cursor_secret.get_secret_value().encode()
    token: bytes | None = None
    if cursor:
        try:
            token = cursors.decode(cursor, key)
        except cursors.InvalidCursor as err:
            raise Problem(422, "Invalid request", str(err), kind="validation") from err
    it = client.list_workflows(
        " AND ".join(clauses),
        page_size=limit,
        next_page_token=token,
        rpc_timeout=_update_timeout(settings),
    )
    await it.fetch_next_page(page_size=limit)
    items = [await _summary(wf) for wf in it.current_page or []]
    nxt = it.next_page_token
    return AccountRequestPage(items=items, next_cursor=cursors.encode(nxt, key) if nxt else None)


@router.get("/{request_id}", response_model=AccountRequestView, responses=problems(404))
async def get_account_request(
    request_id: str, user: CurrentUser, client: ClientDep, settings: SettingsDep
) -> AccountRequestView:
    handle = client.get_workflow_handle(workflow_id(_parse_id(request_id)))
    state, stale = await _visible_state(handle, user, settings)
    return request_view(state, settings, stale=stale)


@router.get("/{request_id}/events", response_model=EventsView, responses=problems(404))
async def get_account_request_events(
    request_id: str, user: CurrentUser, client: ClientDep, settings: SettingsDep
) -> EventsView:
    handle = client.get_workflow_handle(workflow_id(_parse_id(request_id)))
    await _visible_state(handle, user, settings)
    events, stale = await request_events(handle, settings)
    return EventsView(items=events, stale=stale)


async def _decide(
    request_id: str,
    user: Principal,
    client: Client,
    settings: Settings,
    update: str,
    arg: Any,
    *,
    requester_may: bool = False,
) -> AccountRequestView:
    """Send one decision (an update) to a request the user may see.

    The workflow's validators own the rules (state, self-approval, wrong step); an update that
    reaches a request which has already closed is a conflict, not a missing request.
    """
    handle = client.get_workflow_handle(workflow_id(_parse_id(request_id)))
    state, _ = await _visible_state(handle, user, settings)
    is_owner = state.requested_by == user.sub
    if requester_may and not is_owner and not user.has(Role.operator, Role.admin):
        raise Problem(403, "Forbidden", "only the requester or an operator may do this")
    if callable(arg):
        arg = arg(state)  # an input that depends on the request as it stands
    try:
        new_state = await handle.execute_update(
            update, arg, result_type=RequestState, rpc_timeout=_update_timeout(settings)
        )
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        raise Problem(
            409, "Conflict", f"the request is {state.status.value} and can no longer change"
        ) from err
    return request_view(new_state, settings)


@router.post(
    "/{request_id}/approve", response_model=AccountRequestView, responses=problems(404, 409)
)
async def approve_account_request(
    request_id: str, body: ApproveBody, user: Approver, client: ClientDep, settings: SettingsDep
) -> AccountRequestView:
    """Approve (approvers). Nobody approves their own request, nor one about an account they
    own (or would own); each approver counts once."""
    return await _decide(
        request_id,
        user,
        client,
        settings,
        contract.APPROVE,
        ApproveInput(by=user.sub, comment=body.comment, email=user.email),
    )


@router.post(
    "/{request_id}/reject", response_model=AccountRequestView, responses=problems(404, 409)
)
async def reject_account_request(
    request_id: str, body: RejectBody, user: Approver, client: ClientDep, settings: SettingsDep
) -> AccountRequestView:
    """Reject with a reason (approvers)."""
    return await _decide(
        request_id,
        user,
        client,
        settings,
        contract.REJECT,
        RejectInput(by=user.sub, reason=body.reason),
    )


@router.post(
    "/{request_id}/cancel", response_model=AccountRequestView, responses=problems(404, 409)
)
async def cancel_account_request(
    request_id: str, body: CancelBody, user: CurrentUser, client: ClientDep, settings: SettingsDep
) -> AccountRequestView:
    """Cancel (its requester, or an operator) while it waits for approval or for an operator;
    what was already done is undone in reverse order (see ``compensations``)."""
    return await _decide(
        request_id,
        user,
        client,
        settings,
        contract.CANCEL,
        CancelInput(by=user.sub, reason=body.reason),
        requester_may=True,
    )


@router.post(
    "/{request_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AccountRequestView,
    responses=problems(404, 409),
)
async def retry_account_request_step(
    request_id: str,
    body: RetryBody,
    user: Operator,
    client: ClientDep,
    settings: SettingsDep,
    lz: LandingZoneDep,
) -> AccountRequestView:
    """Run a failed step again (operators); the request must be waiting for an operator.
    Corrections are checked against the landing zone here, as a new request's fields are."""

    def retry_input(state: RequestState) -> RetryInput:
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

    return await _decide(request_id, user, client, settings, contract.RETRY, retry_input)


@router.post(
    "/{request_id}/skip",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AccountRequestView,
    responses=problems(404, 409),
)
async def skip_account_request_step(
    request_id: str, body: SkipBody, user: Operator, client: ClientDep, settings: SettingsDep
) -> AccountRequestView:
    """Skip a failed step with a reason (operators; only steps the landing zone marks
    skippable, e.g. billing)."""
    return await _decide(
        request_id,
        user,
        client,
        settings,
        contract.SKIP,
        SkipInput(by=user.sub, step=str(body.step.value), reason=body.reason),
    )
