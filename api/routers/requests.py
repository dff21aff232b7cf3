"""``/v1/account-requests``: thin handlers; the workflow holds the state and enforces the rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

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
from api.event_reads import request_events
from api.openapi import problems
from api.schemas import (
    AccountRequestPage,
    AccountRequestView,
    ApproveBody,
    CancelBody,
    EventsView,
    NewAccountRequest,
    PublicStatus,
    RejectBody,
    RequestPlanView,
    RetryBody,
    SkipBody,
)
from api.services import requests as service
from api.services.filing import FilingDep
from api.temporal_calls import visibility_page
from common import vending_contract as contract
from common.intake import check_against_landing_zone
from common.models import (
    ApproveInput,
    CancelInput,
    RejectInput,
    RequestKind,
    RequestState,
    RetryInput,
    SkipInput,
)
from common.request_start import request_id_for, vending_input

router = APIRouter(
    prefix="/v1/account-requests",
    tags=["account-requests"],
    responses=problems(400, 401, 403, 413, 422, 429, 503),
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountRequestView,
    responses=problems(409),
)
async def create_account_request(
    asked: NewAccountRequest,
    user: Requester,
    filing: FilingDep,
    lz: LandingZoneDep,
    limiter: LimiterDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> AccountRequestView:
    body = asked.resolved(lz)
    ou = check_against_landing_zone(body, lz)
    limiter.take(user.sub, "create")
    inp = vending_input(request_id_for(user, idempotency_key), body, user, ou, filing.settings)
    return await filing.file(inp, user, response)


@router.post("/preview", response_model=RequestPlanView)
async def preview_account_request(
    asked: NewAccountRequest,
    user: Requester,
    filing: FilingDep,
    lz: LandingZoneDep,
    limiter: LimiterDep,
) -> RequestPlanView:
    """What this request would do, before anyone approves it: the steps that would run and
    what each creates, the approvals, the cost estimate, an ETA from the queues. Nothing is
    written; the same plan is kept on the request when it is made."""
    limiter.take(user.sub, "preview")
    body = asked.resolved(lz)
    ou = check_against_landing_zone(body, lz)
    inp = vending_input(request_id_for(user, None), body, user, ou, filing.settings)
    return RequestPlanView.of(await filing.preview(inp))


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
    clauses = service.list_clauses(user, status_filter, kind)
    found, nxt = await visibility_page(client, clauses, settings, limit=limit, cursor=cursor)
    return AccountRequestPage(items=[await service.summary(wf) for wf in found], next_cursor=nxt)


@router.get("/{request_id}", response_model=AccountRequestView, responses=problems(404))
async def get_account_request(
    request_id: str, user: CurrentUser, client: ClientDep, settings: SettingsDep
) -> AccountRequestView:
    handle = service.request_handle(client, request_id)
    state, stale = await service.visible_state(handle, user, settings)
    return service.request_view(state, settings, stale=stale)


@router.get("/{request_id}/events", response_model=EventsView, responses=problems(404))
async def get_account_request_events(
    request_id: str, user: CurrentUser, client: ClientDep, settings: SettingsDep
) -> EventsView:
    handle = service.request_handle(client, request_id)
    await service.visible_state(handle, user, settings)
    events, stale = await request_events(handle, settings)
    return EventsView(items=events, stale=stale)


@router.post(
    "/{request_id}/approve", response_model=AccountRequestView, responses=problems(404, 409)
)
async def approve_account_request(
    request_id: str, body: ApproveBody, user: Approver, client: ClientDep, settings: SettingsDep
) -> AccountRequestView:
    """Approve (approvers). Nobody approves their own request, nor one about an account they
    own (or would own); each approver counts once."""
    decision = ApproveInput(by=user.sub, comment=body.comment, email=user.email)
    return await service.decide(client, settings, request_id, user, contract.APPROVE, decision)


@router.post(
    "/{request_id}/reject", response_model=AccountRequestView, responses=problems(404, 409)
)
async def reject_account_request(
    request_id: str, body: RejectBody, user: Approver, client: ClientDep, settings: SettingsDep
) -> AccountRequestView:
    """Reject with a reason (approvers)."""
    decision = RejectInput(by=user.sub, reason=body.reason)
    return await service.decide(client, settings, request_id, user, contract.REJECT, decision)


@router.post(
    "/{request_id}/cancel", response_model=AccountRequestView, responses=problems(404, 409)
)
async def cancel_account_request(
    request_id: str, body: CancelBody, user: CurrentUser, client: ClientDep, settings: SettingsDep
) -> AccountRequestView:
    """Cancel (its requester, or an operator) while it waits for approval or for an operator;
    what was already done is undone in reverse order (see ``compensations``)."""
    decision = CancelInput(by=user.sub, reason=body.reason)
    return await service.decide(
        client, settings, request_id, user, contract.CANCEL, decision, requester_may=True
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
        return service.retry_input(state, body, user, lz)

    return await service.decide(client, settings, request_id, user, contract.RETRY, retry_input)


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
    decision = SkipInput(by=user.sub, step=str(body.step.value), reason=body.reason)
    return await service.decide(client, settings, request_id, user, contract.SKIP, decision)
