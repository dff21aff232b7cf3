"""``/v1/drift-checks``: run the drift check now, and read what a check found.

The check is a workflow (``drift-check-<id>``, see ``workflows/drift.py``); the Schedule starts
one a day on its own. What each account drifted from lives on the account
(``GET /v1/accounts/{id}``, ``GET /v1/accounts?drifted=true``); a check's answer is the count.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from api.deps import ClientDep, LimiterDep, Operator, SettingsDep
from api.errors import Problem
from api.openapi import problems
from api.quotas import below_running_checks
from api.schemas import DriftCheckBody, DriftCheckView
from api.temporal_calls import rpc_timeout
from common import drift
from common.drift import DriftCheckInput, DriftCheckResult

router = APIRouter(
    prefix="/v1/drift-checks",
    tags=["drift"],
    responses=problems(400, 401, 403, 413, 422, 429, 503),
)
NOT_FOUND = Problem(404, "Not found", "no such drift check")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DriftCheckView)
async def start_drift_check(
    body: DriftCheckBody,
    user: Operator,
    client: ClientDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    response: Response,
) -> DriftCheckView:
    """Check every managed account (or those named) against its record, now. A check of every
    account asked for while one runs is answered with that one; checks of named accounts have
    a rate per caller and a cap on how many run at once (429). Whoever asks, one
    DetectStackSetDrift runs per StackSet at a time: the others share it."""
    if body.account_ids:
        limiter.take(user.sub, "check")
        await below_running_checks(client, settings)
    check_id = str(uuid.uuid4()) if body.account_ids else drift.EVERY_ACCOUNT
    await client.start_workflow(
        drift.WORKFLOW,
        DriftCheckInput(
            account_ids=body.account_ids,
            batch_size=settings.drift.batch_size,
            parallel_batches=settings.drift.parallel_batches,
            detect_stack_set_drift=body.detect_stack_set_drift,
            detection_busy_wait_seconds=settings.drift.detection_busy_wait_seconds,
        ),
        id=drift.ID_PREFIX + check_id,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        task_queue=settings.temporal.task_queue,
        rpc_timeout=rpc_timeout(settings),
    )
    response.headers["Location"] = f"/v1/drift-checks/{check_id}"
    return DriftCheckView(id=check_id, status="running")


@router.get("/{check_id}", response_model=DriftCheckView, responses=problems(404))
async def get_drift_check(
    check_id: str, user: Operator, client: ClientDep, settings: SettingsDep
) -> DriftCheckView:
    try:
        uuid.UUID(check_id)
    except ValueError as err:
        raise NOT_FOUND from err
    handle = client.get_workflow_handle(drift.ID_PREFIX + check_id, result_type=DriftCheckResult)
    timeout = rpc_timeout(settings)
    try:
        described = await handle.describe(rpc_timeout=timeout)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NOT_FOUND from err
        raise
    state = described.status
    result: DriftCheckResult | None = None
    if state == WorkflowExecutionStatus.COMPLETED:
        result = await handle.result(rpc_timeout=timeout)
    return DriftCheckView(
        id=check_id,
        status=state.name.lower() if state else "unknown",
        started_at=described.start_time,
        closed_at=described.close_time,
        result=result,
    )
