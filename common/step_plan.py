"""What a request will do: for each step of its kind, whether it runs and what it touches.

The one place that decides whether a step runs: the workflow's step runner asks
:func:`skip_reason` as the preview does, so a preview cannot say one thing while the request
does another. Plain functions of the request's input (deterministic, no I/O), so both the API
(before anything starts) and the workflow (while it runs) call them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from common.landing_zone import EnrollmentStrategy, StackSetBaseline
from common.models import (
    AccountRequest,
    PlannedResource,
    PlannedStep,
    RequestKind,
    RequestPlan,
    VendingInput,
    step_names,
)


# ------------------------------------------------------------------ the skip rules
def account_before(inp: VendingInput) -> AccountRequest:
    """The account as the inventory had it when the change was asked (a change's inputs)."""
    assert inp.account is not None, "a change names its account"
    return inp.account.request


def _moves(inp: VendingInput) -> bool:
    return inp.request.organizational_unit != account_before(inp).organizational_unit


def account_tags(request: AccountRequest) -> dict[str, str]:
    """The tags the engine keeps on an account (set by move_to_ou, kept by retag)."""
    return {
        **request.tags,
        "vending:environment": request.environment.value,
        "vending:cost-center": request.cost_center,
        "vending:owner": request.owner_email,
    }


def _unchanged(what: str) -> str:
    return f"{what} unchanged"


def _not_governed(inp: VendingInput) -> str | None:
    if inp.ou.enrollment == EnrollmentStrategy.none:
        return f"OU {inp.ou.path} is not governed by Control Tower"
    return None


def _no_baselines(inp: VendingInput) -> str | None:
    return None if inp.ou.baseline_stack_sets else f"OU {inp.ou.path} has no baseline StackSets"


def _unprotected(inp: VendingInput) -> str | None:
    if inp.protect_workload_security:
        return None
    return f"Workload Security is not required by OU {inp.ou.path} nor asked for by the request"


def _no_billing(inp: VendingInput) -> str | None:
    if inp.account is None or not inp.account.billing_registration_id:
        return "the account has no billing registration"
    return None


def _not_enrolled_in_ws(inp: VendingInput) -> str | None:
    if inp.account is None or not inp.account.workload_security_connector_id:
        return "the account is not enrolled in Workload Security"
    return None


def _not_account_factory(inp: VendingInput) -> str | None:
    if inp.ou.enrollment == EnrollmentStrategy.none:
        return f"OU {inp.ou.path} is not governed by Control Tower"
    if inp.ou.enrollment != EnrollmentStrategy.account_factory:
        # Control Tower governs an account by the OU it is in; quarantine moved it to the
        # suspended OU, which Control Tower does not govern.
        return (
            f"enrolled through OU {inp.ou.path}'s baseline ({inp.ou.enrollment.value}); "
            f"it left Control Tower's governance when quarantine moved it to {inp.ou.suspended_ou}"
        )
    return None


def _skip_move(inp: VendingInput) -> str | None:
    return None if _moves(inp) else _unchanged("OU")


def _skip_rename(inp: VendingInput) -> str | None:
    renamed = inp.request.account_name != account_before(inp).account_name
    return None if renamed else _unchanged("name")


def _skip_enroll(inp: VendingInput) -> str | None:
    return _not_governed(inp) if _moves(inp) else _unchanged("OU")


def _baseline_key(baselines: list[StackSetBaseline]) -> list[str]:
    return sorted(b.model_dump_json() for b in baselines)


def _skip_baselines(inp: VendingInput) -> str | None:
    before = inp.previous_ou.baseline_stack_sets if inp.previous_ou else []
    if _baseline_key(before) == _baseline_key(inp.ou.baseline_stack_sets):
        return _unchanged("baselines")
    return None


def _skip_protect(inp: VendingInput) -> str | None:
    if inp.protect_workload_security and not inp.previous_protect_workload_security:
        return None
    return _unchanged("Workload Security") if inp.protect_workload_security else "not protected"


def _skip_unprotect(inp: VendingInput) -> str | None:
    if inp.previous_protect_workload_security and not inp.protect_workload_security:
        return None
    return _unchanged("Workload Security")


def _skip_billing(inp: VendingInput) -> str | None:
    return None if inp.request.billing != account_before(inp).billing else _unchanged("billing")


def _skip_retag(inp: VendingInput) -> str | None:
    if account_tags(inp.request) != account_tags(account_before(inp)):
        return None
    return _unchanged("tags, owner, cost center and environment")


def _no_access(inp: VendingInput) -> str | None:
    access = inp.settings.access
    if access is None:
        return f"OU {inp.ou.path} assigns no Identity Center access"
    return None if access.group or access.users else "the request names no group or user"


def _no_budget(inp: VendingInput) -> str | None:
    return None if inp.settings.budget else f"OU {inp.ou.path} sets no budget"


def _no_contacts(inp: VendingInput) -> str | None:
    return None if inp.settings.alternate_contacts else "no alternate contact given or defaulted"


def _no_alias(inp: VendingInput) -> str | None:
    return None if inp.settings.account_alias else f"OU {inp.ou.path} sets no account alias"


def _no_regions(inp: VendingInput) -> str | None:
    return None if inp.settings.opt_in_regions else f"OU {inp.ou.path} enables no opt-in region"


def _keeps_default_vpcs(inp: VendingInput) -> str | None:
    return None if inp.settings.delete_default_vpcs else f"OU {inp.ou.path} keeps default VPCs"


def _no_access_given(inp: VendingInput) -> str | None:
    given = inp.account.settings.access if inp.account else None
    return None if given else "the vend assigned no Identity Center access"


def _no_budget_given(inp: VendingInput) -> str | None:
    given = inp.account.settings.budget if inp.account else None
    return None if given else "the vend made no budget"


Rule = Callable[[VendingInput], str | None]
_VEND: dict[str, Rule] = {
    "enroll_control_tower": _not_governed,
    "apply_baselines": _no_baselines,
    "assign_access": _no_access,
    "create_budget": _no_budget,
    "set_alternate_contacts": _no_contacts,
    "set_account_alias": _no_alias,
    "enable_regions": _no_regions,
    "delete_default_vpcs": _keeps_default_vpcs,
    "enroll_workload_security": _unprotected,
}
SKIP_RULES: dict[RequestKind, dict[str, Rule]] = {
    RequestKind.vend: _VEND,
    RequestKind.adopt: _VEND,
    RequestKind.decommission: {
        "end_billing": _no_billing,
        "remove_access": _no_access_given,
        "delete_budget": _no_budget_given,
        "remove_workload_security": _not_enrolled_in_ws,
        "remove_baselines": _no_baselines,
        "unmanage_control_tower": _not_account_factory,
    },
    RequestKind.update: {
        "move_to_ou": _skip_move,
        "rename_account": _skip_rename,
        "enroll_control_tower": _skip_enroll,
        "apply_baselines": _skip_baselines,
        "enroll_workload_security": _skip_protect,
        "remove_workload_security": _skip_unprotect,
        "register_billing": _skip_billing,
        "retag": _skip_retag,
    },
}


def _repair_skip(inp: VendingInput, step: str) -> str | None:
    """A repair changes nothing: it runs again the steps that make what drifted."""
    if step not in inp.repair:
        return "not drifted"
    if step == "enroll_control_tower":
        return _not_governed(inp)
    if step == "enroll_workload_security" and not inp.protect_workload_security:
        return "not protected"
    return None


def skip_reason(inp: VendingInput, step: str) -> str | None:
    """Why this request skips ``step``, or None when it runs it."""
    if inp.kind == RequestKind.update and inp.repair:
        return _repair_skip(inp, step)
    rule = SKIP_RULES[inp.kind].get(step)
    return None if rule is None else rule(inp)


# ------------------------------------------------------------------ what each step touches
def _stack_instances(
    action: Literal["create", "remove"], baselines: list[StackSetBaseline]
) -> list[PlannedResource]:
    return [
        PlannedResource(
            action=action,
            kind="stack instance",
            name=f"{b.stack_set_name} in {', '.join(b.regions)}",
        )
        for b in baselines
    ]


def _resources(inp: VendingInput, step: str) -> list[PlannedResource]:
    req, ou = inp.request, inp.ou
    account = inp.account.account_id if inp.account else (inp.account_id or "the new account")
    ws = f"policy {req.workload_security.policy or 'the default'}"
    billing = f"customer {req.billing.customer_id}, plan {req.billing.plan or 'default'}"
    if step == "create_account":
        return [
            PlannedResource(
                action="create",
                kind="aws account",
                name=f"{req.account_name} <{req.account_email}>",
            )
        ]
    if step == "verify_access":
        return [
            PlannedResource(action="check", kind="execution role", name=f"{account}: assumable")
        ]
    if step in ("move_to_ou", "quarantine"):
        target = ou.suspended_ou if step == "quarantine" else ou.path
        return [
            PlannedResource(
                action="change", kind="organizational unit", name=f"{account} → {target}"
            )
        ]
    if step == "rename_account":
        return [
            PlannedResource(
                action="change",
                kind="account name",
                name=f"{account_before(inp).account_name} → {req.account_name}",
            )
        ]
    if step == "enroll_control_tower":
        return [
            PlannedResource(
                action="change",
                kind="control tower enrollment",
                name=f"{ou.enrollment.value} via {ou.path}",
            )
        ]
    if step == "unmanage_control_tower":
        return [
            PlannedResource(
                action="remove",
                kind="provisioned product",
                name=f"Account Factory product of {account}",
            )
        ]
    if step == "apply_baselines":
        planned = _stack_instances("create", ou.baseline_stack_sets)
        if inp.kind == RequestKind.update and inp.previous_ou is not None:
            keep = {b.stack_set_name for b in ou.baseline_stack_sets}
            gone = [b for b in inp.previous_ou.baseline_stack_sets if b.stack_set_name not in keep]
            planned += _stack_instances("remove", gone)
        return planned
    if step == "remove_baselines":
        return _stack_instances("remove", ou.baseline_stack_sets)
    if step == "enroll_workload_security":
        return [
            PlannedResource(
                action="create", kind="workload security connector", name=f"{account}, {ws}"
            )
        ]
    if step == "remove_workload_security":
        return [
            PlannedResource(
                action="remove",
                kind="workload security connector",
                name=f"{account} (and its agent association)",
            )
        ]
    if step == "register_billing":
        planned = [PlannedResource(action="create", kind="billing registration", name=billing)]
        if inp.account is not None and inp.account.billing_registration_id:
            planned.insert(
                0,
                PlannedResource(
                    action="remove",
                    kind="billing registration",
                    name=inp.account.billing_registration_id,
                ),
            )
        return planned
    if step == "end_billing":
        reg = inp.account.billing_registration_id if inp.account else None
        return [PlannedResource(action="remove", kind="billing registration", name=reg or "-")]
    if step == "retag":
        now = account_tags(req)
        return [
            PlannedResource(
                action="change",
                kind="tags",
                name=", ".join(f"{k}={v}" for k, v in sorted(now.items())),
            )
        ]
    if step == "close_account":
        return [
            PlannedResource(
                action="remove",
                kind="aws account",
                name=f"{account} (CloseAccount, then SUSPENDED)",
            )
        ]
    return _settings_resources(inp, step, account)


def _settings_resources(inp: VendingInput, step: str, account: str) -> list[PlannedResource]:
    if step == "remove_access" and inp.account and inp.account.settings.access:
        access = inp.account.settings.access
        return [
            PlannedResource(action="remove", kind="identity center assignment", name=f"{ps}")
            for ps in access.permission_sets
        ]
    if step == "delete_budget":
        return [PlannedResource(action="remove", kind="budget", name=f"vend-{account}")]
    settings = inp.settings
    if step == "assign_access" and settings.access:
        who = [f"group {settings.access.group}"] if settings.access.group else []
        who += [f"user {u}" for u in settings.access.users]
        return [
            PlannedResource(action="create", kind="identity center assignment", name=f"{ps} to {w}")
            for ps in settings.access.permission_sets
            for w in who
        ]
    if step == "create_budget" and settings.budget:
        b = settings.budget
        alerts = ", ".join(f"{t}%" for t in b.alert_thresholds)
        return [
            PlannedResource(
                action="create",
                kind="budget",
                name=f"{b.monthly_usd} USD a month, alerts at {alerts} to "
                + ", ".join(b.subscribers),
            )
        ]
    if step == "set_alternate_contacts":
        return [
            PlannedResource(action="change", kind=f"{kind} contact", name=str(c.email))
            for kind, c in sorted(settings.alternate_contacts.items())
        ]
    if step == "set_account_alias" and settings.account_alias:
        return [PlannedResource(action="create", kind="account alias", name=settings.account_alias)]
    if step == "enable_regions":
        return [
            PlannedResource(action="change", kind="opt-in region", name=f"{r}: enabled")
            for r in settings.opt_in_regions
        ]
    if step == "delete_default_vpcs":
        return [
            PlannedResource(
                action="remove",
                kind="default vpc",
                name=f"{account}: in every enabled region, where empty",
            )
        ]
    return []


# Typical durations on AWS, for the rough ETA (the sandbox is much faster).
TYPICAL_SECONDS = {
    "create_account": 180.0,
    "enroll_control_tower": 1800.0,
    "apply_baselines": 300.0,
    "remove_baselines": 300.0,
    "enroll_workload_security": 120.0,
    "enable_regions": 900.0,
    "delete_default_vpcs": 60.0,
    "close_account": 600.0,
}


def plan(inp: VendingInput, queues: dict[str, int] | None = None) -> RequestPlan:
    steps = []
    for name in step_names(inp.kind):
        reason = skip_reason(inp, name)
        steps.append(
            PlannedStep(
                name=name,
                runs=reason is None,
                reason=reason,
                resources=_resources(inp, name) if reason is None else [],
            )
        )
    queues = queues or {}
    eta = sum(TYPICAL_SECONDS.get(s.name, 30.0) for s in steps if s.runs)
    if any(s.runs and s.name == "enroll_control_tower" for s in steps):
        eta += queues.get("control_tower_waiting", 0) * TYPICAL_SECONDS["enroll_control_tower"] / 5
    if any(s.runs and s.name == "close_account" for s in steps):
        eta += queues.get("close_quota_waiting", 0) * TYPICAL_SECONDS["close_account"]
    return RequestPlan(
        kind=inp.kind,
        steps=steps,
        approvals_required=inp.ou.approvals_required,
        cost_estimate=inp.cost_estimate,
        queues=queues,
        eta_seconds=eta,
    )
