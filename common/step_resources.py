"""What each step creates, changes or removes, for the preview: one function per step, of the
request's input (deterministic, no I/O). ``common/step_registry.py`` pairs each with its step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from common.landing_zone import StackSetBaseline
from common.models import PlannedResource, RequestKind, VendingInput
from common.step_rules import account_before, account_tags

Resources = Callable[[VendingInput], list[PlannedResource]]
Action = Literal["create", "change", "remove", "check"]


def _one(action: Action, kind: str, name: str) -> list[PlannedResource]:
    return [PlannedResource(action=action, kind=kind, name=name)]


def _account(inp: VendingInput) -> str:
    return inp.account.account_id if inp.account else (inp.account_id or "the new account")


def _stack_instances(
    action: Literal["create", "remove"], baselines: list[StackSetBaseline]
) -> list[PlannedResource]:
    return [
        PlannedResource(action=action, kind="stack instance", name=f"{b.stack_set_name} in {where}")
        for b in baselines
        for where in [", ".join(b.regions)]
    ]


def create_account(inp: VendingInput) -> list[PlannedResource]:
    req = inp.request
    return _one("create", "aws account", f"{req.account_name} <{req.account_email}>")


def verify_access(inp: VendingInput) -> list[PlannedResource]:
    return _one("check", "execution role", f"{_account(inp)}: assumable")


def move_to_ou(inp: VendingInput) -> list[PlannedResource]:
    return _one("change", "organizational unit", f"{_account(inp)} → {inp.ou.path}")


def quarantine(inp: VendingInput) -> list[PlannedResource]:
    return _one("change", "organizational unit", f"{_account(inp)} → {inp.ou.suspended_ou}")


def rename_account(inp: VendingInput) -> list[PlannedResource]:
    before = account_before(inp).account_name
    return _one("change", "account name", f"{before} → {inp.request.account_name}")


def enroll_control_tower(inp: VendingInput) -> list[PlannedResource]:
    ou = inp.ou
    return _one("change", "control tower enrollment", f"{ou.enrollment.value} via {ou.path}")


def unmanage_control_tower(inp: VendingInput) -> list[PlannedResource]:
    return _one("remove", "provisioned product", f"Account Factory product of {_account(inp)}")


def apply_baselines(inp: VendingInput) -> list[PlannedResource]:
    planned = _stack_instances("create", inp.ou.baseline_stack_sets)
    if inp.kind == RequestKind.update and inp.previous_ou is not None:
        keep = {b.stack_set_name for b in inp.ou.baseline_stack_sets}
        gone = [b for b in inp.previous_ou.baseline_stack_sets if b.stack_set_name not in keep]
        planned += _stack_instances("remove", gone)
    return planned


def remove_baselines(inp: VendingInput) -> list[PlannedResource]:
    return _stack_instances("remove", inp.ou.baseline_stack_sets)


def enroll_workload_security(inp: VendingInput) -> list[PlannedResource]:
    ws = f"policy {inp.request.workload_security.policy or 'the default'}"
    return _one("create", "workload security connector", f"{_account(inp)}, {ws}")


def remove_workload_security(inp: VendingInput) -> list[PlannedResource]:
    name = f"{_account(inp)} (and its agent association)"
    return _one("remove", "workload security connector", name)


def register_billing(inp: VendingInput) -> list[PlannedResource]:
    billing = inp.request.billing
    name = f"customer {billing.customer_id}, plan {billing.plan or 'default'}"
    planned = _one("create", "billing registration", name)
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


def end_billing(inp: VendingInput) -> list[PlannedResource]:
    registration = inp.account.billing_registration_id if inp.account else None
    return _one("remove", "billing registration", registration or "-")


def retag(inp: VendingInput) -> list[PlannedResource]:
    now = account_tags(inp.request)
    return _one("change", "tags", ", ".join(f"{k}={v}" for k, v in sorted(now.items())))


def close_account(inp: VendingInput) -> list[PlannedResource]:
    return _one("remove", "aws account", f"{_account(inp)} (CloseAccount, then SUSPENDED)")


def assign_access(inp: VendingInput) -> list[PlannedResource]:
    access = inp.settings.access
    if access is None:
        return []
    who = [f"group {access.group}"] if access.group else []
    who += [f"user {u}" for u in access.users]
    return [
        PlannedResource(action="create", kind="identity center assignment", name=f"{ps} to {w}")
        for ps in access.permission_sets
        for w in who
    ]


def remove_access(inp: VendingInput) -> list[PlannedResource]:
    access = inp.account.settings.access if inp.account else None
    if access is None:
        return []
    return [
        PlannedResource(action="remove", kind="identity center assignment", name=ps)
        for ps in access.permission_sets
    ]


def create_budget(inp: VendingInput) -> list[PlannedResource]:
    b = inp.settings.budget
    if b is None:
        return []
    alerts = ", ".join(f"{t}%" for t in b.alert_thresholds)
    subscribers = ", ".join(b.subscribers)
    name = f"{b.monthly_usd} USD a month, alerts at {alerts} to {subscribers}"
    return _one("create", "budget", name)


def delete_budget(inp: VendingInput) -> list[PlannedResource]:
    return _one("remove", "budget", f"vend-{_account(inp)}")


def set_alternate_contacts(inp: VendingInput) -> list[PlannedResource]:
    return [
        PlannedResource(action="change", kind=f"{kind} contact", name=str(c.email))
        for kind, c in sorted(inp.settings.alternate_contacts.items())
    ]


def set_account_alias(inp: VendingInput) -> list[PlannedResource]:
    alias = inp.settings.account_alias
    return _one("create", "account alias", alias) if alias else []


def enable_regions(inp: VendingInput) -> list[PlannedResource]:
    return [
        PlannedResource(action="change", kind="opt-in region", name=f"{r}: enabled")
        for r in inp.settings.opt_in_regions
    ]


def delete_default_vpcs(inp: VendingInput) -> list[PlannedResource]:
    where = f"{_account(inp)}: in every enabled region, where empty"
    return _one("remove", "default vpc", where)
