"""Rollouts: the input of one (which OUs and accounts it reaches, the template it carries),
starting it, and reading and deciding it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Problem
from api.schemas import RolloutBody, RolloutSummary, RolloutView
from api.temporal_calls import decided, query_or_recorded
from common import rollouts as contract
from common.landing_zone import (
    LandingZone,
    OrganizationalUnitPolicy,
    WorkloadSecurityRequirement,
    template_path,
)
from common.rollouts import OuTarget, RolloutInput, RolloutKind, RolloutState, RolloutStatus
from common.settings import Settings

NOT_FOUND = Problem(404, "Not found", "no such rollout")


def rollout_handle(client: Client, rollout_id: str) -> WorkflowHandle[Any, Any]:
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


def _targets(ous: list[OrganizationalUnitPolicy]) -> list[OuTarget]:
    return [OuTarget(path=ou.path, approvals_required=ou.approvals_required) for ou in ous]


def rollout_input(body: RolloutBody, lz: LandingZone, settings: Settings, by: str) -> RolloutInput:
    shared: dict[str, Any] = {
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
        return _policy_input(body, lz, shared)
    return _baseline_input(body, lz, settings, shared)


def _policy_input(body: RolloutBody, lz: LandingZone, shared: dict[str, Any]) -> RolloutInput:
    protected = [
        ou
        for ou in lz.organizational_units
        if ou.workload_security != WorkloadSecurityRequirement.off
    ]
    having = _limit(protected, body.organizational_units, "Workload Security does not protect")
    return RolloutInput(
        **shared,
        kind=RolloutKind.workload_security_policy,
        policy=body.workload_security_policy,
        organizational_units=_targets(having),
    )


def _baseline_input(
    body: RolloutBody, lz: LandingZone, settings: Settings, shared: dict[str, Any]
) -> RolloutInput:
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
        **shared,
        baseline=baseline,
        template_body=template,
        parameters=body.parameters,
        organizational_units=_targets(having),
        template_reach=_targets(with_baseline),
    )


async def start_rollout(client: Client, settings: Settings, inp: RolloutInput) -> RolloutView:
    """Start the rollout and wait for its plan (accounts, waves, ETA); 422 if it has none."""
    handle = await client.start_workflow(
        contract.WORKFLOW,
        inp,
        result_type=RolloutState,
        id=contract.ID_PREFIX + inp.rollout_id,
        task_queue=settings.temporal.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )
    try:
        state: RolloutState = await handle.execute_update(
            contract.PLANNED, result_type=RolloutState, rpc_timeout=timedelta(minutes=5)
        )
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        # It ended before the update reached it (invalid, or nothing to change): its result is
        # the same state the update would have answered.
        state = await handle.result(rpc_timeout=timedelta(minutes=1))
    if state.status == RolloutStatus.invalid:
        raise Problem(422, "Invalid request", state.problem or "the rollout cannot be planned")
    return RolloutView.of(state)


async def read_rollout(client: Client, settings: Settings, rollout_id: str) -> RolloutView:
    state, _ = await query_or_recorded(
        rollout_handle(client, rollout_id),
        contract.GET_STATE,
        contract.STATE_MEMO,
        RolloutState,
        settings,
        missing=NOT_FOUND,
    )
    return RolloutView.of(state)


async def decide(
    client: Client, settings: Settings, rollout_id: str, update: str, by: str
) -> RolloutView:
    handle = rollout_handle(client, rollout_id)
    ended = "the rollout has ended or does not exist"
    return RolloutView.of(await decided(handle, update, by, RolloutState, settings, ended=ended))


async def summary(wf: WorkflowExecution) -> RolloutSummary:
    recorded = (await wf.memo()).get(contract.STATE_MEMO) or {}
    return RolloutSummary(
        rollout_id=wf.id.removeprefix(contract.ID_PREFIX),
        kind=recorded.get("kind"),
        stack_set=recorded.get("stack_set"),
        policy=recorded.get("policy"),
        status=recorded.get("status") or "planning",
        accounts_total=recorded.get("accounts_total"),
        accounts_done=recorded.get("accounts_done"),
    )
