"""A leased account: its lease tags (Organizations), the freeze (an SCP), the budget action
that applies the freeze on its own (AWS Budgets), and its spend (Budgets, Cost Explorer).

The freeze is a service control policy attached to the account itself: it denies every call
but reads, except by the engine's own roles (by principal ARN), so a frozen account can still
be cleaned (ISB #189: a quarantine SCP that blocked its own cleaner). SCPs do not stop what
is already running; they stop everything that would create or change. One policy serves every
frozen account; it is made on first use and kept.

The freeze must not wait for the engine to notice spend: Cost Explorer's data is 12-24 hours
late (ISB #153: $1,102 in a day before anyone saw it). A budget action does it: AWS Budgets
applies the freeze SCP itself when the lease's budget reaches the freeze threshold, and the
lease confirms it on its next spend check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from temporalio import activity

from activities.aws_errors import error_code, final, to_application_error
from activities.budgets import BudgetActivities
from common.leases import END_TAG, HOLDER_TAG, LEASE_TAG, LeaseBudget, LeaseGrant, LeaseSpend

FREEZE_POLICY = "vend-lease-freeze"

# What a frozen account may still do: look, not touch. Kept short (an SCP is at most 5,120
# characters) and by service, since IAM allows no wildcard in a service prefix.
_READS = [
    "ec2:Describe*", "ec2:Get*", "s3:Get*", "s3:List*", "iam:Get*", "iam:List*",
    "lambda:Get*", "lambda:List*", "dynamodb:Describe*", "dynamodb:List*",
    "sqs:Get*", "sqs:List*", "sns:Get*", "sns:List*", "rds:Describe*", "rds:List*",
    "cloudformation:Describe*", "cloudformation:Get*", "cloudformation:List*",
    "cloudwatch:Describe*", "cloudwatch:Get*", "cloudwatch:List*",
    "logs:Describe*", "logs:Get*", "logs:FilterLogEvents", "tag:Get*",
    "ce:Get*", "budgets:View*", "sts:GetCallerIdentity", "health:Describe*", "support:*",
]  # fmt: skip


def freeze_policy(exempt_roles: list[str]) -> str:
    """The freeze SCP: everything but reads denied, unless the caller is one of these roles."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "FrozenLeaseReadsOnly",
                    "Effect": "Deny",
                    "NotAction": _READS,
                    "Resource": "*",
                    "Condition": {
                        "ArnNotLike": {
                            "aws:PrincipalArn": [
                                f"arn:aws:iam::*:role/{role}" for role in exempt_roles
                            ]
                        }
                    },
                }
            ],
        },
        separators=(",", ":"),
    )


