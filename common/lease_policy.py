"""What the landing zone declares for sandbox leases: the pools (OUs whose accounts are
lent out) and the lease templates people choose from. Policy, like the rest of the landing
zone; the running leases carry a snapshot of their template (``common/leases.py``)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, model_validator

from common.email_address import Email


class ThresholdAction(StrEnum):
    notify = "notify"
    freeze = "freeze"


class Threshold(BaseModel):
    """A point in the lease's budget or its time where something happens."""

    budget_percent: int | None = Field(default=None, ge=1, le=1000)
    duration_percent: int | None = Field(default=None, ge=1, le=100)
    action: ThresholdAction = ThresholdAction.notify

    @model_validator(mode="after")
    def _one_measure(self) -> Threshold:
        if (self.budget_percent is None) == (self.duration_percent is None):
            raise ValueError("a threshold gives budget_percent or duration_percent, not both")
        return self


class PoolSpec(BaseModel):
    """An OU open for leasing, as the landing zone declares it."""

    organizational_unit: str
    min_available: int = Field(ge=0, le=1000)
    max_accounts: int = Field(ge=1, le=10_000)
    # New pool accounts are named <name_prefix>-<n> (n counts up, never reused).
    name_prefix: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")]
    # Cleaned and inventoried always; every other region enabled in the account is too.
    regions: list[str] = Field(min_length=1)
    owner_email: Email  # the team that answers for the pool's accounts
    cost_center: str = "sandbox-pool"
    billing_customer_id: str  # the Sunny Pay customer the pool's accounts are billed to

    @model_validator(mode="after")
    def _sizes(self) -> PoolSpec:
        if self.min_available > self.max_accounts:
            raise ValueError("min_available is more than max_accounts")
        return self


class LeaseTemplate(BaseModel):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
    organizational_unit: str  # the pool it leases from
    description: str = ""
    max_duration: timedelta
    default_duration: timedelta | None = None
    max_budget_usd: int = Field(ge=1)
    default_budget_usd: int | None = Field(default=None, ge=1)
    thresholds: list[Threshold] = Field(default_factory=list, max_length=5)
    approvals_required: int = Field(default=0, ge=0, le=5)
    # Who may lease: any of these roles (empty: every signed-in user).
    roles: list[str] = Field(default_factory=list)
    # Identity Center groups a lease may be for (ISB #142: leases for a team, not one person).
    groups: list[str] = Field(default_factory=list)
    permission_sets: list[str] = Field(min_length=1)
    # Baselines of the landing zone's catalog deployed on top for the lease (ISB's
    # "blueprints"), removed at its end; self-managed StackSets only.
    baselines: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _bounds(self) -> LeaseTemplate:
        if self.max_duration <= timedelta(0):
            raise ValueError("max_duration must be positive")
        if self.default_duration is not None and self.default_duration > self.max_duration:
            raise ValueError("default_duration is longer than max_duration")
        if self.default_budget_usd is not None and self.default_budget_usd > self.max_budget_usd:
            raise ValueError("default_budget_usd is more than max_budget_usd")
        return self

    def duration(self) -> timedelta:
        return self.default_duration or self.max_duration

    def budget(self) -> int:
        return self.default_budget_usd or self.max_budget_usd

    def may_lease(self, roles: list[str]) -> bool:
        """``roles``: the user's (an admin may always)."""
        return not self.roles or "admin" in roles or any(r in roles for r in self.roles)
