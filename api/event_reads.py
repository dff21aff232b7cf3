"""Audit trails read from their workflows, or while no worker answers from what Temporal holds.

A query needs a worker; a trail is still wanted when none polls (a deploy, an outage), as the
state reads are: each workflow also records its newest events in its memo at every status
change, and those are answered instead, marked stale. Every call has a deadline.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Problem
from common import account_contract, vending_contract
from common.models import AuditEvent, EventWindow
from common.settings import Settings

UNAVAILABLE = Problem(503, "Unavailable", "no worker answered and nothing was recorded; try again")


async def _queried(
    handle: WorkflowHandle[Any, Any], query: str, result_type: type, settings: Settings
) -> Any:
    """The query's answer, or None when no worker answered (a missing workflow raises)."""
    try:
        return await handle.query(
            query,
            result_type=result_type,
            rpc_timeout=timedelta(seconds=settings.temporal.query_timeout_seconds),
        )
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise
        return None


async def _recorded(
    handle: WorkflowHandle[Any, Any], key: str, type_hint: type, settings: Settings
) -> Any:
    try:
        described = await handle.describe(
            rpc_timeout=timedelta(seconds=settings.temporal.update_timeout_seconds)
        )
        memo = await described.memo()
    except RPCError as err:
        raise UNAVAILABLE from err
    if key not in memo:
        raise UNAVAILABLE
    return TypeAdapter(type_hint).validate_python(memo[key])


async def request_events(
    handle: WorkflowHandle[Any, Any], settings: Settings
) -> tuple[list[AuditEvent], bool]:
    """A request's trail, and whether it is the recorded (stale) one."""
    events = await _queried(handle, vending_contract.GET_EVENTS, list[AuditEvent], settings)
    if events is not None:
        return events, False
    recorded = await _recorded(handle, vending_contract.EVENTS_MEMO, list[AuditEvent], settings)
    return recorded, True


async def account_events(
    handle: WorkflowHandle[Any, Any], settings: Settings
) -> tuple[EventWindow, bool]:
    """The account's kept trail, and whether it is the recorded (stale, newest lines) one."""
    window = await _queried(handle, account_contract.GET_EVENTS, EventWindow, settings)
    if window is not None:
        return window, False
    recorded = await _recorded(handle, account_contract.EVENTS_MEMO, EventWindow, settings)
    return recorded, True


def page(window: EventWindow, before: int | None, limit: int) -> tuple[EventWindow, int | None]:
    """The ``limit`` lines just before position ``before`` (the newest when None), oldest first,
    and the position to ask for the page before them (None: nothing older is kept)."""
    end = len(window.items) if before is None else max(0, before - window.first)
    end = min(end, len(window.items))
    start = max(0, end - limit)
    older = window.first + start if start > 0 else None
    return EventWindow(items=window.items[start:end], first=window.first + start), older
