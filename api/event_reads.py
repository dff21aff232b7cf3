"""Audit trails read from their workflows, or while no worker answers from what Temporal holds.

A query needs a worker; a trail is still wanted when none polls (a deploy, an outage), as the
state reads are: each workflow also records its newest events in its memo at every status
change, and those are answered instead, marked stale. Every call has a deadline.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle

from api.errors import Problem
from api.temporal_calls import query_or_recorded
from common import account_contract, vending_contract
from common.models import AuditEvent, EventWindow
from common.settings import Settings

UNRECORDED = "no worker answered and nothing was recorded; try again"
GONE = Problem(404, "Not found", "no such workflow")


async def request_events(
    handle: WorkflowHandle[Any, Any], settings: Settings
) -> tuple[list[AuditEvent], bool]:
    """A request's trail, and whether it is the recorded (stale) one."""
    return await query_or_recorded(
        handle,
        vending_contract.GET_EVENTS,
        vending_contract.EVENTS_MEMO,
        list[AuditEvent],
        settings,
        missing=GONE,
        unrecorded=UNRECORDED,
    )


async def account_events(
    handle: WorkflowHandle[Any, Any], settings: Settings
) -> tuple[EventWindow, bool]:
    """The account's kept trail, and whether it is the recorded (stale, newest lines) one."""
    return await query_or_recorded(
        handle,
        account_contract.GET_EVENTS,
        account_contract.EVENTS_MEMO,
        EventWindow,
        settings,
        missing=GONE,
        unrecorded=UNRECORDED,
    )


def page(window: EventWindow, before: int | None, limit: int) -> tuple[EventWindow, int | None]:
    """The ``limit`` lines just before position ``before`` (the newest when None), oldest first,
    and the position to ask for the page before them (None: nothing older is kept)."""
    end = len(window.items) if before is None else max(0, before - window.first)
    end = min(end, len(window.items))
    start = max(0, end - limit)
    older = window.first + start if start > 0 else None
    return EventWindow(items=window.items[start:end], first=window.first + start), older
