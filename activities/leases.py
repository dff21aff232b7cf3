"""A leased account in Organizations: its lease tags, and the freeze.

The freeze is a service control policy attached to the account itself: it denies every call
but reads, except by the engine's own roles (by principal ARN), so a frozen account can still
be cleaned (ISB #189: a quarantine SCP that blocked its own cleaner). SCPs do not stop what
is already running; they stop everything that would create or change. One policy serves every
frozen account; it is made on first use and kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from temporalio import activity

from activities.aws_errors import error_code, to_application_error
from common.leases import END_TAG, HOLDER_TAG, LEASE_TAG, LeaseGrant

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
