"""The API's schemas: every request body it parses and every answer it gives (answers built
from workflow models are named here, so the public contract is the API's own)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from api.errors import validation_problem
from common.account_settings import SettingsPolicy
from common.drift import DriftCheckResult
from common.email_address import Email
from common.landing_zone import Environment, Guardrails, LandingZone
from common.lease_policy import LeaseTemplate
from common.models import (
    ACCOUNT_NAME_PATTERN,
    INTERNAL_STATUSES,
    AccountRequest,
    ApprovalRecord,
    AuditEvent,
    BillingOptions,
    CompensationRecord,
    DriftItem,
    RequestKind,
    RequestPlan,
    RequestState,
    RequestStatus,
    StepState,
    WorkloadSecurityOptions,
)
from common.preflight import PreflightReport
from common.pricing import CostEstimate
from common.rollouts import RolloutState, WaveShape
from common.step_registry import ALL_STEP_NAMES, STEPS

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]

StepName = StrEnum("StepName", {name: name for name in ALL_STEP_NAMES})  # type: ignore[misc]


# What the API shows; ``validating`` and ``invalid`` are internal to the workflow.
PublicStatus = StrEnum(  # type: ignore[misc]
    "PublicStatus",
    {s.value: s.value for s in RequestStatus if s not in INTERNAL_STATUSES},
)


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: Annotated[str, StringConstraints(max_length=2000)] | None = None


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


class RetryBody(BaseModel):
    """Retry a failed step, optionally correcting what the step allows: ``account_email`` for
    create_account (AWS says the email is taken or invalid), ``organizational_unit`` for
    move_to_ou (the new OU must fit the request and need no more approvals than it has)."""

    model_config = ConfigDict(extra="forbid")
    step: StepName
    reason: Reason | None = None
    account_email: Email | None = None
    organizational_unit: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
        | None
    ) = None


class SkipBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: StepName
    reason: Reason


class StepView(StepState):
    corrections: list[str] = Field(
        default_factory=list,
        description="what an operator may correct when retrying this step (fields of the retry)",
    )


class AccountRequestView(BaseModel):
    id: str
    kind: RequestKind = RequestKind.vend
    status: RequestStatus
    request: AccountRequest
    requested_by: str
    created_at: datetime
    updated_at: datetime
    account_id: str | None
    organizational_unit_id: str | None
    approvals: list[ApprovalRecord]
    approvals_required: int
    approvals_remaining: int
    approval_expires_at: datetime | None
    steps: list[StepView]
    cost_estimate: CostEstimate | None = Field(
        default=None, description="monthly cost when the request states expected instances"
    )
    workload_security_connector_id: int | None = None
    billing_registration_id: str | None = None
    compensations: list[CompensationRecord] = Field(
        default_factory=list, description="what a cancellation undid, in order"
    )
    plan: RequestPlan | None = Field(
        default=None, description="what the request said it would do when it was made"
    )
    workflow_url: str | None = Field(default=None, description="The request in the Temporal UI")
    stale: bool = Field(
        default=False,
        description="true: no worker answered, so this is the request as Temporal recorded it at "
        "its last status change; steps may have moved on since",
    )

    @classmethod
    def of(
        cls, state: RequestState, workflow_url: str | None, *, stale: bool = False
    ) -> AccountRequestView:
        """Made of the state's own parts, validated when the state was: validating them again
        (a dump and a rebuild of each nested model) was a fifth of the approvals queue's CPU,
        twenty records a page."""
        shown = [
            StepView.model_construct(
                **{name: getattr(s, name) for name in StepState.model_fields},
                corrections=list(STEPS[s.name].corrects),
            )
            for s in state.steps
        ]
        shared = _SHARED_WITH_STATE
        data = {name: getattr(state, name) for name in shared}
        return cls.model_construct(**data, steps=shown, workflow_url=workflow_url, stale=stale)


_SHARED_WITH_STATE = tuple(
    name
    for name in AccountRequestView.model_fields
    if name in RequestState.model_fields and name != "steps"
)


class AccountRequestSummary(BaseModel):
    id: str
    kind: str = "vend"
    status: str
    account_name: str | None
    organizational_unit: str | None
    environment: str | None
    requested_by: str | None
    created_at: datetime | None
    account_id: str | None
    current_step: str | None


class AccountRequestPage(BaseModel):
    items: list[AccountRequestSummary]
    next_cursor: str | None


class ApprovalQueue(BaseModel):
    items: list[AccountRequestView]
    decided_by_you: int = Field(
        default=0, description="requests of this page left out: you approved them already"
    )
    next_cursor: str | None


class EventsView(BaseModel):
    items: list[AuditEvent]
    stale: bool = Field(
        default=False,
        description="true: no worker answered; the trail as recorded at the last status change",
    )


class AccountView(BaseModel):
    """A managed account, as the inventory holds it (``GET /v1/accounts/{account_id}``)."""

    account_id: str
    account_name: str
    account_email: str
    organizational_unit: str
    organizational_unit_id: str | None
    environment: str
    owner_email: str
    cost_center: str
    tags: dict[str, str]
    requested_by: str = Field(description="who asked for it (its vend or adopt request)")
    status: str
    control_tower: str
    baselines: list[dict[str, str]]
    workload_security: dict[str, object] | None
    billing: dict[str, object] | None
    requests: list[str] = Field(description="every request that touched it, newest first")
    current_change: str | None = None
    queued_changes: list[str] = Field(default_factory=list)
    managed_since: datetime | None = None
    last_checked_at: datetime | None = Field(
        default=None, description="when the last drift check looked at it"
    )
    drift: list[DriftItem] = Field(
        default_factory=list,
        description="what the last drift check found different from this record, each with "
        "the check that first found it (`POST /v1/accounts/{id}/repair` puts them back)",
    )
    stale: bool = False


class AccountSummary(BaseModel):
    account_id: str
    account_name: str | None
    organizational_unit: str | None
    environment: str | None
    status: str
    drifted: bool | None = Field(
        default=None, description="the last drift check's verdict; null before the first"
    )


class AccountPage(BaseModel):
    items: list[AccountSummary]
    next_cursor: str | None


class AccountEventView(AuditEvent):
    request_id: str | None = None


class AccountEventsView(BaseModel):
    """A page of the account's trail, oldest first; ``next_cursor`` asks for the page before."""

    items: list[AccountEventView]
    next_cursor: str | None = None
    dropped: int = Field(
        default=0,
        description="older lines the account no longer keeps: each request's own trail "
        "(GET /v1/account-requests/{id}/events) still has them",
    )
    stale: bool = Field(
        default=False, description="true: no worker answered; the newest lines as recorded"
    )


