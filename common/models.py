"""Domain models shared by the API, the workflow and the activities.

They travel through Temporal with the pydantic data converter, so they are the wire format of
workflow history as much as of the HTTP API: add fields with defaults, never rename.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from common.account_settings import (
    AccessRequest,
    AlternateContacts,
    BudgetRequest,
    EffectiveSettings,
    SettingsPolicy,
)
from common.email_address import Email
from common.landing_zone import (
    AdoptionSource,
    EnrollmentStrategy,
    Environment,
    StackSetBaseline,
    StackSetPreferences,
    WorkloadSecurityRequirement,
)
from common.pricing import CostEstimate, InstanceCounts

ACCOUNT_NAME_PATTERN = r"^[a-z0-9-]{3,50}$"
RESERVED_TAG_PREFIXES = ("aws:", "vending:")
_TAG_CHARS = re.compile(r"^[\w\s.:/=+\-@]*$")


class RequestKind(StrEnum):
    vend = "vend"
    decommission = "decommission"
    adopt = "adopt"
    update = "update"


class AccountStatus(StrEnum):
    active = "active"
    changing = "changing"
    decommissioning = "decommissioning"
    closed = "closed"


class RequestStatus(StrEnum):
    validating = "validating"  # internal: before the submit update has answered
    invalid = "invalid"  # internal: refused at submission, hidden from lists
    pending_approval = "pending_approval"
    rejected = "rejected"
    provisioning = "provisioning"
    waiting_for_operator = "waiting_for_operator"
    completed = "completed"
    cancelled = "cancelled"
    expired = "expired"


INTERNAL_STATUSES = frozenset({RequestStatus.validating, RequestStatus.invalid})


class StepStatus(StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"


class Role(StrEnum):
    requester = "requester"
    approver = "approver"
    operator = "operator"
    admin = "admin"


class WorkloadSecurityOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    policy: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class BillingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Sunny Pay customer ids are letters, digits, '-' and '_': anything else could change the
    # path it is put in (``/v1/customers/{customer_id}``).
    customer_id: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$"
        ),
    ]
    plan: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None


class AccountRequest(BaseModel):
    """What a team asks for: the body of ``POST /v1/account-requests``."""

    model_config = ConfigDict(extra="forbid")

    account_name: Annotated[str, StringConstraints(pattern=ACCOUNT_NAME_PATTERN)] = Field(
        description="3-50 characters: lower-case letters, digits and '-'."
    )
    account_email: Email
    organizational_unit: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        examples=["Workloads/Prod"]
    )
    environment: Environment
    owner_email: Email
    cost_center: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
    ]
    justification: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    tags: dict[str, str] = Field(default_factory=dict)
    workload_security: WorkloadSecurityOptions = Field(default_factory=WorkloadSecurityOptions)
    billing: BillingOptions
    expected_instances: InstanceCounts | None = Field(
        default=None, description="for the cost estimate shown to approvers"
    )
    access: AccessRequest | None = Field(
        default=None, description="who signs in (IAM Identity Center), where the OU assigns it"
    )
    budget: BudgetRequest | None = Field(
        default=None, description="the monthly budget, within the OU's bounds"
    )
    alternate_contacts: AlternateContacts | None = Field(
        default=None, description="billing, operations, security; the OU's defaults otherwise"
    )

    @field_validator("account_email", "owner_email")
    @classmethod
    def _lower_email(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None

    @field_validator("organizational_unit")
    @classmethod
    def _normalise_ou(cls, value: str) -> str:
        return value.strip().strip("/")

    @field_validator("tags")
    @classmethod
    def _aws_tag_rules(cls, tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > 50:
            raise ValueError("at most 50 tags")
        for key, value in tags.items():
            if not 1 <= len(key) <= 128:
                raise ValueError(f"tag key {key[:40]!r} must be 1-128 characters")
            if len(value) > 256:
                raise ValueError(f"tag {key!r}: value must be at most 256 characters")
            if key.lower().startswith(RESERVED_TAG_PREFIXES):
                raise ValueError(f"tag key {key!r} uses a reserved prefix {RESERVED_TAG_PREFIXES}")
            if not _TAG_CHARS.match(key) or not _TAG_CHARS.match(value):
                raise ValueError(
                    f"tag {key[:40]!r}: only letters, digits, spaces and _ . : / = + - @ allowed"
                )
        return tags


class Principal(BaseModel):
    sub: str
    email: str | None = None
    roles: list[Role] = Field(default_factory=list)

    def has(self, *roles: Role) -> bool:
        return any(r in self.roles for r in roles)


class OuSnapshot(BaseModel):
    """The OU's policy as it was when the request was made."""

    path: str
    approvals_required: int
    approval_window_seconds: float
    baselines: list[str] = Field(default_factory=list)
    workload_security: WorkloadSecurityRequirement = WorkloadSecurityRequirement.optional
    enrollment: EnrollmentStrategy = EnrollmentStrategy.none
    enrollment_timeout_seconds: float = 7200.0
    account_factory_product: str = "AWS Control Tower Account Factory"
    baseline_stack_sets: list[StackSetBaseline] = Field(default_factory=list)
    stack_set_preferences: StackSetPreferences = Field(default_factory=StackSetPreferences)
    skippable_steps: list[str] = Field(default_factory=list)
    suspended_ou: str = "Suspended"
    close_cancelled_accounts: bool = False
    settings: SettingsPolicy = Field(default_factory=SettingsPolicy)


