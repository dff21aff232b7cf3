"""What a requester may ask for: the OUs open for vending and what each implies."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Request
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from api.deps import ClientDep, CurrentUser, LandingZoneDep, LimiterDep, Operator, SettingsDep
from api.errors import Problem
from api.openapi import problems
from api.schemas import HealthReport, LandingZoneView, MeView, OrganizationalUnitView
from api.shared_answers import SharedAnswer
from common import preflight
from common.preflight import PreflightReport
from common.settings import Settings

router = APIRouter(prefix="/v1", tags=["landing-zone"], responses=problems(401, 429, 503))


@router.get("/landing-zone", response_model=LandingZoneView)
async def get_landing_zone(user: CurrentUser, lz: LandingZoneDep) -> LandingZoneView:
    """The OUs open for vending, with approvals, baselines, protection and enrollment."""
    return LandingZoneView(
        allowed_email_domains=lz.allowed_email_domains,
        email_template=lz.email_template,
        organizational_units=[
            OrganizationalUnitView(
                path=ou.path,
                environments=[e.value for e in ou.environments],
                approvals_required=ou.approvals_required,
                approval_window_seconds=ou.approval_window.total_seconds(),
                baselines=ou.baselines,
                workload_security=ou.workload_security.value,
                control_tower_enrollment=lz.enrollment_for(ou).value,
                guardrails=ou.guardrails,
                settings=lz.settings_for(ou),
            )
            for ou in lz.organizational_units
            if ou.open_for_vending
        ],
        lease_templates=[
            t for t in lz.lease_templates if t.may_lease([r.value for r in user.roles])
        ],
    )


@router.get("/me", response_model=MeView)
async def get_me(user: CurrentUser) -> MeView:
    """Who the token says the caller is, with roles as this deployment maps them (the page
    shows what the caller may do from this, not from the token's raw claims)."""
    return MeView(sub=user.sub, email=user.email, roles=[r.value for r in user.roles])


@router.get("/landing-zone/health", response_model=HealthReport, responses=problems(403))
async def get_landing_zone_health(
    request: Request, user: Operator, client: ClientDep, settings: SettingsDep, limiter: LimiterDep
) -> HealthReport:
    """``vend doctor``'s checks, run by a worker (it holds the credentials and keys): each with
    ok / warning / failed, what it found and the fix. Read-only. One report answers every caller
    for ``VEND_LIMITS__HEALTH_CACHE_SECONDS`` (its ``checked_at`` says when it was made)."""
    limiter.take(user.sub, "check")
    shared: SharedAnswer[PreflightReport] = request.app.state.health
    return HealthReport.of(await shared.get(lambda: _run_preflight(client, settings)))


async def _run_preflight(client: Client, settings: Settings) -> PreflightReport:
    try:
        report: PreflightReport = await client.execute_workflow(
            preflight.WORKFLOW,
            id=f"preflight-{uuid.uuid4()}",
            task_queue=settings.temporal.task_queue,
            result_type=PreflightReport,
            execution_timeout=timedelta(seconds=90),
            rpc_timeout=timedelta(seconds=95),
        )
    except (WorkflowFailureError, RPCError) as err:
        raise Problem(
            503, "Unavailable", "no worker ran the checks in time; is a worker running?"
        ) from err
    return report
