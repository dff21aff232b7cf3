"""``/v1/accounts``: the inventory of managed accounts, and the changes asked of them.

Each account is a workflow (``account-<id>``, see ``workflows/managed_account.py``); lists come
from visibility, records from its query (or, while no worker answers, its memo, marked stale).
A change is a request like a vend request, under ``/v1/account-requests/{id}`` once made.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import ValidationError
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api import cursor as cursors
from api.assembly import request_id_for, vending_input
from api.deps import (
    ClientDep,
    CurrentUser,
    LandingZoneDep,
    LimiterDep,
    Operator,
    Requester,
    SettingsDep,
)
from api.errors import Problem, validation_problem
from api.event_reads import account_events, page
from api.intake import check_against_landing_zone, ou_snapshot
from api.openapi import problems
from api.queues import queue_lengths
from api.quotas import below_account_change_cap, below_open_quota
from api.routers.requests import request_view, submit_request
from api.schemas import (
    AccountEventsView,
    AccountEventView,
    AccountPage,
    AccountRequestView,
    AccountSummary,
    AccountView,
    AdoptBody,
    ChangeBody,
    DecommissionBody,
    RepairBody,
    UpdateBody,
)
from common import account_contract as contract
from common import drift
from common import search_attributes as sa
from common.landing_zone import LandingZone, OrganizationalUnitPolicy
from common.models import (
    AccountRequest,
    AccountStatus,
    ManagedAccount,
    Principal,
    RequestKind,
    RequestPlan,
    Role,
    VendingInput,
)
from common.settings import Settings
from common.step_plan import plan

router = APIRouter(
    prefix="/v1/accounts",
    tags=["accounts"],
    responses=problems(400, 401, 403, 413, 422, 429, 503),
)
NOT_FOUND = Problem(404, "Not found", "no such managed account")
_ACCOUNT_ID = re.compile(r"^\d{12}$")


def _timeout(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.temporal.update_timeout_seconds)


def _may_see(account: ManagedAccount, user: Principal) -> bool:
    if user.has(Role.approver, Role.operator, Role.admin):
        return True
    owner = account.request.owner_email.lower()
    return account.requested_by == user.sub or (user.email or "").lower() == owner


def _handle(client: Client, account_id: str) -> WorkflowHandle[Any, Any]:
    if not _ACCOUNT_ID.match(account_id):
        raise NOT_FOUND
    return client.get_workflow_handle(contract.account_workflow_id(account_id))


async def _read(
    client: Client, account_id: str, user: Principal, settings: Settings
) -> tuple[ManagedAccount, bool]:
    """The account if this user may see it (404 otherwise: no existence leak)."""
    handle = _handle(client, account_id)
    try:
        account: ManagedAccount = await handle.query(
            contract.GET_ACCOUNT,
            result_type=ManagedAccount,
            rpc_timeout=timedelta(seconds=settings.temporal.query_timeout_seconds),
        )
        stale = False
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise NOT_FOUND from err
        try:
            described = await handle.describe(rpc_timeout=_timeout(settings))
            recorded: ManagedAccount | None = await described.memo_value(
                contract.STATE_MEMO, None, type_hint=ManagedAccount
            )
        except RPCError:
            recorded = None
        if recorded is None:
            raise Problem(503, "Unavailable", "no worker answered; try again") from err
        account, stale = recorded, True
    if not _may_see(account, user):
        raise NOT_FOUND
    return account, stale


def owns(account: ManagedAccount, user: Principal) -> bool:
    """Ownership follows the account's current owner (a verified email): not whoever asked for
    it once, nor an operator who adopted it."""
    return bool(user.email) and (user.email or "").lower() == account.request.owner_email.lower()


def _may_change(account: ManagedAccount, user: Principal, role: Role, refusal: str) -> None:
    """The account's owner may ask for changes to it, and ``role`` (admins always)."""
    if not (owns(account, user) or user.has(role, Role.admin)):
        raise Problem(403, "Forbidden", refusal)


async def _below_caps(client: Client, settings: Settings, user: Principal, account: str) -> None:
    """A change counts against its requester's open requests and its account's open changes."""
    await below_open_quota(client, settings, user)
    await below_account_change_cap(client, settings, account)


