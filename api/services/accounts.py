"""Reading managed accounts: who may see and change one, its record (or, while no worker
answers, its memo, marked stale), its view, and the pages of the inventory."""

from __future__ import annotations

import re
from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Problem, validation_problem
from api.schemas import AccountSummary, AccountView
from api.services.fleet_check import FleetCheck, last_checked_at
from api.temporal_calls import memo_fields, query_or_recorded, rpc_timeout
from common import account_contract as contract
from common import drift
from common import search_attributes as sa
from common.landing_zone import LandingZone, OrganizationalUnitPolicy
from common.models import AccountStatus, ManagedAccount, Principal, Role
from common.settings import Settings

NOT_FOUND = Problem(404, "Not found", "no such managed account")
_ACCOUNT_ID = re.compile(r"^\d{12}$")


def account_handle(client: Client, account_id: str) -> WorkflowHandle[Any, Any]:
    if not _ACCOUNT_ID.match(account_id):
        raise NOT_FOUND
    return client.get_workflow_handle(contract.account_workflow_id(account_id))


def may_see(account: ManagedAccount, user: Principal) -> bool:
    if user.has(Role.approver, Role.operator, Role.admin):
        return True
    owner = account.request.owner_email.lower()
    return account.requested_by == user.sub or (user.email or "").lower() == owner


def owns(account: ManagedAccount, user: Principal) -> bool:
    """Ownership follows the account's current owner (a verified email): not whoever asked for
    it once, nor an operator who adopted it."""
    return bool(user.email) and (user.email or "").lower() == account.request.owner_email.lower()


def may_change(account: ManagedAccount, user: Principal, role: Role, refusal: str) -> None:
    """The account's owner may ask for changes to it, and ``role`` (admins always)."""
    if not (owns(account, user) or user.has(role, Role.admin)):
        raise Problem(403, "Forbidden", refusal)


async def read_account(
    client: Client, account_id: str, user: Principal, settings: Settings
) -> tuple[ManagedAccount, bool]:
    """The account if this user may see it (404 otherwise: no existence leak)."""
    account, stale = await query_or_recorded(
        account_handle(client, account_id),
        contract.GET_ACCOUNT,
        contract.STATE_MEMO,
        ManagedAccount,
        settings,
        missing=NOT_FOUND,
    )
    if not may_see(account, user):
        raise NOT_FOUND
    return account, stale


async def not_managed(client: Client, account_id: str, settings: Settings) -> None:
    """409 when the account already has its workflow (an adoption of it is a mistake)."""
    try:
        await account_handle(client, account_id).describe(rpc_timeout=rpc_timeout(settings))
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    else:
        raise Problem(409, "Conflict", f"account {account_id} is managed already")


def changeable(account: ManagedAccount, lz: LandingZone) -> OrganizationalUnitPolicy:
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


def account_view(
    account: ManagedAccount, *, stale: bool = False, fleet: FleetCheck | None = None
) -> AccountView:
    body = account.request
    ws = None
    if account.workload_security_connector_id:
        ws = {
            "connector_id": account.workload_security_connector_id,
            "policy": account.workload_security_policy,
        }
    billing = None
    if account.billing_status:
        billing = {
            "customer_id": body.billing.customer_id,
            "registration_id": account.billing_registration_id,
            "status": account.billing_status,
        }
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
        last_checked_at=last_checked_at(account, fleet),
        drift=account.drift,
        stale=stale,
    )


def list_clauses(
    user: Principal,
    settings: Settings,
    *,
    organizational_unit: str | None,
    status: AccountStatus | None,
    owner: str | None,
    drifted: bool | None,
) -> list[str]:
    """The visibility query of an inventory list; a requester sees the accounts they requested
    or own (owners are found by a keyed digest of their email: no address in visibility)."""
    clauses = [f"WorkflowType = {sa.quote(contract.WORKFLOW)}"]
    if organizational_unit:
        clauses.append(f"{sa.OU.name} = {sa.quote(organizational_unit.strip().strip('/'))}")
    if status is not None:
        clauses.append(f"{sa.STATUS.name} = {sa.quote(status.value)}")
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
    return clauses


# What a list row shows of the memo.
ROW_MEMO_FIELDS = ("account_name", "organizational_unit", "environment")


async def summary(wf: WorkflowExecution) -> AccountSummary:
    memo = await memo_fields(wf, ROW_MEMO_FIELDS)
    attrs = wf.typed_search_attributes
    verdict = attrs.get(sa.DRIFT)
    return AccountSummary(
        account_id=attrs.get(sa.ACCOUNT_ID) or wf.id.removeprefix(contract.ID_PREFIX),
        account_name=memo.get("account_name"),
        organizational_unit=memo.get("organizational_unit"),
        environment=memo.get("environment"),
        status=attrs.get(sa.STATUS) or "unknown",
        drifted=None if verdict is None else verdict == drift.DRIFTED,
    )
