"""``/v1/accounts``: the inventory of managed accounts, and the changes asked of them.

Each account is a workflow (``account-<id>``, see ``workflows/managed_account.py``); lists come
from visibility, records from its query (or, while no worker answers, its memo, marked stale).
A change is a request like a vend request, under ``/v1/account-requests/{id}`` once made.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from api.deps import (
    ClientDep,
    CurrentUser,
    LandingZoneDep,
    LimiterDep,
    Operator,
    Requester,
    SettingsDep,
)
from api.event_reads import account_events, page
from api.openapi import problems
from api.schemas import (
    AccountEventsView,
    AccountEventView,
    AccountPage,
    AccountRequestView,
    AccountView,
    AdoptBody,
    ChangeBody,
    RepairBody,
    RequestPlanView,
)
from api.services import accounts as service
from api.services.changes import adoption_input, change_input, repair_input
from api.services.filing import FilingDep
from api.services.fleet_check import last_fleet_check
from api.temporal_calls import visibility_page
from common.models import AccountStatus, Role

router = APIRouter(
    prefix="/v1/accounts",
    tags=["accounts"],
    responses=problems(400, 401, 403, 413, 422, 429, 503),
)
IdempotencyKey = Annotated[str | None, Header(max_length=200)]


@router.get("", response_model=AccountPage)
async def list_accounts(
    user: CurrentUser,
    client: ClientDep,
    settings: SettingsDep,
    organizational_unit: Annotated[str | None, Query(max_length=500)] = None,
    status_filter: Annotated[AccountStatus | None, Query(alias="status")] = None,
    owner: Annotated[str | None, Query(max_length=320)] = None,
    drifted: Annotated[
        bool | None, Query(description="true: drifted at the last check; false: not")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> AccountPage:
    """Managed accounts (visibility order; eventually consistent). Requesters see the accounts
    they requested or own."""
    clauses = service.list_clauses(
        user,
        settings,
        organizational_unit=organizational_unit,
        status=status_filter,
        owner=owner,
        drifted=drifted,
    )
    found, nxt = await visibility_page(client, clauses, settings, limit=limit, cursor=cursor)
    return AccountPage(items=[await service.summary(wf) for wf in found], next_cursor=nxt)


@router.post(
    "/adopt",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountRequestView,
    responses=problems(409),
)
async def adopt_account(
    body: AdoptBody,
    user: Operator,
    filing: FilingDep,
    lz: LandingZoneDep,
    limiter: LimiterDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> AccountRequestView:
    """Bring an account made outside the engine under management (operators): nothing is
    created; it is placed, enrolled, baselined, protected and billed as a vend would. It needs
    at least one approval, and the stricter of its destination's and its current OU's. 409 when
    it is managed already, is the management account, or is not in the organization; 403 when
    it is in an OU closed for vending (Security) or unknown to the landing zone and not listed in
    its ``adoptable_from``."""
    inp = adoption_input(body, user, lz, filing.settings, idempotency_key)
    await service.not_managed(filing.client, body.account_id, filing.settings)
    limiter.take(user.sub, "create")
    return await filing.file(inp, user, response)


@router.get("/{account_id}", response_model=AccountView, responses=problems(404))
async def get_account(
    account_id: str, user: CurrentUser, client: ClientDep, settings: SettingsDep
) -> AccountView:
    account, stale = await service.read_account(client, account_id, user, settings)
    fleet = await last_fleet_check(client, settings)
    return service.account_view(account, stale=stale, fleet=fleet)


@router.get("/{account_id}/events", response_model=AccountEventsView, responses=problems(404))
async def get_account_events(
    account_id: str,
    user: CurrentUser,
    client: ClientDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,9}$")] = None,
) -> AccountEventsView:
    """The account's audit trail, the newest ``limit`` lines first asked (oldest first within
    the page): every request's events and the inventory's own. The account keeps its newest
    lines; ``dropped`` says how many older ones only the requests themselves still hold."""
    await service.read_account(client, account_id, user, settings)
    handle = service.account_handle(client, account_id)
    window, stale = await account_events(handle, settings)
    shown, older = page(window, int(cursor) if cursor else None, limit)
    return AccountEventsView(
        items=[AccountEventView(**e.model_dump()) for e in shown.items],
        next_cursor=str(older) if older is not None else None,
        dropped=window.first,
        stale=stale,
    )


@router.post(
    "/{account_id}/changes",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountRequestView,
    responses=problems(404, 409),
)
async def request_account_change(
    account_id: str,
    body: ChangeBody,
    user: CurrentUser,
    filing: FilingDep,
    lz: LandingZoneDep,
    limiter: LimiterDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> AccountRequestView:
    """Ask for a change to a managed account (the account's current owner, or an admin):
    ``update`` or ``decommission``. The change is a request: approve, reject, retry, skip and
    cancel it under ``/v1/account-requests/{id}``. One change runs at a time per account; the
    next waits its turn."""
    limiter.take(user.sub, "create")
    account, _ = await service.read_account(filing.client, account_id, user, filing.settings)
    service.may_change(account, user, Role.admin, "only the account's owner, or an admin")
    source = service.changeable(account, lz)
    inp = change_input(account, source, body, user, lz, filing.settings, idempotency_key)
    return await filing.file(inp, user, response, account_id=account_id)


@router.post(
    "/{account_id}/changes/preview", response_model=RequestPlanView, responses=problems(404, 409)
)
async def preview_account_change(
    account_id: str,
    body: ChangeBody,
    user: Requester,
    filing: FilingDep,
    lz: LandingZoneDep,
    limiter: LimiterDep,
) -> RequestPlanView:
    """What this change would do, before anyone approves it (nothing is written): the
    account's owner, with the requester role (or an admin), at a rate of its own."""
    limiter.take(user.sub, "preview")
    account, _ = await service.read_account(filing.client, account_id, user, filing.settings)
    service.may_change(account, user, Role.admin, "only the account's owner, or an admin")
    source = service.changeable(account, lz)
    inp = change_input(account, source, body, user, lz, filing.settings, None)
    return RequestPlanView.of(await filing.preview(inp))


@router.post(
    "/{account_id}/repair",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountRequestView,
    responses=problems(404, 409),
)
async def repair_account(
    account_id: str,
    body: RepairBody,
    user: CurrentUser,
    filing: FilingDep,
    lz: LandingZoneDep,
    limiter: LimiterDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> AccountRequestView:
    """Put back what the last drift check found (the account's current owner, an operator
    or an admin): an update request that runs only the steps that make the drifted parts, and
    waits for the approvals an update of the account's OU needs. 409 when nothing drifted."""
    limiter.take(user.sub, "create")
    account, _ = await service.read_account(filing.client, account_id, user, filing.settings)
    service.may_change(account, user, Role.operator, "only the account's owner, or an operator")
    source = service.changeable(account, lz)
    inp = repair_input(account, source, body, user, lz, filing.settings, idempotency_key)
    return await filing.file(inp, user, response, account_id=account_id)
