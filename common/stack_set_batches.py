"""Baseline instances for new accounts, batched across requests: what a request asks of the
StackSet batcher (``workflows/stack_set_batcher.py``), what the batcher runs, what it answers.

AWS runs one operation per StackSet at a time, and an operation for fifty accounts takes barely
longer than one for a single account. Requests that reach ``apply_baselines`` together (a burst
of vends, accounts coming out of Control Tower five at a time) therefore share one
``CreateStackInstances`` per StackSet instead of queueing one operation each behind the others.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from common.landing_zone import StackSetBaseline
from common.models import StepPolicy

BATCHER_ID = "stack-set-batcher"
NOTICE_SIGNAL = "stack_set_batch_notice"  # the batcher's answer, on the request's workflow
_NAMESPACE = uuid.UUID("0d6b8f1e-5a43-4c1e-9a8e-7f2c61b0e3d4")


class BatchEntry(BaseModel):
    """One request's account, waiting for its instances of one baseline StackSet."""

    workflow_id: str
    request_id: str
    account_id: str
    ou_id: str
    baseline: StackSetBaseline  # with the OU's parameters: only equal ones share an operation
    policy: StepPolicy  # how the batch's activity runs (the first entry's)


class BatchDeployInput(BaseModel):
    operation_id: str
    baseline: StackSetBaseline
    accounts: list[str]
    organizational_unit_ids: list[str]  # SERVICE_MANAGED targets (intersected with accounts)


class BatchDeployResult(BaseModel):
    operation_id: str | None  # None: every account had instances already, nothing was run
    status: str | None = None
    deployed: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)  # account -> "region: reason; ..."
    attempt: int = 1


class BatchNotice(BaseModel):
    """The batcher's answer to one request for one StackSet.

    ``deployed``: the account's instances were made by the batch's operation. ``failed``: the
    operation failed for this account (``reason`` names regions and AWS's reasons). ``not_batched``:
    the batch did not settle it (the account had instances already, or the batch's activity
    failed); the request's own step deploys, as it did before batching."""

    stack_set_name: str
    outcome: str  # deployed | failed | not_batched
    operation_id: str | None = None
    accounts_in_operation: int = 0
    reason: str | None = None
    attempt: int = 1


def batch_operation_id(chain_id: str, sequence: int) -> str:
    """The id of the batcher's ``sequence``-th operation: a retried activity finds the one it
    started (AWS keeps every id and refuses one a second time) instead of starting another."""
    return str(uuid.uuid5(_NAMESPACE, f"{chain_id}/{sequence}"))


def batch_key(baseline: StackSetBaseline) -> str:
    """Entries share an operation only when they would deploy the very same thing."""
    return baseline.model_dump_json()
