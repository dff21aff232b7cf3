"""Sandbox leases: a pool of clean accounts per OU, handed out for a while and cleaned after.

The shapes the landing zone, the API, the pool keeper (``workflows/lease_pool.py``), the lease
(``workflows/lease.py``) and their activities share, and the names they call each other by.
A lease never creates an account or touches Control Tower: the pool's accounts were vended
through the ordinary steps beforehand, so a grant is an Identity Center assignment, a budget and
tags, seconds of work; and an ended lease is cleaned, never closed (closing is capped by AWS at
the higher of 250 or 20 % of the member accounts per rolling 30 days).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from common.landing_zone import StackSetBaseline, StackSetPreferences
from common.lease_policy import LeaseTemplate, PoolSpec
from common.models import Principal

LEASE_WORKFLOW = "SandboxLease"
POOL_WORKFLOW = "LeasePool"
LEASE_PREFIX = "lease-"
POOL_PREFIX = "lease-pool-"
GET_STATE = "get_state"
STATE_MEMO = "lease"
POOL_MEMO = "pool"
# lease -> pool
WANT = "want"
WITHDRAW = "withdraw"
RETURNED = "returned"
# pool -> lease
ASSIGNED = "assigned"
# people -> lease (updates)
APPROVE = "approve"
REJECT = "reject"
EXTEND = "extend"
END = "end"
UNFREEZE = "unfreeze"
RETRY = "retry"  # an operator, once a parked step's cause is fixed
# operators -> pool (updates)
RETRY_CLEANING = "retry_cleaning"
RETIRE = "retire"
CONFIGURE = "configure"

# The tags a leased account carries while leased (removed when it is returned).
HOLDER_TAG = "vend:lease-holder"
LEASE_TAG = "vend:lease-id"
END_TAG = "vend:lease-end"


def pool_id(organizational_unit: str) -> str:
    """One pool per OU; the workflow id is made of its path."""
    slug = re.sub(r"[^a-z0-9]+", "-", organizational_unit.lower()).strip("-")
    return f"{POOL_PREFIX}{slug}"


def lease_workflow_id(lease_id: str) -> str:
    return f"{LEASE_PREFIX}{lease_id}"


# ----------------------------------------------------------------------------- leases
class LeaseStatus(StrEnum):
    pending_approval = "pending_approval"
    waiting_for_account = "waiting_for_account"  # the pool has none available yet
    granting = "granting"
    active = "active"
    frozen = "frozen"
    ending = "ending"
    ended = "ended"
    rejected = "rejected"
    expired = "expired"  # nobody decided within the approval window


LIVE = (LeaseStatus.granting, LeaseStatus.active, LeaseStatus.frozen)
CLOSED = (LeaseStatus.ended, LeaseStatus.rejected, LeaseStatus.expired)


class LeaseInput(BaseModel):
    lease_id: str
    template: LeaseTemplate  # as it was when asked for: a later edit changes no running lease
    pool: str  # the pool workflow's id
    holder: Principal
    holder_email: str | None = None
    for_group: str | None = None
    justification: str
    duration_seconds: float
    budget_usd: int
    created_at: datetime
    approval_window_seconds: float = 7 * 86400.0
    sign_in_url: str | None = None  # the Identity Center access portal
    spend_check_seconds: float = 300.0
    heartbeat_seconds: float = 120.0  # how soon a lost worker's grant is taken up again
    # The template's blueprints as the landing zone had them when the lease was asked for.
    baselines: list[StackSetBaseline] = Field(default_factory=list)
    stack_set_preferences: StackSetPreferences = Field(default_factory=StackSetPreferences)


class LeaseEvent(BaseModel):
    at: datetime
    by: str
    action: str
    detail: str = ""


class LeaseState(BaseModel):
    lease_id: str
    status: LeaseStatus
    template: str
    organizational_unit: str
    holder: str
    for_group: str | None = None
    justification: str
    budget_usd: int
    duration_seconds: float
    account_id: str | None = None
    granted_at: datetime | None = None
    ends_at: datetime | None = None
    ended_at: datetime | None = None
    approvals: list[str] = Field(default_factory=list)
    approvals_required: int = 0
    thresholds_reached: list[str] = Field(default_factory=list)
    events: list[LeaseEvent] = Field(default_factory=list)
    sign_in_url: str | None = None
    problem: str | None = None  # why a step waits for an operator (AWS's own words)
    spent_usd: float | None = None  # as AWS Budgets last saw it
    cost_explorer_usd: float | None = None


class Approval(BaseModel):
    by: str
    reason: str = ""


class Extension(BaseModel):
    by: str
    ends_at: datetime


class Unfreeze(BaseModel):
    by: str
    ends_at: datetime | None = None
    budget_usd: int | None = None
    reason: str = ""


class Ending(BaseModel):
    by: str
    reason: str = ""


# ----------------------------------------------------------------------------- the pool
class PoolAccountState(StrEnum):
    provisioning = "provisioning"
    available = "available"
    leased = "leased"
    cleaning = "cleaning"
    quarantined = "quarantined"
    retired = "retired"


class PoolAccount(BaseModel):
    account_id: str
    state: PoolAccountState
    lease_id: str | None = None
    since: datetime
    last_returned_at: datetime | None = None  # least recently used goes out first
    cleanings: int = 0  # cleaning runs so far (each names its own run)
    left_behind: list[str] = Field(default_factory=list)  # what the last inventory found
    reason: str | None = None


class Provisioning(BaseModel):
    request_id: str  # the vend request (an ordinary one) that makes the account
    account_name: str
    started_at: datetime


class LeaseClaim(BaseModel):
    lease_id: str
    workflow_id: str


class Returned(BaseModel):
    account_id: str
    lease_id: str


class Assignment(BaseModel):
    account_id: str


class PoolConfig(BaseModel):
    """What the keeper needs to vend: the pool's declaration and the vend-time facts the worker
    knows (the owner, the email template)."""

    spec: PoolSpec
    email_template: str
    heartbeat_seconds: float = 300.0  # how soon a lost worker's vend or cleaning is taken up


class PoolState(BaseModel):
    config: PoolConfig
    accounts: dict[str, PoolAccount] = Field(default_factory=dict)
    provisioning: list[Provisioning] = Field(default_factory=list)
    waiting: list[LeaseClaim] = Field(default_factory=list)
    vended: int = 0  # pool accounts ever asked for: the next name's number
    failures: list[str] = Field(default_factory=list)  # recent vend failures, newest last

    def count(self, state: PoolAccountState) -> int:
        return sum(1 for a in self.accounts.values() if a.state == state)


class OperatorAction(BaseModel):
    account_id: str
    by: str
    reason: str = ""


# ----------------------------------------------------------------------------- activities
class PoolVend(BaseModel):
    """One account for a pool, vended as an ordinary request."""

    request_id: str
    account_name: str
    account_email: str
    organizational_unit: str
    owner_email: str
    cost_center: str
    billing_customer_id: str


class VendOutcome(BaseModel):
    account_id: str | None = None
    failure: str | None = None


class LeaseGrant(BaseModel):
    account_id: str
    lease_id: str
    holder: str
    ends_at: datetime


class LeaseBudget(BaseModel):
    """A lease's own budget (``name``), counting cost from the grant on."""

    account_id: str
    name: str
    amount_usd: int
    start: datetime
    notify_percents: list[int] = Field(default_factory=list)
    subscribers: list[str] = Field(default_factory=list)
    # The threshold at which AWS Budgets itself applies the freeze (a budget action).
    freeze_percent: int | None = None


class LeaseSpend(BaseModel):
    budget_usd: float  # what AWS Budgets has seen (it refreshes several times a day)
    cost_explorer_usd: float | None = None  # Cost Explorer, a day or so behind
    freeze_applied: bool = False  # the budget action ran (its SCP is on the account)


class CleaningRun(BaseModel):
    account_id: str
    run: str  # names this cleaning (account and run number): its config file, its logs
    regions: list[str]  # the pool's; the account's other enabled regions are added
    passes: int = 3


class CleaningResult(BaseModel):
    regions: list[str]
    passes: int
    left_behind: list[str]  # "<region> <type> <id>", from an independent inventory
    cleaner_failed: str | None = None