class DecommissionBody(BaseModel):
    """Close a managed account: quarantine, end billing, remove protection and baselines,
    unmanage, close. ``confirm_account_name`` must be the account's name, typed."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["decommission"]
    justification: Reason
    confirm_account_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]


class UpdateBody(BaseModel):
    """Change a managed account: any of the fields below; the result must fit the landing zone
    as a new request would (moving a dev account into Workloads/Prod needs environment prod).
    Only the steps the difference needs run."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["update"]
    justification: Reason
    organizational_unit: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
        | None
    ) = None
    environment: Environment | None = None
    account_name: Annotated[str, StringConstraints(pattern=ACCOUNT_NAME_PATTERN)] | None = None
    owner_email: Email | None = None
    cost_center: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
        | None
    ) = None
    tags: dict[str, str] | None = None
    workload_security: WorkloadSecurityOptions | None = None
    billing: BillingOptions | None = None

    def changes(self) -> dict[str, object]:
        """The fields asked to change, as an AccountRequest names them."""
        fields = self.model_dump(exclude={"kind", "justification"}, exclude_none=True)
        if self.owner_email is not None:
            fields["owner_email"] = self.owner_email.lower()
        return fields


ChangeBody = Annotated[DecommissionBody | UpdateBody, Field(discriminator="kind")]


class RepairBody(BaseModel):
    """Put back what the last drift check found: an update request that runs only the steps
    that make the drifted parts (approved as an update of the account's OU is)."""

    model_config = ConfigDict(extra="forbid")
    justification: Reason