@dataclass
class LeaseActivities:
    organizations: Any
    # The roles the engine works through inside accounts (the member role, Control Tower's,
    # the StackSet execution role): a freeze never stops them.
    engine_roles: list[str]
    budget_api: BudgetActivities  # the lease's budget lives beside the vends' (its payer, finds)
    cost_explorer: Any
    budget_action_role_arn: str | None = None

    @activity.defn(no_thread_cancel_exception=True)
    def arm_lease_freeze(self, budget: LeaseBudget) -> str:
        """A budget action that applies the freeze SCP at the freeze threshold, automatically."""
        if budget.freeze_percent is None:
            return "no freeze threshold"
        if not self.budget_action_role_arn:
            raise final(
                "a budget freeze needs VEND_LEASES__BUDGET_ACTION_ROLE_ARN (the role AWS "
                "Budgets assumes to attach the freeze SCP)",
                "NoBudgetActionRole",
            )
        try:
            payer = self.budget_api.payer()
            if self._actions(payer, budget.name):
                return "armed already"
            self.budget_api.budgets.create_budget_action(
                AccountId=payer,
                BudgetName=budget.name,
                NotificationType="ACTUAL",
                ActionType="APPLY_SCP_POLICY",
                ActionThreshold={
                    "ActionThresholdValue": float(budget.freeze_percent),
                    "ActionThresholdType": "PERCENTAGE",
                },
                Definition={
                    "ScpActionDefinition": {
                        "PolicyId": self._freeze_policy_id(),
                        "TargetIds": [budget.account_id],
                    }
                },
                ExecutionRoleArn=self.budget_action_role_arn,
                ApprovalModel="AUTOMATIC",
                Subscribers=[
                    {"SubscriptionType": "EMAIL", "Address": a} for a in budget.subscribers[:11]
                ]
                or [{"SubscriptionType": "EMAIL", "Address": "root@localhost"}],
            )
        except ClientError as err:
            if error_code(err) == "DuplicateRecordException":
                return "armed already"
            raise to_application_error(err, action="CreateBudgetAction") from err
        return f"freeze armed at {budget.freeze_percent}% of {budget.amount_usd} USD"

    @activity.defn(no_thread_cancel_exception=True)
    def disarm_lease_freeze(self, budget: LeaseBudget) -> str:
        """Before an unfreeze raises the budget: the action that fired would fire again."""
        try:
            payer = self.budget_api.payer()
            for action in self._actions(payer, budget.name):
                try:
                    self.budget_api.budgets.delete_budget_action(
                        AccountId=payer, BudgetName=budget.name, ActionId=action["ActionId"]
                    )
                except ClientError as err:
                    if error_code(err) != "NotFoundException":
                        raise
        except ClientError as err:
            raise to_application_error(err, action="DeleteBudgetAction") from err
        return "disarmed"

    @activity.defn(no_thread_cancel_exception=True)
    def lease_spend(self, budget: LeaseBudget) -> LeaseSpend:
        try:
            payer = self.budget_api.payer()
            found = self.budget_api.find(payer, budget.name) or {}
            actual = found.get("CalculatedSpend", {}).get("ActualSpend", {})
            applied = any(
                a["Status"] == "EXECUTION_SUCCESS" for a in self._actions(payer, budget.name)
            )
        except ClientError as err:
            raise to_application_error(err, action="DescribeBudget") from err
        return LeaseSpend(
            budget_usd=float(actual.get("Amount", 0)),
            cost_explorer_usd=self._cost_explorer(budget),
            freeze_applied=applied,
        )

    def _cost_explorer(self, budget: LeaseBudget) -> float | None:
        """The account's cost since the lease began, as Cost Explorer has it (for people to
        read; never what a freeze waits on). None when Cost Explorer cannot say."""
        start = budget.start.date()
        end = max(datetime.now(UTC).date(), start) + timedelta(days=1)
        try:
            answer = self.cost_explorer.get_cost_and_usage(
                TimePeriod={"Start": start.isoformat(), "End": end.isoformat()},
                Granularity="DAILY",
                Metrics=["UnblendedCost"],
                Filter={"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [budget.account_id]}},
            )
        except ClientError:
            return None
        return sum(
            float(day["Total"]["UnblendedCost"]["Amount"]) for day in answer["ResultsByTime"]
        )

    def _actions(self, payer: str, name: str) -> list[dict[str, Any]]:
        pages = self.budget_api.budgets.get_paginator(
            "describe_budget_actions_for_budget"
        ).paginate(AccountId=payer, BudgetName=name)
        return [a for page in pages for a in page["Actions"]]

    @activity.defn(no_thread_cancel_exception=True)
    def tag_lease_account(self, grant: LeaseGrant) -> str:
        tags = {
            HOLDER_TAG: grant.holder,
            LEASE_TAG: grant.lease_id,
            END_TAG: grant.ends_at.isoformat(timespec="seconds"),
        }
        try:
            self.organizations.tag_resource(
                ResourceId=grant.account_id,
                Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
            )
        except ClientError as err:
            raise to_application_error(err, action="TagResource") from err
        return f"tagged for lease {grant.lease_id}"

    @activity.defn(no_thread_cancel_exception=True)
    def untag_lease_account(self, account_id: str) -> str:
        try:
            self.organizations.untag_resource(
                ResourceId=account_id, TagKeys=[HOLDER_TAG, LEASE_TAG, END_TAG]
            )
        except ClientError as err:
            raise to_application_error(err, action="UntagResource") from err
        return "lease tags removed"

    @activity.defn(no_thread_cancel_exception=True)
    def freeze_account(self, account_id: str) -> str:
        try:
            policy = self._freeze_policy_id()
            try:
                self.organizations.attach_policy(PolicyId=policy, TargetId=account_id)
            except ClientError as err:
                if error_code(err) != "DuplicatePolicyAttachmentException":
                    raise  # attached already: an earlier attempt did it
        except ClientError as err:
            raise to_application_error(err, action="AttachPolicy") from err
        return f"{FREEZE_POLICY} attached"

    @activity.defn(no_thread_cancel_exception=True)
    def unfreeze_account(self, account_id: str) -> str:
        try:
            policy = self._find_freeze_policy()
            if policy is None:
                return "never frozen"
            try:
                self.organizations.detach_policy(PolicyId=policy, TargetId=account_id)
            except ClientError as err:
                if error_code(err) != "PolicyNotAttachedException":
                    raise
                return "not frozen"
        except ClientError as err:
            raise to_application_error(err, action="DetachPolicy") from err
        return f"{FREEZE_POLICY} detached"

    def _find_freeze_policy(self) -> str | None:
        pages = self.organizations.get_paginator("list_policies").paginate(
            Filter="SERVICE_CONTROL_POLICY"
        )
        for page in pages:
            for policy in page["Policies"]:
                if policy["Name"] == FREEZE_POLICY:
                    return str(policy["Id"])
        return None

    def _freeze_policy_id(self) -> str:
        found = self._find_freeze_policy()
        if found is not None:
            return found
        try:
            made = self.organizations.create_policy(
                Name=FREEZE_POLICY,
                Description="Sandbox lease frozen: reads only, but for the engine's roles",
                Type="SERVICE_CONTROL_POLICY",
                Content=freeze_policy(self.engine_roles),
            )
            return str(made["Policy"]["PolicySummary"]["Id"])
        except ClientError as err:
            if error_code(err) != "DuplicatePolicyException":
                raise
        found = self._find_freeze_policy()  # made meanwhile, by another attempt or worker
        if found is None:
            raise RuntimeError(f"{FREEZE_POLICY} exists and cannot be found")
        return found
