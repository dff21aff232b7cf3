"""What a requester may ask for: the OUs open for vending and what each implies."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import CurrentUser, LandingZoneDep
from api.openapi import problems

router = APIRouter(prefix="/v1", tags=["landing-zone"], responses=problems(401, 429, 503))


class OrganizationalUnitView(BaseModel):
    path: str
    environments: list[str]
    approvals_required: int
    approval_window_seconds: float
    baselines: list[str]
    workload_security: str
    control_tower_enrollment: str


class LandingZoneView(BaseModel):
    allowed_email_domains: list[str]
    organizational_units: list[OrganizationalUnitView]


@router.get("/landing-zone", response_model=LandingZoneView)
async def get_landing_zone(user: CurrentUser, lz: LandingZoneDep) -> LandingZoneView:
    """The OUs open for vending, with approvals, baselines, protection and enrollment."""
    return LandingZoneView(
        allowed_email_domains=lz.allowed_email_domains,
        organizational_units=[
            OrganizationalUnitView(
                path=ou.path,
                environments=[e.value for e in ou.environments],
                approvals_required=ou.approvals_required,
                approval_window_seconds=ou.approval_window.total_seconds(),
                baselines=ou.baselines,
                workload_security=ou.workload_security.value,
                control_tower_enrollment=lz.enrollment_for(ou).value,
            )
            for ou in lz.organizational_units
            if ou.open_for_vending
        ],
    )


class MeView(BaseModel):
    sub: str
    email: str | None
    roles: list[str]


@router.get("/me", response_model=MeView)
async def get_me(user: CurrentUser) -> MeView:
    """Who the token says the caller is, with roles as this deployment maps them (the page
    shows what the caller may do from this, not from the token's raw claims)."""
    return MeView(sub=user.sub, email=user.email, roles=[r.value for r in user.roles])
