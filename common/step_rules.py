"""Why a request skips a step: plain functions of the request's input (deterministic, no I/O),
each named after what it finds, so the API's preview and the workflow's step runner read the
same rule. ``common/step_registry.py`` says which rule each step of each kind follows.
"""

from __future__ import annotations

from collections.abc import Callable

from common.landing_zone import EnrollmentStrategy, StackSetBaseline
from common.models import AccountRequest, VendingInput

Rule = Callable[[VendingInput], str | None]  # a reason to skip, or None: the step runs


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


def not_governed(inp: VendingInput) -> str | None:
    if inp.ou.enrollment == EnrollmentStrategy.none:
        return f"OU {inp.ou.path} is not governed by Control Tower"
    return None


def no_baselines(inp: VendingInput) -> str | None:
    return None if inp.ou.baseline_stack_sets else f"OU {inp.ou.path} has no baseline StackSets"


def unprotected(inp: VendingInput) -> str | None:
    if inp.protect_workload_security:
        return None
    return f"Workload Security is not required by OU {inp.ou.path} nor asked for by the request"


def no_billing(inp: VendingInput) -> str | None:
    if inp.account is None or not inp.account.billing_registration_id:
        return "the account has no billing registration"
    return None


def not_enrolled_in_ws(inp: VendingInput) -> str | None:
    if inp.account is None or not inp.account.workload_security_connector_id:
        return "the account is not enrolled in Workload Security"
    return None


def not_account_factory(inp: VendingInput) -> str | None:
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


def skip_move(inp: VendingInput) -> str | None:
    return None if _moves(inp) else _unchanged("OU")


def skip_rename(inp: VendingInput) -> str | None:
    renamed = inp.request.account_name != account_before(inp).account_name
    return None if renamed else _unchanged("name")


def skip_enroll(inp: VendingInput) -> str | None:
    return not_governed(inp) if _moves(inp) else _unchanged("OU")


def _baseline_key(baselines: list[StackSetBaseline]) -> list[str]:
    return sorted(b.model_dump_json() for b in baselines)


def skip_baselines(inp: VendingInput) -> str | None:
    before = inp.previous_ou.baseline_stack_sets if inp.previous_ou else []
    if _baseline_key(before) == _baseline_key(inp.ou.baseline_stack_sets):
        return _unchanged("baselines")
    return None


def skip_protect(inp: VendingInput) -> str | None:
    if inp.protect_workload_security and not inp.previous_protect_workload_security:
        return None
    return _unchanged("Workload Security") if inp.protect_workload_security else "not protected"


def skip_unprotect(inp: VendingInput) -> str | None:
    if inp.previous_protect_workload_security and not inp.protect_workload_security:
        return None
    return _unchanged("Workload Security")


def skip_billing(inp: VendingInput) -> str | None:
    return None if inp.request.billing != account_before(inp).billing else _unchanged("billing")


def skip_retag(inp: VendingInput) -> str | None:
    if account_tags(inp.request) != account_tags(account_before(inp)):
        return None
    return _unchanged("tags, owner, cost center and environment")


def no_access(inp: VendingInput) -> str | None:
    access = inp.settings.access
    if access is None:
        return f"OU {inp.ou.path} assigns no Identity Center access"
    return None if access.group or access.users else "the request names no group or user"


def no_budget(inp: VendingInput) -> str | None:
    return None if inp.settings.budget else f"OU {inp.ou.path} sets no budget"


def no_contacts(inp: VendingInput) -> str | None:
    return None if inp.settings.alternate_contacts else "no alternate contact given or defaulted"


def no_alias(inp: VendingInput) -> str | None:
    return None if inp.settings.account_alias else f"OU {inp.ou.path} sets no account alias"


def no_regions(inp: VendingInput) -> str | None:
    return None if inp.settings.opt_in_regions else f"OU {inp.ou.path} enables no opt-in region"


def keeps_default_vpcs(inp: VendingInput) -> str | None:
    return None if inp.settings.delete_default_vpcs else f"OU {inp.ou.path} keeps default VPCs"


def no_access_given(inp: VendingInput) -> str | None:
    given = inp.account.settings.access if inp.account else None
    return None if given else "the vend assigned no Identity Center access"


def no_budget_given(inp: VendingInput) -> str | None:
    given = inp.account.settings.budget if inp.account else None
    return None if given else "the vend made no budget"
