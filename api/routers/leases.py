"""``/v1/leases`` and ``/v1/pools``: sandbox accounts lent out from a pool (docs/leases.md).

A lease is granted from a warm pool in seconds (an Identity Center assignment, a budget, tags)
and cleaned, never closed, when it ends. Anyone a template is open to may ask; a holder sees
and ends their own leases; approvers approve and unfreeze; operators see the pools and retry
or retire a quarantined account.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from api.deps import Approver, ClientDep, CurrentUser, LandingZoneDep, Operator, SettingsDep
from api.lease_schemas import (
    ExtendBody,
    LeaseBody,
    LeasePage,
    LeaseView,
    PoolPage,
    ReasonBody,
    UnfreezeBody,
)
from api.openapi import problems
from api.services import leases as service
from api.temporal_calls import decided, rpc_timeout
from common import leases as contract
from common.intake import body_fingerprint
from common.leases import (
    Approval,
    Ending,
    Extension,
    LeaseState,
    LeaseStatus,
    OperatorAction,
    PoolAccount,
    Unfreeze,
)
from common.models import Role

router = APIRouter(tags=["leases"], responses=problems(400, 401, 403, 413, 422, 429, 503))


@router.post(
    "/v1/leases",
    response_model=LeaseView,
    status_code=status.HTTP_201_CREATED,
    responses=problems(422),
)
async def create_lease(
    body: LeaseBody,
    user: CurrentUser,
    client: ClientDep,
    lz: LandingZoneDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> LeaseView:
    """Ask for a sandbox; from a warm pool it is usable within seconds (approval first when
    the template asks for one). A replayed Idempotency-Key answers the same lease."""
    inp = service.lease_input(body, user, lz, settings, service.lease_id_for(user, idempotency_key))
    lease = await service.start_lease(client, settings, inp, body_fingerprint(body))
    response.headers["Location"] = f"/v1/leases/{inp.lease_id}"
    return lease


@router.get("/v1/leases", response_model=LeasePage)
async def list_leases(
    user: CurrentUser,
    client: ClientDep,
    settings: SettingsDep,
    status_filter: Annotated[LeaseStatus | None, Query(alias="status")] = None,
    template: Annotated[str | None, Query(max_length=63)] = None,
    holder: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> LeasePage:
    """Yours; approvers and operators see every lease (newest first, eventually consistent)."""
    query = service.list_query(
        user, status_filter.value if status_filter else None, template, holder
    )
    items = []
    async for wf in client.list_workflows(query, limit=limit, rpc_timeout=rpc_timeout(settings)):
        memo = await wf.memo()
        if template and memo.get("template") != template:
            continue
        recorded = memo.get(contract.STATE_MEMO)
        if recorded is not None:
            items.append(service.view(LeaseState.model_validate(recorded)))
    return LeasePage(items=items)


@router.get("/v1/leases/{lease_id}", response_model=LeaseView, responses=problems(404))
async def get_lease(
    lease_id: str, user: CurrentUser, client: ClientDep, settings: SettingsDep
) -> LeaseView:
    """The account, where to sign in, time left, thresholds reached, events."""
    _, state = await service.visible(client, settings, lease_id, user)
    return service.view(state)


@router.post(
    "/v1/leases/{lease_id}/approve", response_model=LeaseView, responses=problems(404, 409)
)
async def approve_lease(
    lease_id: str, body: ReasonBody, user: Approver, client: ClientDep, settings: SettingsDep
) -> LeaseView:
    return await service.decide(
        client,
        settings,
        lease_id,
        user,
        contract.APPROVE,
        Approval(by=user.sub, reason=body.reason),
        holder_may=False,
        staff=(Role.approver,),
    )


@router.post("/v1/leases/{lease_id}/reject", response_model=LeaseView, responses=problems(404, 409))
async def reject_lease(
    lease_id: str, body: ReasonBody, user: Approver, client: ClientDep, settings: SettingsDep
) -> LeaseView:
    return await service.decide(
        client,
        settings,
        lease_id,
        user,
        contract.REJECT,
        Approval(by=user.sub, reason=body.reason),
        holder_may=False,
        staff=(Role.approver,),
    )


@router.post("/v1/leases/{lease_id}/extend", response_model=LeaseView, responses=problems(404, 409))
async def extend_lease(
    lease_id: str, body: ExtendBody, user: CurrentUser, client: ClientDep, settings: SettingsDep
) -> LeaseView:
    """Within the template's longest lease; the holder alone when the template needs no
    approval, an approver or operator otherwise."""
    return await service.decide(
        client,
        settings,
        lease_id,
        user,
        contract.EXTEND,
        Extension(by=user.sub, ends_at=body.ends_at),
        holder_may=lambda state: state.approvals_required == 0,
        staff=(Role.approver, Role.operator, Role.admin),
    )


@router.post("/v1/leases/{lease_id}/end", response_model=LeaseView, responses=problems(404, 409))
async def end_lease(
    lease_id: str, body: ReasonBody, user: CurrentUser, client: ClientDep, settings: SettingsDep
) -> LeaseView:
    """Access goes at once; the account is cleaned and goes back to the pool."""
    return await service.decide(
        client,
        settings,
        lease_id,
        user,
        contract.END,
        Ending(by=user.sub, reason=body.reason),
        holder_may=True,
    )


@router.post(
    "/v1/leases/{lease_id}/unfreeze", response_model=LeaseView, responses=problems(404, 409)
)
async def unfreeze_lease(
    lease_id: str, body: UnfreezeBody, user: CurrentUser, client: ClientDep, settings: SettingsDep
) -> LeaseView:
    """A higher budget or a later end, and the account can change things again."""
    return await service.decide(
        client,
        settings,
        lease_id,
        user,
        contract.UNFREEZE,
        Unfreeze(by=user.sub, ends_at=body.ends_at, budget_usd=body.budget_usd, reason=body.reason),
        holder_may=False,
        staff=(Role.approver, Role.operator, Role.admin),
    )


@router.post("/v1/leases/{lease_id}/retry", response_model=LeaseView, responses=problems(404, 409))
async def retry_lease(
    lease_id: str, body: ReasonBody, user: Operator, client: ClientDep, settings: SettingsDep
) -> LeaseView:
    """Run a parked step again (its problem says what AWS refused), once its cause is fixed."""
    return await service.decide(
        client,
        settings,
        lease_id,
        user,
        contract.RETRY,
        Ending(by=user.sub, reason=body.reason),
        holder_may=False,
    )


@router.get("/v1/pools", response_model=PoolPage, tags=["pools"])
async def list_pools(
    user: Operator, client: ClientDep, settings: SettingsDep, lz: LandingZoneDep
) -> PoolPage:
    """Each pool: its accounts by state, those quarantined with what was left behind."""
    return PoolPage(items=await service.pools(client, settings, lz))


async def _pool_action(
    update: str,
    organizational_unit: str,
    account_id: str,
    body: ReasonBody,
    user: Operator,
    client: ClientDep,
    settings: SettingsDep,
    lz: LandingZoneDep,
) -> PoolAccount:
    handle = service.pool_handle(client, lz, organizational_unit)
    action = OperatorAction(account_id=account_id, by=user.sub, reason=body.reason)
    return await decided(handle, update, action, PoolAccount, settings, ended="no such pool")


@router.post(
    "/v1/pools/{organizational_unit:path}/accounts/{account_id}/retry",
    response_model=PoolAccount,
    tags=["pools"],
    responses=problems(404, 409),
)
async def retry_cleaning(
    organizational_unit: str,
    account_id: str,
    body: ReasonBody,
    user: Operator,
    client: ClientDep,
    settings: SettingsDep,
    lz: LandingZoneDep,
) -> PoolAccount:
    """Clean a quarantined account again (once the cause is fixed)."""
    return await _pool_action(
        contract.RETRY_CLEANING, organizational_unit, account_id, body, user, client, settings, lz
    )


@router.post(
    "/v1/pools/{organizational_unit:path}/accounts/{account_id}/retire",
    response_model=PoolAccount,
    tags=["pools"],
    responses=problems(404, 409),
)
async def retire_account(
    organizational_unit: str,
    account_id: str,
    body: ReasonBody,
    user: Operator,
    client: ClientDep,
    settings: SettingsDep,
    lz: LandingZoneDep,
) -> PoolAccount:
    """Take an account out of the pool for good; close it with a decommission request."""
    return await _pool_action(
        contract.RETIRE, organizational_unit, account_id, body, user, client, settings, lz
    )
