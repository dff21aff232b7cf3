"""``/v1/rollouts``: carry a baseline StackSet change to the accounts already vended.

A rollout is a workflow (``rollout-<id>``, see ``workflows/rollout.py``). The POST answers with
its plan (accounts, waves, the StackSet operations, an ETA) before anything runs; approval is
the strictest touched OU's quorum. Operators and admins make, pause, resume and cancel them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field, StringConstraints, model_validator
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Approver, ClientDep, LandingZoneDep, Operator, SettingsDep, Staff
from api.errors import Problem
from api.openapi import problems
from common import rollouts as contract
from common.landing_zone import (
    LandingZone,
    OrganizationalUnitPolicy,
    WorkloadSecurityRequirement,
    template_path,
)
from common.rollouts import (
    OuTarget,
    RolloutInput,
    RolloutKind,
    RolloutState,
    RolloutStatus,
    WaveShape,
)
from common.settings import Settings

router = APIRouter(
    prefix="/v1/rollouts",
    tags=["rollouts"],
    responses=problems(400, 401, 403, 413, 422, 429, 503),
)
NOT_FOUND = Problem(404, "Not found", "no such rollout")


class RolloutBody(BaseModel):
    baseline: str | None = Field(
        default=None,
        description=(
            "the baseline to roll out, by its name in the landing zone's baselines "
            "(e.g. vend-audit-role)"
        ),
    )
    workload_security_policy: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="or: the Workload Security policy to give the protected accounts",
    )
    reason: str = Field(min_length=3, max_length=1000)
    template_body: str | None = Field(
        default=None,
        max_length=51_200,
        description="the new template; left out, the landing zone file's template is used",
    )
    parameters: dict[
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,255}$")],
        Annotated[str, Field(max_length=4096)],
    ] = Field(
        default_factory=dict,
        max_length=60,  # CloudFormation's limit of parameters in a template
        description="parameter overrides to set on every instance; each key must be one of the"
        " StackSet's parameters",
    )
    organizational_units: list[str] = Field(
        default_factory=list,
        description="OU paths to limit it to; default: every OU that has the baseline (for a"
        " policy: every OU whose accounts Workload Security may protect)",
    )
    account_ids: list[Annotated[str, Field(pattern=r"^\d{12}$")]] = Field(
        default_factory=list, max_length=5000, description="an explicit subset of accounts"
    )
    tags: dict[Annotated[str, Field(max_length=128)], Annotated[str, Field(max_length=256)]] = (
        Field(
            default_factory=dict,
            max_length=10,
            description="only accounts whose Organizations tags include every one of these",
        )
    )
    waves: WaveShape = Field(default_factory=WaveShape)
    max_failed_accounts: int = Field(default=0, ge=0, le=5000)
    max_concurrent_percentage: int = Field(default=100, ge=1, le=100)

    @model_validator(mode="after")
    def _one_change(self) -> RolloutBody:
        if (self.baseline is None) == (self.workload_security_policy is None):
            raise ValueError("name either a baseline or a workload_security_policy")
        if self.workload_security_policy is not None and (self.template_body or self.parameters):
            raise ValueError("a policy rollout takes no template_body or parameters")
        return self


class RolloutSummary(BaseModel):
    rollout_id: str
    kind: str | None = None
    stack_set: str | None
    policy: str | None = None
    status: str
    accounts_total: int | None = None
    accounts_done: int | None = None


class RolloutPage(BaseModel):
    items: list[RolloutSummary]


def _timeout(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.temporal.update_timeout_seconds)


def _handle(client: Client, rollout_id: str) -> WorkflowHandle[Any, Any]:
    try:
        uuid.UUID(rollout_id)
    except ValueError as err:
        raise NOT_FOUND from err
    return client.get_workflow_handle(contract.ID_PREFIX + rollout_id)


def _invalid(detail: str) -> Problem:
    return Problem(422, "Invalid request", detail, kind="validation")


def _limit(
    having: list[OrganizationalUnitPolicy], asked: list[str], what: str
) -> list[OrganizationalUnitPolicy]:
    """The OUs the change concerns, cut to those asked for (each must be one of them)."""
    if not asked:
        return having
    unknown = sorted(set(asked) - {ou.path for ou in having})
    if unknown:
        raise _invalid(f"OUs {what}: {unknown}")
    return [ou for ou in having if ou.path in asked]


def _input(body: RolloutBody, lz: LandingZone, settings: Settings, by: str) -> RolloutInput:
    common: dict[str, Any] = {
        "rollout_id": str(uuid.uuid4()),
        "requested_by": by,
        "reason": body.reason,
        "account_ids": body.account_ids,
        "tags": body.tags,
        "waves": body.waves,
        "max_failed_accounts": body.max_failed_accounts,
        "max_concurrent_percentage": body.max_concurrent_percentage,
        "heartbeat_seconds": settings.steps.heartbeat_timeout_seconds,
    }
    if body.workload_security_policy is not None:
        protected = [
            ou
            for ou in lz.organizational_units
            if ou.workload_security != WorkloadSecurityRequirement.off
        ]
        having = _limit(protected, body.organizational_units, "Workload Security does not protect")
        return RolloutInput(
            **common,
            kind=RolloutKind.workload_security_policy,
            policy=body.workload_security_policy,
            organizational_units=[
                OuTarget(path=ou.path, approvals_required=ou.approvals_required) for ou in having
            ],
        )
    assert body.baseline is not None
    baseline = lz.baselines.get(body.baseline)
    if baseline is None:
        raise _invalid(
            f"no baseline {body.baseline!r} in the landing zone; it has {sorted(lz.baselines)}"
        )
    with_baseline = [ou for ou in lz.organizational_units if body.baseline in ou.baselines]
    having = _limit(
        with_baseline, body.organizational_units, f"without the baseline {body.baseline!r}"
    )
    template = body.template_body
    if template is None and (path := template_path(settings.landing_zone_file, baseline)):
        template = path.read_text()
    return RolloutInput(
        **common,
        baseline=baseline,
        template_body=template,
        parameters=body.parameters,
        organizational_units=[
            OuTarget(path=ou.path, approvals_required=ou.approvals_required) for ou in having
        ],
        template_reach=[
            OuTarget(path=ou.path, approvals_required=ou.approvals_required) for ou in with_baseline
        ],
    )


@router.post(
    "", response_model=RolloutState, status_code=status.HTTP_201_CREATED, responses=problems(422)
)
async def create_rollout(
    body: RolloutBody, user: Operator, client: ClientDep, lz: LandingZoneDep, settings: SettingsDep
) -> RolloutState:
    """Plan a rollout; it runs once approved (at once when no touched OU asks for approval)."""
    inp = _input(body, lz, settings, user.sub)
    handle = await client.start_workflow(
        contract.WORKFLOW,
        inp,
        id=contract.ID_PREFIX + inp.rollout_id,
        task_queue=settings.temporal.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )
    state: RolloutState = await handle.execute_update(
        contract.PLANNED, result_type=RolloutState, rpc_timeout=timedelta(minutes=5)
    )
    if state.status == RolloutStatus.invalid:
        raise Problem(422, "Invalid request", state.problem or "the rollout cannot be planned")
    return state


@router.get("", response_model=RolloutPage)
async def list_rollouts(
    user: Staff,
    client: ClientDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RolloutPage:
    """The newest rollouts first (visibility; eventually consistent)."""
    items: list[RolloutSummary] = []
    async for wf in client.list_workflows(
        f"WorkflowType = '{contract.WORKFLOW}'", limit=limit, rpc_timeout=_timeout(settings)
    ):
        memo = await wf.memo()
        recorded = memo.get(contract.STATE_MEMO) or {}
        items.append(
            RolloutSummary(
                rollout_id=wf.id.removeprefix(contract.ID_PREFIX),
                kind=recorded.get("kind"),
                stack_set=recorded.get("stack_set"),
                policy=recorded.get("policy"),
                status=recorded.get("status") or "planning",
                accounts_total=recorded.get("accounts_total"),
                accounts_done=recorded.get("accounts_done"),
            )
        )
    return RolloutPage(items=items)


@router.get("/{rollout_id}", response_model=RolloutState, responses=problems(404))
async def get_rollout(
    rollout_id: str, user: Staff, client: ClientDep, settings: SettingsDep
) -> RolloutState:
    """Progress: waves, operations, accounts done / failed / left, ETA."""
    handle = _handle(client, rollout_id)
    try:
        state: RolloutState = await handle.query(
            contract.GET_STATE,
            result_type=RolloutState,
            rpc_timeout=timedelta(seconds=settings.temporal.query_timeout_seconds),
        )
        return state
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise NOT_FOUND from err
        described = await handle.describe(rpc_timeout=_timeout(settings))
        recorded: RolloutState | None = await described.memo_value(
            contract.STATE_MEMO, None, type_hint=RolloutState
        )
        if recorded is None:
            raise Problem(503, "Unavailable", "no worker answered; try again") from err
        return recorded


async def _decide(
    rollout_id: str, update: str, by: str, client: Client, settings: Settings
) -> RolloutState:
    handle = _handle(client, rollout_id)
    try:
        state: RolloutState = await handle.execute_update(
            update, by, result_type=RolloutState, rpc_timeout=_timeout(settings)
        )
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        raise Problem(409, "Conflict", "the rollout has ended or does not exist") from err
    return state


@router.post("/{rollout_id}/approve", response_model=RolloutState, responses=problems(404, 409))
async def approve_rollout(
    rollout_id: str, user: Approver, client: ClientDep, settings: SettingsDep
) -> RolloutState:
    return await _decide(rollout_id, contract.APPROVE, user.sub, client, settings)


@router.post("/{rollout_id}/pause", response_model=RolloutState, responses=problems(404, 409))
async def pause_rollout(
    rollout_id: str, user: Operator, client: ClientDep, settings: SettingsDep
) -> RolloutState:
    """Stops before the next wave; the running operation ends as AWS runs it."""
    return await _decide(rollout_id, contract.PAUSE, user.sub, client, settings)


@router.post("/{rollout_id}/resume", response_model=RolloutState, responses=problems(404, 409))
async def resume_rollout(
    rollout_id: str, user: Operator, client: ClientDep, settings: SettingsDep
) -> RolloutState:
    return await _decide(rollout_id, contract.RESUME, user.sub, client, settings)


@router.post("/{rollout_id}/cancel", response_model=RolloutState, responses=problems(404, 409))
async def cancel_rollout(
    rollout_id: str, user: Operator, client: ClientDep, settings: SettingsDep
) -> RolloutState:
    """No further wave starts; what ran stays (each wave is a complete StackSet update)."""
    return await _decide(rollout_id, contract.CANCEL, user.sub, client, settings)
