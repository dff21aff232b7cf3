"""Which step table a request runs: the vend's, or the one of its change kind."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from common.models import RequestKind
    from workflows.adoption import ADOPT_STEPS
    from workflows.decommission import DECOMMISSION_STEPS
    from workflows.steps import STEPS, StepSpec
    from workflows.update import UPDATE_STEPS


def table_for(kind: RequestKind) -> dict[str, StepSpec]:
    if kind == RequestKind.decommission:
        return DECOMMISSION_STEPS
    if kind == RequestKind.adopt:
        return ADOPT_STEPS
    if kind == RequestKind.update:
        return UPDATE_STEPS
    return STEPS
