"""How the API asks Temporal: with a deadline, a record for when no worker answers, a signed
cursor for visibility pages, and a closed workflow answered as a conflict. Written once here;
every service calls these."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowExecution, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api import cursor as cursors
from api.errors import Problem
from common.settings import Settings

T = TypeVar("T")


def rpc_timeout(settings: Settings) -> timedelta:
    """Updates, starts, descriptions and visibility: they wait on the server, not a worker."""
    return timedelta(seconds=settings.temporal.update_timeout_seconds)


def query_timeout(settings: Settings) -> timedelta:
    """Queries wait on a worker: shorter, so a busy one is answered from the record instead."""
    return timedelta(seconds=settings.temporal.query_timeout_seconds)


async def query_or_recorded(
    handle: WorkflowHandle[Any, Any],
    query: str,
    memo_key: str,
    result_type: type[T],
    settings: Settings,
    *,
    missing: Problem,
    unrecorded: str = "no worker answered; try again",
) -> tuple[T, bool]:
    """The workflow's answer to ``query``; while no worker answers, what it recorded in its memo
    at its last change, flagged stale (True). ``missing``: the 404 of a workflow that does not
    exist; 503 when nothing answers and nothing was recorded."""
    try:
        answer: T = await handle.query(
            query, result_type=result_type, rpc_timeout=query_timeout(settings)
        )
        return answer, False
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise missing from err
        try:
            described = await handle.describe(rpc_timeout=rpc_timeout(settings))
            recorded: T | None = await described.memo_value(memo_key, None, type_hint=result_type)
        except RPCError:
            recorded = None
        if recorded is None:
            raise Problem(503, "Unavailable", unrecorded) from err
        return recorded, True


async def decided(
    handle: WorkflowHandle[Any, Any],
    update: str,
    arg: Any,
    result_type: type[T],
    settings: Settings,
    *,
    ended: str,
) -> T:
    """Send one decision (an update). The workflow's validators own the rules; an update that
    reaches a workflow which has closed is a conflict (409, ``ended`` says why)."""
    try:
        answer: T = await handle.execute_update(
            update, arg, result_type=result_type, rpc_timeout=rpc_timeout(settings)
        )
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        raise Problem(409, "Conflict", ended) from err
    return answer


async def visibility_page(
    client: Client,
    clauses: Sequence[str],
    settings: Settings,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[WorkflowExecution], str | None]:
    """One page of a visibility list, and the signed cursor of the next (None at the end).
    A cursor that was not signed here (or was changed) is a 422."""
    key = settings.cursor_secret.get_secret_value().encode()
    try:
        token = cursors.decode(cursor, key) if cursor else None
    except cursors.InvalidCursor as err:
        raise Problem(422, "Invalid request", str(err), kind="validation") from err
    it = client.list_workflows(
        " AND ".join(clauses),
        page_size=limit,
        next_page_token=token,
        rpc_timeout=rpc_timeout(settings),
    )
    await it.fetch_next_page(page_size=limit)
    nxt = it.next_page_token
    return list(it.current_page or []), cursors.encode(nxt, key) if nxt else None


async def memo_fields(wf: WorkflowExecution, keys: Iterable[str]) -> dict[str, Any]:
    """Only the memo fields a list row shows (absent ones None). A row's memo also holds the
    whole recorded state, and a request's its trail: decrypting and parsing those for each row
    of a list, to show four short strings, was most of what a list cost the API."""
    return {key: await wf.memo_value(key, None) for key in keys}
