"""What a request will do: for each step of its kind, whether it runs and what it touches.

The one place that decides whether a step runs: the workflow's step runner asks
:func:`skip_reason` as the preview does, so a preview cannot say one thing while the request
does another. Plain functions of the request's input (deterministic, no I/O), so both the API
(before anything starts) and the workflow (while it runs) call them. The steps, their rules and
what they touch are declared in ``common/step_registry.py``.
"""

from __future__ import annotations

from common.models import PlannedStep, RequestKind, RequestPlan, VendingInput
from common.step_registry import (
    CLOSE_ACCOUNT,
    ENROLL_CONTROL_TOWER,
    ENROLL_WORKLOAD_SECURITY,
    STEPS,
    TABLES,
    entry,
)
from common.step_rules import not_governed


def _repair_skip(inp: VendingInput, step: str) -> str | None:
    """A repair changes nothing: it runs again the steps that make what drifted."""
    if step not in inp.repair:
        return "not drifted"
    if step == ENROLL_CONTROL_TOWER.name:
        return not_governed(inp)
    if step == ENROLL_WORKLOAD_SECURITY.name and not inp.protect_workload_security:
        return "not protected"
    return None


def skip_reason(inp: VendingInput, step: str) -> str | None:
    """Why this request skips ``step``, or None when it runs it."""
    if inp.kind == RequestKind.update and inp.repair:
        return _repair_skip(inp, step)
    rule = entry(inp.kind, step).skip
    return None if rule is None else rule(inp)


def plan(inp: VendingInput, queues: dict[str, int] | None = None) -> RequestPlan:
    steps = []
    for e in TABLES[inp.kind]:
        reason = skip_reason(inp, e.step.name)
        steps.append(
            PlannedStep(
                name=e.step.name,
                runs=reason is None,
                reason=reason,
                resources=e.step.touches(inp) if reason is None else [],
            )
        )
    queues = queues or {}
    running = {s.name for s in steps if s.runs}
    eta = sum(STEPS[name].typical_seconds for name in running)
    if ENROLL_CONTROL_TOWER.name in running:
        waiting = queues.get("control_tower_waiting", 0)
        eta += waiting * ENROLL_CONTROL_TOWER.typical_seconds / 5
    if CLOSE_ACCOUNT.name in running:
        eta += queues.get("close_quota_waiting", 0) * CLOSE_ACCOUNT.typical_seconds
    return RequestPlan(
        kind=inp.kind,
        steps=steps,
        approvals_required=inp.ou.approvals_required,
        cost_estimate=inp.cost_estimate,
        queues=queues,
        eta_seconds=eta,
    )