class DriftCheckBody(BaseModel):
    """Run a drift check now (operators); by default of every managed account."""

    model_config = ConfigDict(extra="forbid")
    account_ids: list[Annotated[str, StringConstraints(pattern=r"^\d{12}$")]] = Field(
        default_factory=list, max_length=1000
    )
    detect_stack_set_drift: bool | None = Field(
        default=None,
        description=(
            "run DetectStackSetDrift on the baseline StackSets first (each covers every account"
            " of its StackSet); default: only when every account is checked"
        ),
    )


class DriftCheckView(BaseModel):
    id: str
    status: str = Field(description="running, completed, failed, ...")
    started_at: datetime | None = None
    closed_at: datetime | None = None
    result: DriftCheckResult | None = Field(
        default=None, description="accounts checked, drifted (per kind), and those not checked"
    )


class NewAccountRequest(AccountRequest):
    """``POST /v1/account-requests``: a request whose root email may be left out when the
    landing zone has an ``email_template`` (the email made is shown in the answer)."""

    # Optional here only: every request the engine keeps has its email (``resolved``).
    account_email: Email | None = Field(  # type: ignore[assignment]
        default=None,
        description="the root email; made from the landing zone's template if left out",
    )

    def resolved(self, lz: LandingZone) -> AccountRequest:
        data = self.model_dump()
        if data["account_email"] is None:
            if lz.email_template is None:
                raise validation_problem(
                    [
                        {
                            "loc": ["body", "account_email"],
                            "msg": "required: this landing zone makes no root email",
                        }
                    ]
                )
            data["account_email"] = lz.email_template.replace("{name}", self.account_name)
        try:
            return AccountRequest.model_validate(data)
        except ValidationError as err:  # the made email is not an address for this name
            raise validation_problem(
                [{"loc": ["body", "account_email"], "msg": e["msg"]} for e in err.errors()]
            ) from err


class AdoptBody(AccountRequest):
    """Bring an existing member account under management. ``account_name`` and
    ``account_email`` are typed as confirmation: they must be what Organizations says of
    ``account_id``, so nobody adopts the wrong account by a mistyped id."""

    account_id: Annotated[str, StringConstraints(pattern=r"^\d{12}$")]

    def as_request(self) -> AccountRequest:
        return AccountRequest.model_validate(self.model_dump(exclude={"account_id"}))


class OrganizationalUnitView(BaseModel):
    path: str
    environments: list[str]
    approvals_required: int
    approval_window_seconds: float
    baselines: list[str]
    workload_security: str
    control_tower_enrollment: str
    guardrails: Guardrails = Field(description="what accounts in the OU are held to")
    settings: SettingsPolicy = Field(
        description="the account settings its vends apply, with their defaults and bounds"
    )


class LandingZoneView(BaseModel):
    allowed_email_domains: list[str]
    email_template: str | None = Field(
        default=None, description="how a root email left out of a request is made"
    )
    organizational_units: list[OrganizationalUnitView]
    lease_templates: list[LeaseTemplate] = Field(
        default_factory=list, description="the sandbox lease templates open to the caller"
    )


class MeView(BaseModel):
    sub: str
    email: str | None
    roles: list[str]


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


class Route(BaseModel):
    method: str
    path: str
    summary: str | None


class ApiIndex(BaseModel):
    name: str
    version: str
    page: str
    openapi: str
    docs: str
    auth_mode: str
    how_to_get_a_token: str
    routes: list[Route]


class RequestPlanView(RequestPlan):
    """A request's preview as the API answers it (the plan the request would keep)."""

    @classmethod
    def of(cls, plan: RequestPlan) -> RequestPlanView:
        return cls.model_validate(plan.model_dump())


class RolloutView(RolloutState):
    """A rollout as the API answers it: its plan, waves, progress and trail."""

    @classmethod
    def of(cls, state: RolloutState) -> RolloutView:
        return cls.model_validate(state.model_dump(exclude={"accounts_left"}))


class HealthReport(PreflightReport):
    """The landing zone's health: ``vend doctor``'s checks, as a worker ran them."""

    @classmethod
    def of(cls, report: PreflightReport) -> HealthReport:
        return cls.model_validate(report.model_dump())
