"""The roles AWS services assume inside a member account on the engine's behalf.

A self-managed StackSet deploys into an account by assuming the StackSet's execution role there
(``AWSCloudFormationStackSetExecutionRole`` unless the StackSet names another), trusting the
StackSet's administration role in the management account. Nothing makes it in a new account:
CreateAccount makes only ``OrganizationAccountAccessRole``, Control Tower only
``AWSControlTowerExecution``. Without it AWS fails every instance in the account ("Account ...
should have '...' role with trust relationship to Role '...'"), so the engine makes it, through
the member role, before it deploys; and Control Tower's enrolment of an existing account needs
its own execution role the same way.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from activities.aws_errors import error_code
from activities.member_accounts import MemberAccountAccess
from common.landing_zone import PermissionModel, StackSetBaseline

ADMINISTRATOR = "arn:aws:iam::aws:policy/AdministratorAccess"


def ensure_admin_role(iam: Any, name: str, trusted: str, description: str) -> bool:
    """An administrator role ``name`` trusting ``trusted`` (an ARN), made when missing; True
    when made. An existing role is left as it is: its owner may have narrowed it."""
    try:
        iam.get_role(RoleName=name)
        return False
    except ClientError as err:
        if error_code(err) != "NoSuchEntity":
            raise
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Description=description
        )
    except ClientError as err:
        if error_code(err) != "EntityAlreadyExists":
            raise
    iam.attach_role_policy(RoleName=name, PolicyArn=ADMINISTRATOR)
    return True


@dataclass
class StackSetExecutionRoles:
    """Makes sure a self-managed StackSet's execution role exists in an account before the
    StackSet deploys there."""

    cloudformation: Any
    members: MemberAccountAccess
    # StackSet name -> (execution role name, administration role ARN): read once per process.
    _roles: dict[str, tuple[str, str]] = field(default_factory=dict)
    # (role name, account) -> when it was seen to exist: a rollout over a fleet asks each
    # account once, and an operator's retry after a while (the role deleted since) asks again.
    _present: dict[tuple[str, str], float] = field(default_factory=dict)
    remember_seconds: float = 600.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ensure(self, baseline: StackSetBaseline, account_id: str) -> bool:
        """True when the role was made now. Service-managed StackSets need none: AWS makes
        theirs (``stacksets-exec-...``) itself."""
        if baseline.permission_model != PermissionModel.SELF_MANAGED:
            return False
        name, admin = self._of(baseline)
        seen = self._present.get((name, account_id))
        if seen is not None and time.monotonic() - seen < self.remember_seconds:
            return False
        iam = self.members.client(account_id, "iam")
        made = ensure_admin_role(
            iam, name, admin, f"Lets StackSet {baseline.stack_set_name} deploy into this account"
        )
        with self._lock:
            self._present[(name, account_id)] = time.monotonic()
        return made

    def _of(self, baseline: StackSetBaseline) -> tuple[str, str]:
        with self._lock:
            known = self._roles.get(baseline.stack_set_name)
        if known is not None:
            return known
        call_as = {"CallAs": baseline.call_as} if baseline.call_as != "SELF" else {}
        found = self.cloudformation.describe_stack_set(
            StackSetName=baseline.stack_set_name, **call_as
        )["StackSet"]
        management = self.members.management_account_id()
        roles = (
            found.get("ExecutionRoleName") or "AWSCloudFormationStackSetExecutionRole",
            found.get("AdministrationRoleARN")
            or f"arn:aws:iam::{management}:role/AWSCloudFormationStackSetAdministrationRole",
        )
        with self._lock:
            self._roles[baseline.stack_set_name] = roles
        return roles
