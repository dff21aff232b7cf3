"""The approvers' queue: requests waiting for this approver's decision, read from visibility.

Each request records its state in its memo at every status change and approval, so the queue
is one visibility page and no workflow query per request: before it, the web page listed 50
summaries and then queried each request's workflow, every 2 seconds, for each approver with the
page open (ten approvers: about 250 queries a second on the workers), and a request past the
50th never showed. Pages go on with ``cursor``; an unchanged page answers 304 to its ETag.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from api.deps import Approver, ClientDep, SettingsDep
from api.openapi import problems
from api.schemas import ApprovalQueue
from api.services.approvals import approval_page

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
    page = await approval_page(client, settings, user, limit=limit, cursor=cursor)
    # The cursor is signed afresh each time: the ETag is of what the page shows.
    shown = page.model_dump_json(exclude={"next_cursor"}).encode()
    etag = '"' + hashlib.sha256(shown).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return page
