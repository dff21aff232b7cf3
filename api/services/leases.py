"""Leases and pools for the API: who may ask, see and decide what, and the views they get.

A lease is a workflow (``lease-<id>``) and each pool one more (``lease-pool-<ou>``): the API
reads and decides through them only. A holder sees their own leases; approvers and operators
see every lease; operators see the pools.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.errors import Problem
from api.lease_schemas import LeaseBody, LeaseView, PoolView
from api.temporal_calls import decided, query_or_recorded, rpc_timeout
from common import leases as contract
from common import search_attributes as sa
from common.landing_zone import LandingZone
from common.leases import LeaseInput, LeaseState, PoolState
from common.models import Principal, Role
from common.settings import Settings

NOT_FOUND = Problem(404, "Not found", "no such lease")
POOL_NOT_FOUND = Problem(404, "Not found", "no such pool")
KIND = "lease"


def lease_input(
    body: LeaseBody, user: Principal, lz: LandingZone, settings: Settings, lease_id: str
) -> LeaseInput:
    """The lease as asked, held to its template: 403 for who may not, 422 for what is out of
    its bounds."""
    template = lz.lease_template(body.template)
    if template is None:
        known = ", ".join(t.name for t in lz.lease_templates) or "none"
        raise _invalid("template", f"unknown lease template {body.template!r}; known: {known}")
    if not template.may_lease([r.value for r in user.roles]):
        raise Problem(403, "Forbidden", f"template {template.name} is not open to you")
    duration = body.duration or template.duration()
    if duration > template.max_duration or duration <= timedelta(0):
        raise _invalid("duration", f"at most {template.max_duration} for {template.name}")
    budget = body.budget_usd or template.budget()
    if budget > template.max_budget_usd:
        raise _invalid("budget_usd", f"at most {template.max_budget_usd} USD for {template.name}")
    if body.for_group is not None and body.for_group not in template.groups:
        allowed = ", ".join(template.groups) or "none"
        raise _invalid("for_group", f"not a group {template.name} leases to (allowed: {allowed})")
    return LeaseInput(
        lease_id=lease_id,
        template=template,
        pool=contract.pool_id(template.organizational_unit),
        holder=user,
        holder_email=user.email,
        for_group=body.for_group,
        justification=body.justification,
        duration_seconds=duration.total_seconds(),
        budget_usd=budget,
        created_at=datetime.now(UTC),
        sign_in_url=settings.leases.sign_in_url,
        spend_check_seconds=settings.leases.spend_check_seconds,
        heartbeat_seconds=settings.steps.heartbeat_timeout_seconds,
        baselines=[lz.baselines[name] for name in template.baselines],
        stack_set_preferences=lz.stack_set_preferences,
    )


def _invalid(field: str, msg: str) -> Problem:
    return Problem(
        422,
        "Invalid request",
        f"{field}: {msg}",
        kind="validation",
        errors=[{"loc": ["body", field], "msg": msg}],
    )


async def start_lease(
    client: Client, settings: Settings, inp: LeaseInput, fingerprint: str
) -> LeaseView:
    """Start the lease; an Idempotency-Key replay answers the lease it made (running or
    ended), or 422 when the key was used with another body."""
    try:
        handle = await _start(client, settings, inp, fingerprint)
    except WorkflowAlreadyStartedError:  # ended already, and its id is never reused
        handle = client.get_workflow_handle(contract.lease_workflow_id(inp.lease_id))
    described = await handle.describe(rpc_timeout=rpc_timeout(settings))
    if (await described.memo()).get("body_sha256") != fingerprint:
        raise Problem(
            422,
            "Invalid request",
            "this Idempotency-Key was already used with a different request body",
            kind="idempotencykeyreused",
        )
    state, _ = await _state(handle, settings)
    return view(state)


async def _start(
    client: Client, settings: Settings, inp: LeaseInput, fingerprint: str
) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        contract.LEASE_WORKFLOW,
        inp,
        id=contract.lease_workflow_id(inp.lease_id),
        task_queue=settings.temporal.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.KIND, KIND),
                SearchAttributePair(sa.REQUESTER, inp.holder.sub),
                SearchAttributePair(sa.OU, inp.template.organizational_unit),
                SearchAttributePair(sa.STATUS, "pending_approval"),
            ]
        ),
        memo={"template": inp.template.name, "holder": inp.holder.sub, "body_sha256": fingerprint},
        static_summary=f"lease {inp.template.name} ({inp.holder.sub})",
        rpc_timeout=rpc_timeout(settings),
    )


def lease_id_for(user: Principal, idempotency_key: str | None) -> str:
    if idempotency_key:
        return str(uuid.uuid5(_LEASES, f"{user.sub}\n{idempotency_key}"))
    return str(uuid.uuid4())


_LEASES = uuid.UUID("9d7c2f4e-1b8a-4f0e-a3c5-6e2d1f9b8a70")


def handle_of(client: Client, lease_id: str) -> WorkflowHandle[Any, Any]:
    try:
        parsed = str(uuid.UUID(lease_id))
    except ValueError as err:
        raise NOT_FOUND from err
    return client.get_workflow_handle(contract.lease_workflow_id(parsed))


async def _state(handle: WorkflowHandle[Any, Any], settings: Settings) -> tuple[LeaseState, bool]:
    return await query_or_recorded(
        handle, contract.GET_STATE, contract.STATE_MEMO, LeaseState, settings, missing=NOT_FOUND
    )


async def visible(
    client: Client, settings: Settings, lease_id: str, user: Principal
) -> tuple[WorkflowHandle[Any, Any], LeaseState]:
    """The lease if this user may see it; 404 otherwise (no existence leak)."""
    handle = handle_of(client, lease_id)
    state, _ = await _state(handle, settings)
    if state.holder != user.sub and not user.has(Role.approver, Role.operator, Role.admin):
        raise NOT_FOUND
    return handle, state


def view(state: LeaseState) -> LeaseView:
    now = datetime.now(UTC)
    left = None
    if state.ends_at is not None and state.status in contract.LIVE:
        left = max(0.0, (state.ends_at - now).total_seconds())
    return LeaseView(**state.model_dump(), time_left_seconds=left)


async def decide(
    client: Client,
    settings: Settings,
    lease_id: str,
    user: Principal,
    update: str,
    arg: Any,
    *,
    holder_may: bool | Callable[[LeaseState], bool],
    staff: tuple[Role, ...] = (Role.operator, Role.admin),
) -> LeaseView:
    """``holder_may``: whether the holder may (or a rule of the lease's state); ``staff``: the
    roles that always may (the workflow's validators keep their own rules on top)."""
    handle, state = await visible(client, settings, lease_id, user)
    holder = holder_may(state) if callable(holder_may) else holder_may
    if not ((holder and state.holder == user.sub) or user.has(*staff)):
        raise Problem(403, "Forbidden", "not yours to decide")
    ended = f"the lease is {state.status.value} and can no longer change"
    new = await decided(handle, update, arg, LeaseState, settings, ended=ended)
    return view(new)


def list_query(
    user: Principal, status: str | None, template: str | None, holder: str | None
) -> str:
    clauses = [f"WorkflowType = {sa.quote(contract.LEASE_WORKFLOW)}"]
    if not user.has(Role.approver, Role.operator, Role.admin):
        holder = user.sub  # a holder sees only their own
    if holder:
        clauses.append(f"{sa.REQUESTER.name} = {sa.quote(holder)}")
    if status:
        clauses.append(f"{sa.STATUS.name} = {sa.quote(status)}")
    del template  # filtered on the memo: no search attribute carries it
    return " AND ".join(clauses)


async def pools(client: Client, settings: Settings, lz: LandingZone) -> list[PoolView]:
    found = []
    for spec in lz.pools:
        handle = client.get_workflow_handle(contract.pool_id(spec.organizational_unit))
        state, stale = await query_or_recorded(
            handle,
            contract.GET_STATE,
            contract.POOL_MEMO,
            PoolState,
            settings,
            missing=POOL_NOT_FOUND,
        )
        found.append(PoolView.of(state, stale))
    return found


def pool_handle(client: Client, lz: LandingZone, organizational_unit: str) -> Any:
    if lz.pool_for(organizational_unit) is None:
        raise POOL_NOT_FOUND
    return client.get_workflow_handle(contract.pool_id(organizational_unit))