async def _filed(
    client: Client, settings: Settings, inp: VendingInput, response: Response
) -> AccountRequestView:
    """Start the request and answer as the request routes do (with its Location)."""
    state = await submit_request(client, settings, inp)
    response.headers["Location"] = f"/v1/account-requests/{inp.request_id}"
    return request_view(state, settings)


def _view(account: ManagedAccount, *, stale: bool = False) -> AccountView:
    body = account.request
    ws = (
        {
            "connector_id": account.workload_security_connector_id,
            "policy": account.workload_security_policy,
        }
        if account.workload_security_connector_id
        else None
    )
    billing = (
        {
            "customer_id": body.billing.customer_id,
            "registration_id": account.billing_registration_id,
            "status": account.billing_status,
        }
        if account.billing_status
        else None
    )
    return AccountView(
        account_id=account.account_id,
        account_name=body.account_name,
        account_email=body.account_email,
        organizational_unit=body.organizational_unit,
        organizational_unit_id=account.organizational_unit_id,
        environment=body.environment.value,
        owner_email=body.owner_email,
        cost_center=body.cost_center,
        tags=body.tags,
        requested_by=account.requested_by,
        status=account.status.value,
        control_tower=account.control_tower,
        baselines=[b.model_dump() for b in account.baselines],
        workload_security=ws,
        billing=billing,
        requests=account.requests,
        current_change=account.current_change,
        queued_changes=account.queued_changes,
        managed_since=account.managed_since,
        last_checked_at=account.last_checked_at,
        drift=account.drift,
        stale=stale,
    )


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
    clauses = [f"WorkflowType = {sa.quote(contract.WORKFLOW)}"]
    if organizational_unit:
        clauses.append(f"{sa.OU.name} = {sa.quote(organizational_unit.strip().strip('/'))}")
    if status_filter is not None:
        clauses.append(f"{sa.STATUS.name} = {sa.quote(status_filter.value)}")
    if owner:
        digest = sa.owner_digest(owner, settings.owner_key())
        clauses.append(f"{sa.OWNER.name} = {sa.quote(digest)}")
    if drifted is True:
        clauses.append(f"{sa.DRIFT.name} = {sa.quote(drift.DRIFTED)}")
    elif drifted is False:
        clauses.append(f"({sa.DRIFT.name} IS NULL OR {sa.DRIFT.name} = {sa.quote(drift.IN_SYNC)})")
    if not user.has(Role.approver, Role.operator, Role.admin):
        mine = [f"{sa.REQUESTER.name} = {sa.quote(user.sub)}"]
        if user.email:
            digest = sa.owner_digest(user.email, settings.owner_key())
            mine.append(f"{sa.OWNER.name} = {sa.quote(digest)}")
        clauses.append("(" + " OR ".join(mine) + ")")
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
        rpc_timeout=_timeout(settings),
    )
    await it.fetch_next_page(page_size=limit)
    items = []
    for wf in it.current_page or []:
        memo = await wf.memo()
        attrs = wf.typed_search_attributes
        verdict = attrs.get(sa.DRIFT)
        items.append(
            AccountSummary(
                account_id=attrs.get(sa.ACCOUNT_ID) or wf.id.removeprefix(contract.ID_PREFIX),
                account_name=memo.get("account_name"),
                organizational_unit=memo.get("organizational_unit"),
                environment=memo.get("environment"),
                status=attrs.get(sa.STATUS) or "unknown",
                drifted=None if verdict is None else verdict == drift.DRIFTED,
            )
        )
    nxt = it.next_page_token
    return AccountPage(items=items, next_cursor=cursors.encode(nxt, key) if nxt else None)


