"""The inputs of the requests made about an account: a change (update or decommission), a
repair of what a drift check found, and an adoption. Each is checked (who may, what state, what
fits the landing zone) and built on the vend's input, named after its account."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import ValidationError

from api.errors import Problem, validation_problem
from api.schemas import AdoptBody, DecommissionBody, RepairBody, UpdateBody
from common import drift
from common.intake import check_against_landing_zone, ou_snapshot
from common.landing_zone import LandingZone, OrganizationalUnitPolicy
from common.models import (
    AccountRequest,
    ManagedAccount,
    OuSnapshot,
    Principal,
    RequestKind,
    VendingInput,
)
from common.request_start import request_id_for, vending_input
from common.settings import Settings

Change = DecommissionBody | UpdateBody


def adoption_input(
    body: AdoptBody, user: Principal, lz: LandingZone, settings: Settings, key: str | None
) -> VendingInput:
    """Never automatic: at least one approval here, and at validation the stricter of this and
    what leaving the account's current OU takes (an OU closed for vending refuses it there)."""
    request = body.as_request()
    ou = check_against_landing_zone(request, lz, email_domain=False)
    ou = ou.model_copy(update={"approvals_required": max(1, ou.approvals_required)})
    inp = vending_input(request_id_for(user, key), request, user, ou, settings)
    return inp.model_copy(
        update={
            "kind": RequestKind.adopt,
            "account_id": body.account_id,
            "body_sha256": hashlib.sha256(body.model_dump_json().encode()).hexdigest(),
            "adoption_sources": lz.adoption_sources(),
        }
    )


def change_input(
    account: ManagedAccount,
    source: OrganizationalUnitPolicy,
    body: Change,
    user: Principal,
    lz: LandingZone,
    settings: Settings,
    key: str | None,
) -> VendingInput:
    if isinstance(body, DecommissionBody):
        return _decommission_input(account, body, user, source, lz, settings, key)
    return _update_input(account, body, user, source, lz, settings, key)


def repair_input(
    account: ManagedAccount,
    source: OrganizationalUnitPolicy,
    body: RepairBody,
    user: Principal,
    lz: LandingZone,
    settings: Settings,
    key: str | None,
) -> VendingInput:
    """An update that runs only the steps that make the drifted parts; 409 when nothing it can
    put back drifted."""
    steps = drift.repair_steps(account.drift)
    if not steps:
        manual = drift.unrepairable(account.drift)
        detail = (
            f"account {account.account_id}: no update step puts back {', '.join(manual)}; set "
            "it by hand (the next drift check sees it back)"
            if manual
            else f"account {account.account_id} has no drift to repair"
        )
        raise Problem(409, "Conflict", detail)
    ou = ou_snapshot(source, lz)
    return _change_request(
        account,
        body,
        _unsettled(request_id_for(user, key), _as_is(account, body), user, ou, settings),
        kind=RequestKind.update,
        previous_ou=ou,
        previous_protect_workload_security=bool(account.workload_security_connector_id),
        repair=steps,
    )


def _decommission_input(
    account: ManagedAccount,
    body: DecommissionBody,
    user: Principal,
    source: OrganizationalUnitPolicy,
    lz: LandingZone,
    settings: Settings,
    key: str | None,
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
    return _change_request(
        account,
        body,
        _unsettled(request_id_for(user, key), _as_is(account, body), user, ou, settings),
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
    key: str | None,
) -> VendingInput:
    before = account.request
    after = _updated(before, body)
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
        _unsettled(request_id_for(user, key), after, user, ou, settings),
        kind=RequestKind.update,
        previous_ou=previous,
        previous_protect_workload_security=bool(account.workload_security_connector_id),
        changes=body.changes(),
    )


def _updated(before: AccountRequest, body: UpdateBody) -> AccountRequest:
    """The account's request as the update would leave it; 422 if invalid or unchanged."""
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
    return after


def _unsettled(
    request_id: str, request: AccountRequest, user: Principal, ou: OuSnapshot, settings: Settings
) -> VendingInput:
    """A change's base input: the vend's, applying no vend-time account settings again."""
    return vending_input(request_id, request, user, ou, settings, account_settings=False)


def _as_is(account: ManagedAccount, body: DecommissionBody | RepairBody) -> AccountRequest:
    """The account's request as the inventory holds it, with this change's justification."""
    return account.request.model_copy(update={"justification": body.justification})


def _change_request(
    account: ManagedAccount,
    body: DecommissionBody | UpdateBody | RepairBody,
    inp: VendingInput,
    **fields: Any,
) -> VendingInput:
    """A change's input: the vend's, naming its account, fingerprinted by account and body
    (the same body for two accounts is two requests)."""
    digest = hashlib.sha256(f"{account.account_id}\n{body.model_dump_json()}".encode()).hexdigest()
    return inp.model_copy(update={"account": account, "body_sha256": digest, **fields})
