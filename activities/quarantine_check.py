"""`vend doctor`'s check that a decommission can finish after quarantine.

Quarantine moves the account into the suspended OU first, to shut people out; the steps after
it still act inside the account (Workload Security's role and associations through the member
role, the baselines' stacks through the StackSet execution role, Control Tower's through its
own). SCPs bind all of them, so a suspended OU whose SCP denies everything to everyone makes
every decommission park at its first in-account step. The doctor evaluates the OU path's SCPs
as AWS would (``common.scp``) for each of those calls, before any account gets there.
"""

from __future__ import annotations

from typing import Any

from common import scp

# The roles the decommission acts through after quarantine, and a call each makes there.
STACK_SET_EXECUTION_ROLE = "AWSCloudFormationStackSetExecutionRole"
CONTROL_TOWER_EXECUTION_ROLE = "AWSControlTowerExecution"
_PROBE_ACCOUNT = "111111111111"  # an account of the OU; SCP patterns name accounts by wildcard


def calls_after_quarantine(member_role: str, stack_set_roles: list[str]) -> list[scp.Call]:
    arn = f"arn:aws:iam::{_PROBE_ACCOUNT}:role/"
    calls = [
        scp.Call("ssm:DeleteAssociation", arn + member_role, _PROBE_ACCOUNT),
        scp.Call("iam:DeleteRole", arn + member_role, _PROBE_ACCOUNT),
        scp.Call("cloudformation:DeleteStack", arn + CONTROL_TOWER_EXECUTION_ROLE, _PROBE_ACCOUNT),
    ]
    calls += [
        scp.Call("cloudformation:DeleteStack", arn + role, _PROBE_ACCOUNT)
        for role in sorted(set(stack_set_roles))
    ]
    return calls


def levels_of(organizations: Any, ous: dict[str, dict[str, str]], path: str) -> list[scp.Level]:
    """The SCPs on the root and each OU down to ``path``, and an account's own default
    (FullAWSAccess, which Organizations attaches to every account it creates)."""
    chain = [""] + ["/".join(path.split("/")[: i + 1]) for i in range(len(path.split("/")))]
    levels = []
    for step in chain:
        target = ous[step]["Id"]
        policies = []
        for page in organizations.get_paginator("list_policies_for_target").paginate(
            TargetId=target, Filter="SERVICE_CONTROL_POLICY"
        ):
            for summary in page["Policies"]:
                content = organizations.describe_policy(PolicyId=summary["Id"])["Policy"]
                policies.append((summary["Name"], str(content["Content"])))
        levels.append(scp.Level(step or "Root", policies))
    allow_all = '{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
    levels.append(scp.Level("the account", [("FullAWSAccess", allow_all)]))
    return levels


def refused_after_quarantine(
    organizations: Any,
    ous: dict[str, dict[str, str]],
    suspended_ou: str,
    member_role: str,
    stack_set_roles: list[str],
) -> list[str]:
    """Each in-account call of the decommission the suspended OU's SCPs would refuse."""
    levels = levels_of(organizations, ous, suspended_ou)
    refusals: list[str] = []
    for call in calls_after_quarantine(member_role, stack_set_roles):
        why = scp.refusal(levels, call)
        if why is not None:
            refusals.append(why)
    return refusals


def fix_for(member_role: str, stack_set_roles: list[str]) -> str:
    exempt = [member_role, CONTROL_TOWER_EXECUTION_ROLE, *stack_set_roles]
    return (
        "let the engine's roles act in a suspended account, as Control Tower's SCPs exempt "
        "AWSControlTowerExecution: give the suspended OU's deny-all SCP this content "
        f"(aws organizations update-policy --content '{scp.quarantine_policy(exempt)}')"
    )
