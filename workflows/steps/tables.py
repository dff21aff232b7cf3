"""Which step table a request runs: the vend's, or the one of its change kind."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from common.models import RequestKind
    from workflows.steps.adoption import ADOPT_STEPS
    from workflows.steps.decommission import DECOMMISSION_STEPS
    from workflows.steps.update import UPDATE_STEPS
    from workflows.steps.vend import STEPS, StepSpec


def table_for(kind: RequestKind) -> dict[str, StepSpec]:
    if kind == RequestKind.decommission:
        return DECOMMISSION_STEPS
    if kind == RequestKind.adopt:
        return ADOPT_STEPS
    if kind == RequestKind.update:
        return UPDATE_STEPS
    return STEPS
