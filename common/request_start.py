"""What a new request becomes in Temporal: its workflow input, memo and search attributes.

Kept out of the route so the handler reads as HTTP (authorize, check, start, answer) and so the
one place that decides what is stored in clear (memo and search attributes are not encrypted by
the payload codec) is small enough to review: ids, names, paths and statuses, never an email.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from temporalio.client import WithStartWorkflowOperation
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from common import search_attributes as sa
from common import vending_contract as contract
from common.account_settings import EffectiveSettings
from common.intake import body_fingerprint, protects, settings_of
from common.models import (
    AccountRequest,
    OuSnapshot,
    Principal,
    RequestState,
    RequestStatus,
    StepPolicy,
    VendingInput,
)
from common.pricing import estimate
from common.settings import Settings
from common.temporal_client import workflow_id

IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1b7c1e-3f0a-4e52-9a56-4f3c2b8d9e10")


def request_id_for(user: Principal, idempotency_key: str | None) -> str:
    """The same caller and key always name the same request, so a retried POST finds it."""
    if idempotency_key:
        return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user.sub}\n{idempotency_key}"))
    return str(uuid.uuid4())


def vending_input(
    request_id: str,
    body: AccountRequest,
    user: Principal,
    ou: OuSnapshot,
    settings: Settings,
    *,
    account_settings: bool = True,
) -> VendingInput:
    """``account_settings``: off for a change, which applies no vend-time settings again."""
    protect = protects(body, ou)
    cost = estimate(
        body.expected_instances,
        settings.pricing,
        protect,
        budget_monthly_usd=body.budget.monthly_usd if body.budget else None,
    )
    return VendingInput(
        request_id=request_id,
        request=body,
        requested_by=user,
        created_at=datetime.now(UTC),
        body_sha256=body_fingerprint(body),
        ou=ou,
        step_policy=StepPolicy(**settings.steps.model_dump()),
        protect_workload_security=protect,
        cost_estimate=cost,
        settings=settings_of(body, ou) if account_settings else EffectiveSettings(),
        owner_digest=sa.owner_digest(body.owner_email, settings.owner_key()),
    )


def start_operation(
    inp: VendingInput, settings: Settings, priority: Priority = Priority.default
) -> WithStartWorkflowOperation[Any, RequestState]:
    """Start the request's workflow, or find the one this request id already has. ``priority``:
    a background request's (a lease pool's) goes behind people's on the task queues (its
    activities inherit it)."""
    body, user = inp.request, inp.requested_by
    return WithStartWorkflowOperation(
        contract.WORKFLOW,
        inp,
        id=workflow_id(inp.request_id),
        task_queue=settings.temporal.task_queue,
        result_type=RequestState,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A closed request answers a replayed key again; a failed one (validation could not
        # reach AWS) may be started afresh.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.STATUS, RequestStatus.validating.value),
                SearchAttributePair(sa.REQUESTER, user.sub),
                SearchAttributePair(sa.OU, inp.ou.path),
                SearchAttributePair(sa.KIND, inp.kind.value),
                *(
                    [SearchAttributePair(sa.ACCOUNT_ID, account_id)]
                    if (account_id := inp.account_id or (inp.account and inp.account.account_id))
                    else []
                ),
            ]
        ),
        memo={
            "account_name": body.account_name,
            "organizational_unit": inp.ou.path,
            "environment": body.environment.value,
            "requested_by": user.sub,
            "kind": inp.kind.value,
        },
        static_summary=f"{inp.kind.value} {body.account_name} → {inp.ou.path} ({user.sub})",
        priority=priority,
    )
