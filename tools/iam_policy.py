"""Least-privilege IAM policies derived from the AWS calls the activities make.

The activities are read (not run): every call on a boto3 client, and every paginator, becomes an
IAM action. Which client a receiver is comes from a table per module, and the test fails on a
receiver the table does not know, so a new client cannot slip past. Two policies come out: the
worker's role in the management account, and what it does through the role it assumes in member
accounts. ``python -m tools.iam_policy --write`` regenerates deploy/iam/; the test checks that
the committed files equal what the code needs (no missing grant, no unused one).
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from botocore import xform_name

ROOT = Path(__file__).resolve().parent.parent
ACTIVITIES = ROOT / "activities"
OUT = ROOT / "deploy" / "iam"
_SESSION = botocore.session.get_session()

# module -> receiver (source text) -> (scope, service). Anything else that looks like a boto3
# call on a receiver not listed here is an error, not silently ignored.
RECEIVERS: dict[str, dict[str, tuple[str, str]]] = {
    "organizations.py": {"self.client": ("management", "organizations")},
    "control_tower.py": {
        "self.controltower": ("management", "controltower"),
        "self.servicecatalog": ("management", "servicecatalog"),
        "self.organizations": ("management", "organizations"),
        "iam": ("member", "iam"),
    },
    "stack_sets.py": {"self.cloudformation": ("management", "cloudformation")},
    "execution_roles.py": {
        "self.cloudformation": ("management", "cloudformation"),
        "iam": ("member", "iam"),
    },
    "quarantine_check.py": {"organizations": ("management", "organizations")},
    "stack_set_operations.py": {"cloudformation": ("management", "cloudformation")},
    "rollouts.py": {
        "self.cloudformation": ("management", "cloudformation"),
        "self.organizations.client": ("management", "organizations"),
    },
    "drift_survey.py": {"self.organizations": ("management", "organizations")},
    "drift.py": {
        "self.organizations": ("management", "organizations"),
        "self.cloudformation": ("management", "cloudformation"),
        "ssm": ("member", "ssm"),
    },
    "preflight.py": {
        "self.sts": ("management", "sts"),
        "self.organizations": ("management", "organizations"),
        "self.controltower": ("management", "controltower"),
        "self.servicecatalog": ("management", "servicecatalog"),
        "self.cloudformation": ("management", "cloudformation"),
        "self.iam": ("management", "iam"),
        "self.ssm": ("management", "ssm"),
        "self.sso_admin": ("management", "sso-admin"),
    },
    "workload_security.py": {
        "self.management_ssm": ("management", "ssm"),
        "iam": ("member", "iam"),
        "ssm": ("member", "ssm"),
    },
    "member_accounts.py": {"self.sts": ("management", "sts")},
    "account_lifecycle.py": {
        "client": ("management", "organizations"),
        "self.account": ("management", "account"),
        "sts": ("member", "sts"),
    },
    "identity_center.py": {
        "self.sso_admin": ("management", "sso-admin"),
        "self.identity_store": ("management", "identitystore"),
    },
    "budgets.py": {"self.budgets": ("management", "budgets"), "self.sts": ("management", "sts")},
    "account_settings.py": {"self.account": ("management", "account")},
    "member_settings.py": {"iam": ("member", "iam"), "ec2": ("member", "ec2")},
    "leases.py": {
        "self.organizations": ("management", "organizations"),
        "self.budget_api.budgets": ("management", "budgets"),
        "self.cost_explorer": ("management", "ce"),
    },
    "cleaning.py": {
        "ec2": ("member", "ec2"),
        "sqs": ("member", "sqs"),
        "sns": ("member", "sns"),
        "dynamodb": ("member", "dynamodb"),
        "s3": ("member", "s3"),
    },
}
# Modules that call no AWS API (HTTP or Temporal only, or that only build the clients the others
# call through); listed so a new module must be placed.
NO_AWS = {
    "__init__.py",
    "aws_clients.py",
    "aws_errors.py",
    "call_pacing.py",
    "billing.py",
    "claims.py",
    "setting_result.py",
    "heartbeats.py",
    "http_calls.py",
    "interceptors.py",
    "notifications.py",
    "policy_rollouts.py",
    "pool_vending.py",
    "prerequisites.py",
    "temporal_checks.py",
    "workflow_signals.py",
    "waiting.py",
}
# Actions AWS allows without any grant.
NEEDS_NO_GRANT = {"sts:GetCallerIdentity"}
MEMBER_ROLE = "OrganizationAccountAccessRole"


@dataclass(frozen=True)
class Call:
    scope: str
    action: str  # service:Operation
    where: str


# API operations whose IAM action has another name (AWS Budgets authorizes by two actions).
IAM_ACTIONS = {
    "budgets:CreateBudget": "budgets:ModifyBudget",
    "budgets:UpdateBudget": "budgets:ModifyBudget",
    "budgets:DeleteBudget": "budgets:ModifyBudget",
    "budgets:DescribeBudget": "budgets:ViewBudget",
}


def iam_action(call: str) -> str:
    """The IAM action that authorizes an API call named ``<signing name>:<Operation>``."""
    return IAM_ACTIONS.get(call, call)


@functools.cache
def _model(service: str) -> Any:
    """One load per service: a botocore session and a model parse cost a tenth of a second
    each, and the activities make hundreds of calls."""
    return _SESSION.get_service_model(service)


def _operations(service: str) -> dict[str, str]:
    return {xform_name(op): op for op in _model(service).operation_names}


def _prefix(service: str) -> str:
    """The IAM prefix: the API's signing name (``sso-admin`` signs, and is authorized, as
    ``sso``)."""
    return str(_model(service).signing_name or service)


def calls() -> list[Call]:
    found: list[Call] = []
    for path in sorted(ACTIVITIES.glob("*.py")):
        if path.name in NO_AWS:
            continue
        if path.name not in RECEIVERS:
            raise LookupError(f"{path.name}: not in RECEIVERS nor NO_AWS; place it")
        receivers = RECEIVERS[path.name]
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = ast.unparse(node.func.value)
            if receiver not in receivers:
                continue
            scope, service = receivers[receiver]
            method = node.func.attr
            if method == "get_paginator":
                arg = node.args[0]
                if not isinstance(arg, ast.Constant):
                    raise ValueError(f"{path.name}:{node.lineno}: paginator name must be literal")
                method = str(arg.value)
            operations = _operations(service)
            if method not in operations:
                raise ValueError(
                    f"{path.name}:{node.lineno}: {receiver}.{method} is not a {service} operation"
                )
            action = iam_action(f"{_prefix(service)}:{operations[method]}")
            found.append(Call(scope, action, f"{path.name}:{node.lineno}"))
    return found


def required_actions(scope: str) -> list[str]:
    return sorted({c.action for c in calls() if c.scope == scope} - NEEDS_NO_GRANT)


def management_policy() -> dict[str, Any]:
    actions = required_actions("management")
    assume = [a for a in actions if a == "sts:AssumeRole"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "VendAccounts",
                "Effect": "Allow",
                "Action": [a for a in actions if a not in assume],
                "Resource": "*",
            },
            {
                "Sid": "ActInMemberAccounts",
                "Effect": "Allow",
                "Action": assume,
                "Resource": f"arn:aws:iam::*:role/{MEMBER_ROLE}",
            },
        ],
    }


def member_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "BaselineAndProtection",
                "Effect": "Allow",
                "Action": required_actions("member"),
                "Resource": "*",
            }
        ],
    }


def cloudformation_template() -> dict[str, Any]:
    """The worker's role as a template (JSON is valid CloudFormation; no YAML tags to parse)."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Account vending worker role (management account), least privilege. "
        "Generated by tools/iam_policy.py from the calls the activities make.",
        "Parameters": {
            "TrustedPrincipalArn": {
                "Type": "String",
                "Description": "Who runs the worker (an EKS/ECS task role, an EC2 role, ...)",
            }
        },
        "Resources": {
            "VendingWorkerRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": "account-vending-worker",
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": {"Ref": "TrustedPrincipalArn"}},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                    "Policies": [
                        {"PolicyName": "account-vending", "PolicyDocument": management_policy()}
                    ],
                },
            }
        },
        "Outputs": {"RoleArn": {"Value": {"Fn::GetAtt": ["VendingWorkerRole", "Arn"]}}},
    }


def documents() -> dict[str, dict[str, Any]]:
    return {
        "worker-policy.json": management_policy(),
        "member-account-policy.json": member_policy(),
        "worker-role.cfn.json": cloudformation_template(),
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


# What `vend doctor` simulates against the worker's role (shipped in the wheel: deploy/ is not).
ACTIONS_FILE = ROOT / "activities" / "required_actions.json"


def actions_document() -> dict[str, Any]:
    return {"management": required_actions("management"), "member": required_actions("member")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite deploy/iam/")
    args = parser.parse_args()
    for name, doc in documents().items():
        if args.write:
            OUT.mkdir(parents=True, exist_ok=True)
            (OUT / name).write_text(render(doc))
            print(f"wrote deploy/iam/{name}")
        else:
            print(f"# {name}\n{render(doc)}")
    if args.write:
        ACTIONS_FILE.write_text(render(actions_document()))
        print(f"wrote {ACTIONS_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