class StepPolicy(BaseModel):
    start_to_close_seconds: float
    heartbeat_timeout_seconds: float
    retry_initial_seconds: float
    retry_maximum_seconds: float
    maximum_attempts: int
    prerequisite_wait_seconds: float = 30.0


class Corrections(BaseModel):
    """What operators changed with a retry. The workflow's input stays what was submitted; the
    steps read the request as corrected (``VendingInput.corrected``).

    A change request also rebases itself here when its turn comes: ``account`` is the record as
    it then stands (an earlier change may have moved on since the request was made) and
    ``request`` the account as this change leaves it, recomputed from that record."""

    account_email: str | None = None
    ou: OuSnapshot | None = None
    protect_workload_security: bool | None = None
    account: ManagedAccount | None = None
    request: AccountRequest | None = None


class BaselineRecord(BaseModel):
    stack_set: str
    status: str


class DriftFinding(BaseModel):
    """One difference: ``what`` is its kind, with the part it is about after a colon
    (``stack_instance:vend-baseline/us-east-1``)."""

    what: str
    expected: str
    found: str

    @property
    def kind(self) -> str:
        return kind_of(self.what)


class DriftItem(DriftFinding):
    since: datetime  # the first check that found it


def kind_of(what: str) -> str:
    return what.split(":", 1)[0]


class ManagedAccount(BaseModel):
    """An account under management, as the inventory holds it (``GET /v1/accounts/{id}``).

    ``request`` is the account described as a request body would describe it (name, email, OU,
    environment, owner, cost center, tags, protection, billing): a change request is run against
    it, and a cancelled decommission puts the account back to it."""

    account_id: str
    request: AccountRequest
    status: AccountStatus = AccountStatus.active
    organizational_unit_id: str | None = None
    control_tower: str = "not enrolled"  # e.g. "enrolled (baseline_reset)"
    baselines: list[BaselineRecord] = Field(default_factory=list)
    workload_security_connector_id: int | None = None
    workload_security_policy: str | None = None
    billing_registration_id: str | None = None
    billing_status: str | None = None
    requested_by: str = ""
    requests: list[str] = Field(default_factory=list)  # newest first
    current_change: str | None = None
    queued_changes: list[str] = Field(default_factory=list)
    managed_since: datetime | None = None
    updated_at: datetime | None = None
    last_checked_at: datetime | None = None
    # The vend-time settings it was given (those whose steps succeeded): a decommission takes
    # back what lives outside the account (its Identity Center assignments and budget).
    settings: EffectiveSettings = Field(default_factory=EffectiveSettings)
    # What the last drift check found different from this record (``common/drift.py``).
    drift: list[DriftItem] = Field(default_factory=list)
    owner_digest: str | None = None  # the owner search attribute, as the API keyed it


class PlannedResource(BaseModel):
    action: Literal["create", "change", "remove", "check"]
    kind: str  # e.g. "aws account", "stack instance", "workload security connector"
    name: str


class PlannedStep(BaseModel):
    name: str
    runs: bool
    reason: str | None = None  # why it is skipped
    resources: list[PlannedResource] = Field(default_factory=list)


class RequestPlan(BaseModel):
    """The preview of a request: shown before approval, and kept on the request."""

    kind: RequestKind
    steps: list[PlannedStep]
    approvals_required: int
    cost_estimate: CostEstimate | None = None
    # From the queues when the plan was made: Control Tower slots and close quota in use.
    queues: dict[str, int] = Field(default_factory=dict)
    eta_seconds: float | None = Field(
        default=None, description="rough: typical AWS durations of the steps that run, plus queues"
    )


