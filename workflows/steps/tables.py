"""Each kind's step table: the registry's steps (``common/step_registry.py``), in its order,
each bound to what it runs. A table that misses a step of its kind, or binds one its kind does
not run, stops the worker at start, not a request halfway."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from common.models import RequestKind
    from common.step_registry import TABLES, Step
    from workflows.steps.adoption import ADOPTION
    from workflows.steps.decommission import DECOMMISSION
    from workflows.steps.spec import StepSpec
    from workflows.steps.update import UPDATE
    from workflows.steps.vend import VEND

BOUND: dict[RequestKind, dict[Step, StepSpec]] = {
    RequestKind.vend: VEND,
    RequestKind.adopt: ADOPTION,
    RequestKind.update: UPDATE,
    RequestKind.decommission: DECOMMISSION,
}


def _table(kind: RequestKind) -> dict[str, StepSpec]:
    bound, declared = BOUND[kind], [entry.step for entry in TABLES[kind]]
    missing = [s.name for s in declared if s not in bound]
    extra = [s.name for s in bound if s not in declared]
    if missing or extra:
        raise RuntimeError(
            f"the {kind.value} table: no implementation of {missing}; not in it: {extra}"
        )
    return {step.name: bound[step] for step in declared}


_TABLES = {kind: _table(kind) for kind in RequestKind}


def table_for(kind: RequestKind) -> dict[str, StepSpec]:
    return _TABLES[kind]
