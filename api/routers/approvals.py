"""The approvers' queue: requests waiting for this approver's decision, read from visibility.

Each request records its state in its memo at every status change and approval, so the queue
is one visibility page and no workflow query per request: before it, the web page listed 50
summaries and then queried each request's workflow, every 2 seconds, for each approver with the
page open (ten approvers: about 250 queries a second on the workers), and a request past the
50th never showed. Pages go on with ``cursor``; an unchanged page answers 304 to its ETag.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from temporalio.client import Client, WorkflowExecution

from api import cursor as cursors
from api.deps import Approver, ClientDep, SettingsDep
from api.errors import Problem
from api.openapi import problems
from api.routers.requests import request_view
from api.schemas import ApprovalQueue
from common import search_attributes as sa
from common import vending_contract as contract
from common.models import RequestState, RequestStatus

router = APIRouter(
    prefix="/v1/approvals",
    tags=["account-requests"],
    responses=problems(400, 401, 403, 422, 429, 503),
)


@router.get("", response_model=ApprovalQueue, responses={304: {"description": "unchanged"}})
async def approval_queue(
    user: Approver,
    client: ClientDep,
    settings: SettingsDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> ApprovalQueue | Response:
    """Requests waiting for approval that this approver may still decide: not their own, not
    already approved by them. A page may hold fewer than ``limit`` (those left out are counted
    in the page), and ``next_cursor`` says whether more follow."""
    query = " AND ".join(
        [
            f"WorkflowType = {sa.quote(contract.WORKFLOW)}",
            f"{sa.STATUS.name} = {sa.quote(RequestStatus.pending_approval.value)}",
            f"{sa.REQUESTER.name} != {sa.quote(user.sub)}",
        ]
    )
    key = settings.cursor_secret.get_secret_value().encode()
    try:
        token = cursors.decode(cursor, key) if cursor else None
    except cursors.InvalidCursor as err:
        raise Problem(422, "Invalid request", str(err), kind="validation") from err
    it = client.list_workflows(
        query,
        page_size=limit,
        next_page_token=token,
        rpc_timeout=timedelta(seconds=settings.temporal.update_timeout_seconds),
    )
    await it.fetch_next_page(page_size=limit)
    states = [await _state(client, wf) for wf in it.current_page or []]
    waiting = [
        s
        for s in states
        if s.status == RequestStatus.pending_approval
        and not any(a.by == user.sub for a in s.approvals)
    ]
    nxt = it.next_page_token
    page = ApprovalQueue(
        items=[request_view(s, settings) for s in waiting],
        decided_by_you=len(states) - len(waiting),
        next_cursor=cursors.encode(nxt, key) if nxt else None,
    )
    # The cursor is signed afresh each time: the ETag is of what the page shows.
    etag = (
        '"'
        + hashlib.sha256(page.model_dump_json(exclude={"next_cursor"}).encode()).hexdigest()[:32]
        + '"'
    )
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return page


async def _state(client: Client, wf: WorkflowExecution) -> RequestState:
    recorded: RequestState | None = await wf.memo_value(
        contract.STATE_MEMO, None, type_hint=RequestState
    )
    if recorded is not None:
        return recorded
    # A request from before its state was kept in its memo: ask its workflow.
    state: RequestState = await client.get_workflow_handle(wf.id).query(
        contract.GET_STATE, result_type=RequestState
    )
    return state
