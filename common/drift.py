"""Drift: how a managed account differs from what the inventory says it should be.

The drift check (``workflows/drift.py``, run by a Temporal Schedule) looks at every managed
account and tells each account's workflow what it found; the account keeps the list, each item
with the time it was first seen, so a drift that lasts is reported once, not once a day. A
repair is an update request that runs only the steps that put the drifted parts back.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from pydantic import BaseModel, Field

from common import step_registry as steps
from common.account_settings import EffectiveSettings
from common.landing_zone import StackSetBaseline
from common.models import DriftFinding, DriftItem

WORKFLOW: Final = "DriftCheck"
ID_PREFIX: Final = "drift-check-"
SCHEDULE_ID: Final = "drift-check"

_DETECTIONS: Final = uuid.UUID("8d3e51a2-4c0f-4f7e-9a53-0b6d2a9e1c17")
# The id of an operator's check of every account: one runs at a time (a second ask while it runs
# is answered with it), since each looks at every account and runs a detection per StackSet.
EVERY_ACCOUNT: Final = str(uuid.uuid5(_DETECTIONS, "every-account"))
DRIFTED: Final = "drifted"  # the VendingDrift search attribute's values
IN_SYNC: Final = "in_sync"

# Each kind of drift, and the update step that puts it back.
REPAIR_STEPS: Final = {
    "organizational_unit": (steps.MOVE_TO_OU.name, steps.ENROLL_CONTROL_TOWER.name),
    "control_tower": (steps.ENROLL_CONTROL_TOWER.name,),
    "stack_instance": (steps.APPLY_BASELINES.name,),
    "workload_security_connector": (steps.ENROLL_WORKLOAD_SECURITY.name,),
    "workload_security_agents": (steps.ENROLL_WORKLOAD_SECURITY.name,),
    "billing": (steps.REGISTER_BILLING.name,),
    # The vend-time settings (those whose steps succeeded): found, not yet put back by an update
    # (its steps do not include the settings'); a repair says so.
    "budget": (),
    "alternate_contact": (),
    "account_alias": (),
    "opt_in_region": (),
}


class DriftReport(BaseModel):
    check_id: str
    checked_at: datetime
    findings: list[DriftFinding] = Field(default_factory=list)


class DriftTarget(BaseModel):
    """An account to check, and what it should have (from its record and its OU's policy): only
    what the checks need, so a thousand of them fit in one activity result."""

    account_id: str
    organizational_unit: str
    organizational_unit_id: str | None = None
    control_tower: bool = False  # enrolled, so Control Tower must still say so
    baselines: list[StackSetBaseline] = Field(default_factory=list)
    workload_security_connector_id: int | None = None
    billing_registration_id: str | None = None
    settings: EffectiveSettings = Field(default_factory=EffectiveSettings)
    # The drift its record holds now (``fingerprint``): a check of every account tells the
    # account's workflow only when what it finds differs.
    recorded: list[str] = Field(default_factory=list)


def fingerprint(finding: DriftFinding) -> str:
    return f"{finding.what}\x1f{finding.expected}\x1f{finding.found}"


class AccountDrift(BaseModel):
    account_id: str
    findings: list[DriftFinding] = Field(default_factory=list)
    error: str | None = None  # the check could not look (the account is left as it was)


class InspectInput(BaseModel):
    targets: list[DriftTarget]
    # One run of a check (a check of every account has the same workflow id each time): the
    # OUs' surveys are kept under it, and never read by another run.
    survey_id: str = ""
    # OUs read whole for this check (activities/drift_survey.py), those with enough accounts to
    # check that a page of the OU costs less than a call per account, each with whether its
    # Control Tower enrollments are read too. A batch starts them all (each is read once).
    surveys: dict[str, bool] = Field(default_factory=dict)


class DriftTargetsInput(BaseModel):
    account_ids: list[str] = Field(default_factory=list)  # empty: every managed account
    page_size: int = Field(default=1000, ge=1, le=1000)
    page_token: bytes | None = None  # visibility's, for the page after


class InspectResult(BaseModel):
    accounts: list[AccountDrift]


class DriftCheckInput(BaseModel):
    account_ids: list[str] = Field(default_factory=list)  # empty: every managed account
    batch_size: int = Field(default=25, ge=1, le=200)
    parallel_batches: int = Field(default=4, ge=1, le=32)
    # Start DetectStackSetDrift on each baseline StackSet first. It covers a whole StackSet (AWS
    # cannot aim it at accounts), so by default only a check of every account runs it; a check
    # of named accounts reads what the last detection found.
    detect_stack_set_drift: bool | None = None
    # How long a detection waits for another operation on its StackSet (a rollout, a vend) to
    # end before the check goes on with the last detection's findings.
    detection_busy_wait_seconds: float = Field(default=900.0, ge=0, le=86_400)

    @property
    def detects(self) -> bool:
        if self.detect_stack_set_drift is None:
            return not self.account_ids
        return self.detect_stack_set_drift


class DetectDriftInput(BaseModel):
    check_id: str
    baseline: StackSetBaseline
    busy_wait_seconds: float = 900.0
    # A detection that ended this recently is as good as a new one: checks asked one after
    # another (or at once) share it instead of queueing operations on the StackSet.
    fresh_seconds: float = 300.0


class StackSetDetection(BaseModel):
    """How a StackSet's drift detection ended: SUCCEEDED, FAILED, STOPPED, or busy (another
    operation held the StackSet all the while) or error (the call was refused)."""

    stack_set: str
    status: str
    operation_id: str | None = None
    reason: str | None = None


class DriftTargets(BaseModel):
    """One page of the accounts to check: a fleet's whole list would pass Temporal's payload
    limit (2 MB) at a few thousand accounts."""

    targets: list[DriftTarget] = Field(default_factory=list)
    busy: list[str] = Field(default_factory=list)  # in a change: checked next time
    next_page_token: bytes | None = None


# An OU with at least this many accounts to check is read whole (a page of ListAccountsForParent
# is twenty accounts: from there on, the survey costs no more calls than asking of each).
SURVEY_THRESHOLD: Final = 20


class DriftCheckResult(BaseModel):
    # When the accounts were looked at. A check of every account reports to an account's
    # workflow only what changed; an account it checked (not in ``unchecked``) was checked then.
    checked_at: datetime | None = None
    listed_at: datetime | None = None  # accounts managed since were not in the check
    reported: int = 0  # accounts told (a change in their drift, or named)
    checked: int = 0
    drifted: int = 0
    unchecked: list[str] = Field(default_factory=list)  # busy, or the check could not look
    by_kind: dict[str, int] = Field(default_factory=dict)  # accounts with that kind of drift
    detections: list[StackSetDetection] = Field(default_factory=list)  # DetectStackSetDrift


def detection_id(check_id: str, stack_set: str) -> str:
    """One check's DetectStackSetDrift id on one StackSet: a retried activity finds the detection
    it started (AWS refuses the id a second time) rather than start another."""
    return str(uuid.uuid5(_DETECTIONS, f"{check_id}/{stack_set}"))


def merged(
    current: list[DriftItem], report: DriftReport
) -> tuple[list[DriftItem], list[DriftItem]]:
    """The account's drift after ``report``, and the items in it that are new (to notify).

    An item still found keeps its ``since``; one no longer found is gone (put back, by a repair
    or by hand); one found with another ``found`` value is the same drift, not a new one.
    """
    known = {item.what: item for item in current}
    after: list[DriftItem] = []
    new: list[DriftItem] = []
    for finding in report.findings:
        before = known.get(finding.what)
        item = DriftItem(
            **finding.model_dump(), since=before.since if before else report.checked_at
        )
        after.append(item)
        if before is None:
            new.append(item)
    return after, new


def unrepairable(drift: list[DriftItem]) -> list[str]:
    """The drifted parts no update step puts back (an operator does, by hand)."""
    return sorted({item.what for item in drift if not REPAIR_STEPS.get(item.kind)})


def repair_steps(drift: list[DriftItem]) -> list[str]:
    """The update steps that put ``drift`` back, in no particular order (the table orders)."""
    return sorted({step for item in drift for step in REPAIR_STEPS.get(item.kind, ())})
