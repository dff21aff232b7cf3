"""The caps on open requests, counted in visibility (so across every API replica).

A requester may hold so many open requests at once, whatever their kind (a vend holds claims on
a name and an email; a change, an adoption and a repair each run AWS steps); and one account may
have so many changes open at once, so that nobody can queue an unbounded line of changes on an
account whose OU approves them automatically.
"""

from __future__ import annotations

from temporalio.client import Client

from api.errors import Problem
from api.temporal_calls import rpc_timeout
from common import drift
from common import search_attributes as sa
from common import vending_contract as contract
from common.models import Principal
from common.settings import Settings

_OPEN = f"WorkflowType = {sa.quote(contract.WORKFLOW)} AND ExecutionStatus = 'Running'"


async def _count(client: Client, settings: Settings, query: str) -> int:
    timeout = rpc_timeout(settings)
    counted = await client.count_workflows(query, rpc_timeout=timeout)
    return counted.count


async def below_open_quota(client: Client, settings: Settings, user: Principal) -> None:
    """Past the cap of open requests per requester: 429 until some close."""
    cap = settings.limits.open_requests_per_requester
    if cap <= 0:
        return
    count = await _count(
        client, settings, f"{_OPEN} AND {sa.REQUESTER.name} = {sa.quote(user.sub)}"
    )
    if count >= cap:
        raise Problem(
            429,
            "Too many requests",
            f"{user.sub} has {count} open account requests, the most one requester may "
            "have; wait for some to finish or cancel one",
            kind="too-many-open-requests",
        )


async def below_account_change_cap(client: Client, settings: Settings, account_id: str) -> None:
    """Past the cap of open changes on one account (waiting for approval, for their turn, or
    running): 429 until some close."""
    cap = settings.limits.open_changes_per_account
    if cap <= 0:
        return
    query = f"{_OPEN} AND {sa.ACCOUNT_ID.name} = {sa.quote(account_id)}"
    count = await _count(client, settings, query)
    if count >= cap:
        raise Problem(
            429,
            "Too many requests",
            f"account {account_id} has {count} open changes, the most one account may have; "
            "wait for them to finish or cancel one",
            kind="too-many-open-changes",
        )


async def below_running_checks(client: Client, settings: Settings) -> None:
    """Past the cap of drift checks of named accounts running at once: 429 until one ends."""
    cap = settings.drift.max_running_checks
    if cap <= 0:
        return
    query = f"WorkflowType = {sa.quote(drift.WORKFLOW)} AND ExecutionStatus = 'Running'"
    running = await _count(client, settings, query)
    if running >= cap:
        raise Problem(
            429,
            "Too many requests",
            f"{running} drift checks are running, the most at once; wait for one to finish "
            "(GET /v1/drift-checks/{id})",
            kind="too-many-checks",
            headers={"Retry-After": "30"},
        )