@router.post(
    "/adopt",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountRequestView,
    responses=problems(409),
)
async def adopt_account(
    body: AdoptBody,
    user: Operator,
    client: ClientDep,
    settings: SettingsDep,
    lz: LandingZoneDep,
    limiter: LimiterDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> AccountRequestView:
    """Bring an account made outside the engine under management (operators): nothing is
    created; it is placed, enrolled, baselined, protected and billed as a vend would. It needs
    at least one approval, and the stricter of its destination's and its current OU's. 409 when
    it is managed already, is the management account, or is not in the organization; 403 when
    it is in an OU closed for vending (Security) or unknown to the landing zone and not listed in
    its ``adoptable_from``."""
    request = body.as_request()
    ou = check_against_landing_zone(request, lz, email_domain=False)
    try:
        await _handle(client, body.account_id).describe(rpc_timeout=_timeout(settings))
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    else:
        raise Problem(409, "Conflict", f"account {body.account_id} is managed already")
    limiter.take(user.sub, "create")
    await below_open_quota(client, settings, user)
    # Never automatic: at least one approval, and at validation the stricter of this and what
    # leaving the account's current OU takes (an OU closed for vending refuses it there).
    ou = ou.model_copy(update={"approvals_required": max(1, ou.approvals_required)})
    inp = vending_input(request_id_for(user, idempotency_key), request, user, ou, settings)
    inp = inp.model_copy(
        update={
            "kind": RequestKind.adopt,
            "account_id": body.account_id,
            "body_sha256": hashlib.sha256(body.model_dump_json().encode()).hexdigest(),
            "adoption_sources": lz.adoption_sources(),
        }
    )
    inp.plan = plan(inp, await queue_lengths(client))
    return await _filed(client, settings, inp, response)


@router.get("/{account_id}", response_model=AccountView, responses=problems(404))
async def get_account(
    account_id: str, user: CurrentUser, client: ClientDep, settings: SettingsDep
) -> AccountView:
    account, stale = await _read(client, account_id, user, settings)
    return _view(account, stale=stale)


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
    await _read(client, account_id, user, settings)
    window, stale = await account_events(_handle(client, account_id), settings)
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
    client: ClientDep,
    settings: SettingsDep,
    lz: LandingZoneDep,
    limiter: LimiterDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> AccountRequestView:
    """Ask for a change to a managed account (the account's current owner, or an admin):
    ``update`` or ``decommission``. The change is a request: approve, reject, retry, skip and
    cancel it under ``/v1/account-requests/{id}``. One change runs at a time per account; the
    next waits its turn."""
    limiter.take(user.sub, "create")
    inp = await _change_input(client, account_id, body, user, lz, settings, idempotency_key)
    await _below_caps(client, settings, user, account_id)
    return await _filed(client, settings, inp, response)


@router.post(
    "/{account_id}/changes/preview", response_model=RequestPlan, responses=problems(404, 409)
)
async def preview_account_change(
    account_id: str,
    body: ChangeBody,
    user: Requester,
    client: ClientDep,
    settings: SettingsDep,
    lz: LandingZoneDep,
    limiter: LimiterDep,
) -> RequestPlan:
    """What this change would do, before anyone approves it (nothing is written): the
    account's owner, with the requester role (or an admin), at a rate of its own."""
    limiter.take(user.sub, "preview")
    inp = await _change_input(client, account_id, body, user, lz, settings, None)
    assert inp.plan is not None
    return inp.plan


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
    client: ClientDep,
    settings: SettingsDep,
    lz: LandingZoneDep,
    limiter: LimiterDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> AccountRequestView:
    """Put back what the last drift check found (the account's current owner, an operator
    or an admin): an update request that runs only the steps that make the drifted parts, and
    waits for the approvals an update of the account's OU needs. 409 when nothing drifted."""
    limiter.take(user.sub, "create")
    account, _ = await _read(client, account_id, user, settings)
    _may_change(account, user, Role.operator, "only the account's owner, or an operator")
    source = _changeable(account, lz)
    steps = drift.repair_steps(account.drift)
    if not steps:
        manual = drift.unrepairable(account.drift)
        detail = (
            f"account {account_id}: no update step puts back {', '.join(manual)}; set it by hand"
            " (the next drift check sees it back)"
            if manual
            else f"account {account_id} has no drift to repair"
        )
        raise Problem(409, "Conflict", detail)
    ou = ou_snapshot(source, lz)
    inp = _change_request(
        account,
        body,
        vending_input(
            request_id_for(user, idempotency_key),
            account.request.model_copy(update={"justification": body.justification}),
            user,
            ou,
            settings,
            account_settings=False,
        ),
        kind=RequestKind.update,
        previous_ou=ou,
        previous_protect_workload_security=bool(account.workload_security_connector_id),
        repair=steps,
    )
    await _below_caps(client, settings, user, account_id)
    inp.plan = plan(inp, await queue_lengths(client))
    return await _filed(client, settings, inp, response)


def _changeable(account: ManagedAccount, lz: LandingZone) -> OrganizationalUnitPolicy:
    """The policy of the account's OU, if the engine may change the account now."""
    if account.status == AccountStatus.closed:
        raise Problem(409, "Conflict", f"account {account.account_id} is closed")
    if account.status == AccountStatus.decommissioning:
        raise Problem(409, "Conflict", f"account {account.account_id} is being decommissioned")
    source = lz.find(account.request.organizational_unit)
    if source is None or not source.open_for_vending:
        raise validation_problem(
            [
                {
                    "loc": ["path", "account_id"],
                    "msg": f"the account is in OU {account.request.organizational_unit}, which "
                    "is not open for vending: the engine does not change accounts there",
                }
            ]
        )
    return source


async def _change_input(
    client: Client,
    account_id: str,
    body: DecommissionBody | UpdateBody,
    user: Principal,
    lz: LandingZone,
    settings: Settings,
    idempotency_key: str | None,
) -> VendingInput:
    """The change's request input, checked (who may, what state, what fits), with its plan."""
    account, _ = await _read(client, account_id, user, settings)
    _may_change(account, user, Role.admin, "only the account's owner, or an admin")
    source = _changeable(account, lz)
    if isinstance(body, DecommissionBody):
        inp = _decommission_input(account, body, user, source, lz, settings, idempotency_key)
    else:
        inp = _update_input(account, body, user, source, lz, settings, idempotency_key)
    inp.plan = plan(inp, await queue_lengths(client))
    return inp


def _fingerprint(account_id: str, body: DecommissionBody | UpdateBody | RepairBody) -> str:
    return hashlib.sha256(f"{account_id}\n{body.model_dump_json()}".encode()).hexdigest()


def _decommission_input(
    account: ManagedAccount,
    body: DecommissionBody,
    user: Principal,
    source: OrganizationalUnitPolicy,
    lz: LandingZone,
    settings: Settings,
    idempotency_key: str | None,
) -> VendingInput:
    if body.confirm_account_name != account.request.account_name:
        raise validation_problem(
            [
                {
                    "loc": ["body", "confirm_account_name"],
                    "msg": "type the account's name exactly to confirm its decommission",
                }
            ]
        )
    ou = ou_snapshot(source, lz).model_copy(
        update={"approvals_required": source.decommission_approvals_required()}
    )
    request = account.request.model_copy(update={"justification": body.justification})
    return _change_request(
        account,
        body,
        vending_input(
            request_id_for(user, idempotency_key),
            request,
            user,
            ou,
            settings,
            account_settings=False,
        ),
        kind=RequestKind.decommission,
        protect_workload_security=bool(account.workload_security_connector_id),
        cost_estimate=None,  # nothing left to pay for
    )


def _update_input(
    account: ManagedAccount,
    body: UpdateBody,
    user: Principal,
    source: OrganizationalUnitPolicy,
    lz: LandingZone,
    settings: Settings,
    idempotency_key: str | None,
) -> VendingInput:
    before = account.request
    try:
        after = AccountRequest.model_validate(
            {**before.model_dump(), **body.changes(), "justification": body.justification}
        )
    except ValidationError as err:
        raise validation_problem(
            [{"loc": ["body", *map(str, e["loc"])], "msg": e["msg"]} for e in err.errors()]
        ) from err
    if after.model_copy(update={"justification": before.justification}) == before:
        raise validation_problem(
            [{"loc": ["body"], "msg": "the update changes nothing about the account"}]
        )
    destination = check_against_landing_zone(after, lz, email_domain=False, settings=False)
    previous = ou_snapshot(source, lz)
    ou = destination.model_copy(
        update={
            # The stricter of the two OUs' rules.
            "approvals_required": max(previous.approvals_required, destination.approvals_required),
            "approval_window_seconds": min(
                previous.approval_window_seconds, destination.approval_window_seconds
            ),
        }
    )
    return _change_request(
        account,
        body,
        vending_input(
            request_id_for(user, idempotency_key), after, user, ou, settings, account_settings=False
        ),
        kind=RequestKind.update,
        previous_ou=previous,
        previous_protect_workload_security=bool(account.workload_security_connector_id),
        changes=body.changes(),
    )


def _change_request(
    account: ManagedAccount,
    body: DecommissionBody | UpdateBody | RepairBody,
    inp: VendingInput,
    **fields: Any,
) -> VendingInput:
    """A change's input: the vend's, naming its account, fingerprinted by account and body
    (the same body for two accounts is two requests)."""
    return inp.model_copy(
        update={"account": account, "body_sha256": _fingerprint(account.account_id, body), **fields}
    )