class VendingInput(BaseModel):
    request_id: str
    request: AccountRequest
    requested_by: Principal
    created_at: datetime
    body_sha256: str
    ou: OuSnapshot
    step_policy: StepPolicy
    protect_workload_security: bool = False
    cost_estimate: CostEstimate | None = None
    kind: RequestKind = RequestKind.vend
    # For a change request: the account as the inventory held it when the change was asked for.
    account: ManagedAccount | None = None
    # For an adoption: the existing member account it brings under management.
    account_id: str | None = None
    # For an update: the policy of the OU the account is in before it (``ou`` is the one after).
    previous_ou: OuSnapshot | None = None
    previous_protect_workload_security: bool = False
    changes: dict[str, Any] = Field(default_factory=dict)  # an update's asked-for fields
    plan: RequestPlan | None = None  # what the preview said it would do, for the approvers
    # A repair (an update that changes nothing): the update steps that put its drift back.
    repair: list[str] = Field(default_factory=list)
    settings: EffectiveSettings = Field(default_factory=EffectiveSettings)  # resolved at intake
    # The owner's email as the owner search attribute holds it (keyed by the API: see
    # ``search_attributes.owner_digest``); the account's record takes it.
    owner_digest: str | None = None
    # For an adoption: the OUs its account may be in now; any other refuses it at validation.
    adoption_sources: list[AdoptionSource] = Field(default_factory=list)

    def corrected(self, fixes: Corrections) -> VendingInput:
        """The request as its steps run it now: as submitted, with operators' corrections."""
        if fixes == Corrections():
            return self
        changes: dict[str, object] = {}
        base = self.request if fixes.request is None else fixes.request
        if fixes.account_email is not None:
            changes["account_email"] = fixes.account_email
        if fixes.ou is not None:
            changes["organizational_unit"] = fixes.ou.path
        protect = fixes.protect_workload_security
        return self.model_copy(
            update={
                "request": base.model_copy(update=changes),
                "account": fixes.account or self.account,
                "ou": fixes.ou or self.ou,
                "protect_workload_security": self.protect_workload_security
                if protect is None
                else protect,
            }
        )


Corrections.model_rebuild()


class SubmitInput(BaseModel):
    body_sha256: str


class ApproveInput(BaseModel):
    by: str
    comment: str | None = None
    # The approver's verified email: an owner may not approve a request about their own account.
    email: str | None = None


class RejectInput(BaseModel):
    by: str
    reason: str


class CancelInput(BaseModel):
    by: str
    reason: str


class RetryInput(BaseModel):
    by: str
    step: str
    reason: str | None = None
    # Corrections an operator may make with the retry: another email for create_account (when
    # AWS says it is taken), another OU for move_to_ou (checked against the landing zone by the
    # API, which sends the new OU's policy).
    account_email: str | None = None
    ou: OuSnapshot | None = None
    protect_workload_security: bool | None = None


class SkipInput(BaseModel):
    by: str
    step: str
    reason: str


class StepError(BaseModel):
    type: str
    message: str


class StepState(BaseModel):
    name: str
    status: StepStatus = StepStatus.pending
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: StepError | None = None
    # What the step is doing right now, e.g. "queued for a Control Tower slot (position 3)".
    detail: str | None = None
    queue_position: int | None = None


class CompensationRecord(BaseModel):
    step: str
    status: str  # "undone" | "failed"
    detail: str
    at: datetime


class ApprovalRecord(BaseModel):
    by: str
    decision: str  # "approved" | "rejected"
    comment: str | None = None
    at: datetime


class AuditEvent(BaseModel):
    at: datetime
    actor: str
    action: str
    outcome: str
    detail: str | None = None


class RequestState(BaseModel):
    """The request as it stands: what ``GET /v1/account-requests/{id}`` answers."""

    id: str
    status: RequestStatus
    request: AccountRequest
    requested_by: str
    created_at: datetime
    updated_at: datetime
    account_id: str | None = None
    organizational_unit_id: str | None = None
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    approvals_required: int = 0
    approvals_remaining: int = 0
    approval_expires_at: datetime | None = None
    steps: list[StepState] = Field(default_factory=list)
    cost_estimate: CostEstimate | None = None
    workload_security_connector_id: int | None = None
    billing_registration_id: str | None = None
    default_vpcs_deleted_in: list[str] = Field(default_factory=list)  # what a cancel restores
    compensations: list[CompensationRecord] = Field(default_factory=list)
    refusal: StepError | None = None  # why submission was refused (internal status ``invalid``)
    corrections: Corrections = Field(default_factory=Corrections)
    kind: RequestKind = RequestKind.vend
    plan: RequestPlan | None = None


class AccountEvent(AuditEvent):
    """One line of an account's audit trail, with the request it came from (if any)."""

    request_id: str | None = None


class EventWindow(BaseModel):
    """A stretch of an account's trail, oldest first: ``first`` is the position of ``items[0]``
    in the whole trail (the lines before it are no longer kept by the account's workflow)."""

    items: list[AccountEvent] = Field(default_factory=list)
    first: int = 0


class ChangeTurn(BaseModel):
    """A change request asks the account for its turn: one change at a time per account."""

    request_id: str
    workflow_id: str
    kind: RequestKind


class ChangeFinished(BaseModel):
    """What a change request (or the vend) did to the account, sent when it closes."""

    request_id: str
    kind: RequestKind
    status: RequestStatus
    account: ManagedAccount | None = None  # the account as it now is, when the change ran
    events: list[AuditEvent] = Field(default_factory=list)
