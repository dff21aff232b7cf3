"""A rollout: one baseline StackSet change carried to the accounts already vended, in waves.

The shapes the API, the rollout workflow and its activities share. The wave plan is plain,
deterministic code so that the plan shown before approval is the plan that runs.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import uuid
from datetime import datetime
from enum import StrEnum

import yaml
from pydantic import BaseModel, Field, computed_field

from common.landing_zone import StackSetBaseline

WORKFLOW = "BaselineRollout"
ID_PREFIX = "rollout-"
APPROVE = "approve"
PAUSE = "pause"
RESUME = "resume"
CANCEL = "cancel"
GET_STATE = "get_state"
PLANNED = "planned"
STATE_MEMO = "rollout"
_OPERATIONS = uuid.UUID("0c7f8f3e-58a4-4a4b-9d3a-6f1e2d9b7a41")


def operation_id(rollout_id: str, wave: int, index: int) -> str:
    """The id of a wave's operation: the same on every attempt and replay, so AWS itself refuses
    to run it twice."""
    return str(uuid.uuid5(_OPERATIONS, f"{rollout_id}/{wave}/{index}"))


class RolloutKind(StrEnum):
    """What a rollout changes: a baseline StackSet (its template, parameters, or the OUs that
    have it), or the Workload Security policy of the accounts."""

    stack_set = "stack_set"
    workload_security_policy = "workload_security_policy"


class RolloutStatus(StrEnum):
    planning = "planning"
    pending_approval = "pending_approval"
    running = "running"
    paused = "paused"
    halted = "halted"  # more accounts failed than the tolerance allows: an operator decides
    completed = "completed"
    cancelled = "cancelled"
    invalid = "invalid"


ACTIVE = (RolloutStatus.running, RolloutStatus.paused, RolloutStatus.halted)


class WaveShape(BaseModel):
    """How the accounts are cut into waves: a canary first, then each wave ``growth`` times the
    one before, never more than ``max_accounts`` (one StackSet operation takes them all)."""

    canary_accounts: int = Field(default=1, ge=1, le=100)
    growth: float = Field(default=10.0, ge=1.0, le=100.0)
    max_accounts: int = Field(default=500, ge=1, le=2000)


class OuTarget(BaseModel):
    path: str
    approvals_required: int


class RolloutInput(BaseModel):
    rollout_id: str
    requested_by: str
    reason: str
    kind: RolloutKind = RolloutKind.stack_set
    baseline: StackSetBaseline | None = None  # a stack_set rollout's
    policy: str | None = None  # a workload_security_policy rollout's: the policy's name
    template_body: str | None = None  # None: the template stays, only its instances move
    parameters: dict[str, str] = Field(default_factory=dict)  # instance overrides to set
    organizational_units: list[OuTarget]  # the OUs the change concerns (after any filter)
    # Every OU whose accounts have the baseline, whatever the filter: a new template replaces
    # the StackSet's for all of them (and for every later vend), so its approvals are theirs.
    template_reach: list[OuTarget] = Field(default_factory=list)
    account_ids: list[str] = Field(default_factory=list)  # an explicit subset, if asked
    tags: dict[str, str] = Field(default_factory=dict)  # only accounts with every one of these
    waves: WaveShape = Field(default_factory=WaveShape)
    max_failed_accounts: int = Field(default=0, ge=0)
    max_concurrent_percentage: int = Field(default=100, ge=1, le=100)
    instance_seconds_estimate: float = 45.0  # one stack instance's update on AWS, for the ETA
    heartbeat_seconds: float = 120.0  # how soon a lost worker's operation is picked up again


class Operation(BaseModel):
    """One StackSet operation of a wave, as planned and then as run."""

    # UpdateStackSet | UpdateStackInstances | CreateStackInstances | AssignPolicy (Workload
    # Security: its computers and agent association, account by account)
    action: str
    accounts: list[str]
    regions: list[str]
    operation_id: str
    organizational_unit_ids: list[str] = Field(default_factory=list)  # SERVICE_MANAGED targets
    status: str = "planned"  # planned | RUNNING | SUCCEEDED | FAILED | STOPPED | skipped
    failed_accounts: list[str] = Field(default_factory=list)
    reason: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


class Wave(BaseModel):
    number: int
    accounts: list[str]
    operations: list[Operation] = Field(default_factory=list)
    status: str = "planned"  # planned | running | done | skipped
    skipped_accounts: list[str] = Field(default_factory=list)  # already CURRENT at the target


class RolloutEvent(BaseModel):
    at: datetime
    by: str
    action: str
    detail: str = ""


class RolloutState(BaseModel):
    rollout_id: str
    status: RolloutStatus = RolloutStatus.planning
    requested_by: str
    reason: str
    kind: RolloutKind = RolloutKind.stack_set
    stack_set: str | None = None
    policy: str | None = None
    template_changes: bool = False
    # What approvers approve when the template changes: its digest, the digest of the one it
    # replaces, and the unified diff between them (cut at TEMPLATE_DIFF_LIMIT characters).
    template_sha256: str | None = None
    current_template_sha256: str | None = None
    template_diff: str | None = None
    template_reach: list[str] = Field(default_factory=list)  # OUs a new template reaches
    parameters: dict[str, str] = Field(default_factory=dict)
    organizational_units: list[str] = Field(default_factory=list)
    approvals_required: int = 0
    approvals: list[str] = Field(default_factory=list)
    waves: list[Wave] = Field(default_factory=list)
    accounts_total: int = 0
    accounts_done: int = 0
    accounts_failed: list[str] = Field(default_factory=list)
    accounts_skipped: int = 0
    accounts_created: int = 0  # of the done: given the baseline (their OU gained it)
    accounts_left_out: list[str] = Field(default_factory=list)  # in a change when planned
    eta_seconds: float | None = None
    problem: str | None = None
    events: list[RolloutEvent] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def accounts_left(self) -> int:
        return max(
            0,
            self.accounts_total
            - self.accounts_done
            - len(self.accounts_failed)
            - self.accounts_skipped,
        )


class InstanceSurvey(BaseModel):
    """What the StackSet holds for the accounts the rollout concerns."""

    template_changes: bool
    template_sha256: str | None = None
    current_template_sha256: str | None = None
    template_diff: str | None = None
    regions: list[str]
    # account -> OU path, for every concerned account that has an instance of the StackSet
    accounts: dict[str, str] = Field(default_factory=dict)
    ou_ids: dict[str, str] = Field(default_factory=dict)  # OU path -> id
    current: list[str] = Field(default_factory=list)  # every instance CURRENT, overrides equal
    # Accounts of the OUs with no instance at all: their OU gained the baseline since they were
    # vended. Only managed accounts get one (``missing``); one in a change is left for later.
    without: dict[str, str] = Field(default_factory=dict)  # account -> OU path
    left_out: list[str] = Field(default_factory=list)  # in a change when surveyed


class RolloutApplied(BaseModel):
    """What a rollout tells an account it changed, for the account's record: a baseline given
    (``stack_set``), or another Workload Security policy (``policy``)."""

    rollout_id: str
    by: str
    stack_set: str | None = None
    policy: str | None = None


class WaveSurveyInput(BaseModel):
    """The look before a wave: which of its accounts are already at the target (made so by a
    vend or another change since the plan), so that they get no operation."""

    baseline: StackSetBaseline
    accounts: list[str]
    template_body: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    # The StackSet's instances as planned (0: unknown). AWS lists 100 a page: a wave of fewer
    # accounts than a listing has pages is looked at account by account instead.
    instances_total: int = 0


class StopOperationInput(BaseModel):
    baseline: StackSetBaseline
    operation_id: str


class RunOperationInput(BaseModel):
    rollout_id: str
    baseline: StackSetBaseline
    operation: Operation
    template_body: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    max_failed_accounts: int = 0
    max_concurrent_percentage: int = 100


TEMPLATE_DIFF_LIMIT = 64_000


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def template_diff(current: str, new: str) -> str:
    """The unified diff an approver reads, cut (and said so) past TEMPLATE_DIFF_LIMIT."""
    diff = "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"current ({sha256_of(current)[:12]})",
            tofile=f"new ({sha256_of(new)[:12]})",
        )
    )
    if len(diff) > TEMPLATE_DIFF_LIMIT:
        diff = diff[:TEMPLATE_DIFF_LIMIT] + "\n… (cut: compare the templates by their SHA-256)\n"
    return diff


class _TemplateLoader(yaml.SafeLoader):
    """Reads a CloudFormation template's structure; short-form intrinsics (!Ref, !Sub) are
    read as nothing (only the Parameters section's keys are wanted)."""


_TemplateLoader.add_multi_constructor("!", lambda _loader, _suffix, _node: None)


def template_parameters(template: str) -> set[str] | None:
    """The parameter names a template (YAML or JSON) declares; None when it cannot be read."""
    try:
        doc = yaml.load(template, Loader=_TemplateLoader)
    except yaml.YAMLError:
        return None
    if not isinstance(doc, dict):
        return None
    declared = doc.get("Parameters") or {}
    return {str(k) for k in declared} if isinstance(declared, dict) else None


def wave_sizes(total: int, shape: WaveShape) -> list[int]:
    sizes: list[int] = []
    size = float(min(shape.canary_accounts, shape.max_accounts))
    left = total
    while left > 0:
        take = min(left, max(1, int(size)))
        sizes.append(take)
        left -= take
        size = min(float(shape.max_accounts), math.ceil(size * shape.growth))
    return sizes


def cut_waves(accounts: list[str], shape: WaveShape) -> list[list[str]]:
    """The accounts in waves, in the order given (the caller's stable order), canary first."""
    ordered = list(accounts)
    out: list[list[str]] = []
    start = 0
    for size in wave_sizes(len(ordered), shape):
        out.append(ordered[start : start + size])
        start += size
    return out


def operation_seconds(accounts: int, regions: int, inp: RolloutInput) -> float:
    """An operation's rough duration: instances run max_concurrent_percentage at a time per
    region, regions in parallel."""
    at_once = max(1, math.floor(accounts * inp.max_concurrent_percentage / 100))
    return math.ceil(accounts / at_once) * inp.instance_seconds_estimate * (1 if regions else 0)
