"""The approvers' queue: one visibility page of requests waiting for approval, read from what
each request recorded in its memo (no workflow query per request)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecution

from api.schemas import ApprovalQueue
from api.services.requests import request_view
from api.temporal_calls import visibility_page
from common import search_attributes as sa
from common import vending_contract as contract
from common.models import Principal, RequestState, RequestStatus
from common.settings import Settings


async def approval_page(
    client: Client, settings: Settings, user: Principal, *, limit: int, cursor: str | None
) -> ApprovalQueue:
    """Requests waiting for approval that ``user`` may still decide; those on the page they have
    already approved are counted, not shown."""
    clauses = [
        f"WorkflowType = {sa.quote(contract.WORKFLOW)}",
        f"{sa.STATUS.name} = {sa.quote(RequestStatus.pending_approval.value)}",
        f"{sa.REQUESTER.name} != {sa.quote(user.sub)}",
    ]
    found, nxt = await visibility_page(client, clauses, settings, limit=limit, cursor=cursor)
    states = [await _state(client, wf) for wf in found]
    waiting = [
        s
        for s in states
        if s.status == RequestStatus.pending_approval
        and not any(a.by == user.sub for a in s.approvals)
    ]
    return ApprovalQueue(
        items=[request_view(s, settings) for s in waiting],
        decided_by_you=len(states) - len(waiting),
        next_cursor=nxt,
    )


async def _state(client: Client, wf: WorkflowExecution) -> RequestState:
    recorded: RequestState | None = await wf.memo_value(
        contract.STATE_MEMO, None, type_hint=RequestState
    )
    if recorded is not None:
        return recorded
    # Its state is recorded at its first status change: one that has none yet is asked.
    state: RequestState = await client.get_workflow_handle(wf.id).query(
        contract.GET_STATE, result_type=RequestState
    )
    return state
