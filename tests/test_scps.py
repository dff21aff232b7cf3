"""SCPs as AWS applies them (issue 30, item 1): the evaluation itself, the sandbox refusing what
an SCP refuses a member account's roles (its calls, StackSets' work). The doctor's check of
the suspended OU is in test_doctor.py; the decommission that needs it, in
test_account_lifecycle.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from common import scp
from tests.conftest import Sandbox
from tests.waiting import wait_until

DENY_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}'
ALLOW_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
MEMBER = "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole"


def _levels(*ou_policies: str) -> list[scp.Level]:
    root = scp.Level("Root", [("FullAWSAccess", ALLOW_ALL)])
    ous = [
        scp.Level(f"OU {i}", [("FullAWSAccess", ALLOW_ALL), (f"p{i}", p)])
        for i, p in enumerate(ou_policies)
    ]
    return [root, *ous, scp.Level("account", [("FullAWSAccess", ALLOW_ALL)])]


# ------------------------------------------------------------------ the evaluation
def test_a_deny_anywhere_on_the_path_refuses_and_names_the_policy() -> None:
    why = scp.refusal(_levels(DENY_ALL), scp.Call("iam:DeleteRole", MEMBER, "222222222222"))
    assert why is not None and "explicit deny" in why and "p0" in why


def test_every_level_must_allow_the_call() -> None:
    only_s3 = '{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
    levels = _levels()
    levels[1:1] = [scp.Level("OU narrow", [("only-s3", only_s3)])]
    assert scp.refusal(levels, scp.Call("s3:GetObject", MEMBER, "2")) is None
    why = scp.refusal(levels, scp.Call("iam:DeleteRole", MEMBER, "2"))
    assert why is not None and "no service control policy on OU narrow allows it" in why


def test_not_action_and_wildcards_match_as_aws_matches_them() -> None:
    deny_but_iam = '{"Statement":[{"Effect":"Deny","NotAction":"iam:*","Resource":"*"}]}'
    levels = _levels(deny_but_iam)
    assert scp.refusal(levels, scp.Call("iam:DeleteRole", MEMBER, "2")) is None
    assert scp.refusal(levels, scp.Call("ssm:DeleteAssociation", MEMBER, "2")) is not None
    leave = '{"Statement":[{"Effect":"Deny","Action":"organizations:Leave*","Resource":"*"}]}'
    call = scp.Call("organizations:LeaveOrganization", MEMBER, "2")
    assert scp.refusal(_levels(leave), call) is not None


def test_the_quarantine_policy_exempts_the_engine_roles_by_principal_arn_only() -> None:
    levels = _levels(scp.quarantine_policy(["OrganizationAccountAccessRole"]))
    assert scp.refusal(levels, scp.Call("iam:DeleteRole", MEMBER, "2")) is None
    person = "arn:aws:iam::222222222222:role/AWSReservedSSO_Admin_0123"
    assert scp.refusal(levels, scp.Call("iam:DeleteRole", person, "2")) is not None


def test_what_is_not_modelled_is_read_strictly() -> None:
    """A condition on a key the evaluation does not know: a Deny applies, an Allow does not."""
    odd = {"StringEquals": {"aws:PrincipalTag/team": "platform"}}
    deny = json.dumps({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*",
                                       "Condition": odd}]})  # fmt: skip
    allow = json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                                        "Condition": odd}]})  # fmt: skip
    call = scp.Call("iam:DeleteRole", MEMBER, "2")
    assert scp.refusal(_levels(deny), call) is not None
    narrow = [scp.Level("Root", [("conditional", allow)])]
    assert scp.refusal(narrow, call) is not None
    specific = '{"Statement":[{"Effect":"Deny","Action":"*","Resource":"arn:aws:s3:::x"}]}'
    assert scp.refusal(_levels(specific), call) is not None


def test_service_linked_roles_are_outside_scps() -> None:
    linked = "arn:aws:iam::2:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForSSM"
    assert scp.refusal(_levels(DENY_ALL), scp.Call("ssm:DeleteAssociation", linked, "2")) is None


# ------------------------------------------------------------------ the sandbox enforces them
@pytest.fixture
def shut_ou(sandbox: Sandbox) -> Iterator[tuple[str, str, Any]]:
    """A fresh member account in an OU of its own whose SCP denies everything to everyone
    (the policy is the test's to change); the account and OU are left to the run."""
    org = sandbox.org
    root = org.list_roots()["Roots"][0]["Id"]
    name = f"scp-{uuid.uuid4().hex[:8]}"
    ou = org.create_organizational_unit(ParentId=root, Name=name)["OrganizationalUnit"]["Id"]
    policy = org.create_policy(
        Name=name, Description="test", Type="SERVICE_CONTROL_POLICY", Content=ALLOW_ALL
    )["Policy"]["PolicySummary"]["Id"]
    org.attach_policy(PolicyId=policy, TargetId=ou)
    account = sandbox.new_account(name)
    sandbox.member_credentials(account)  # assumable (a new account's role takes a moment)
    org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
    yield account, policy, org


def test_a_member_role_is_refused_what_its_ous_scp_denies(
    sandbox: Sandbox, shut_ou: tuple[str, str, Any]
) -> None:
    account, policy, org = shut_ou
    iam = sandbox.member_client(account, "iam")
    iam.list_roles()
    org.update_policy(PolicyId=policy, Content=DENY_ALL)
    with pytest.raises(ClientError) as denied:
        iam.list_roles()
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "explicit deny in a service control policy" in str(denied.value)
    ssm = sandbox.member_client(account, "ssm")  # a JSON protocol answers in its own form
    with pytest.raises(ClientError) as json_denied:
        ssm.list_associations()
    assert json_denied.value.response["Error"]["Code"] == "AccessDeniedException"
    org.update_policy(
        PolicyId=policy, Content=scp.quarantine_policy(["OrganizationAccountAccessRole"])
    )
    iam.list_roles()  # the exempted role acts again
    # The management account is never bound by an SCP.
    sandbox.client("iam").list_roles()


def test_stack_set_instances_fail_without_the_execution_role_or_under_a_denying_scp(
    sandbox: Sandbox, shut_ou: tuple[str, str, Any]
) -> None:
    account, policy, org = shut_ou
    cfn = sandbox.client("cloudformation")
    name = f"scp-probe-{uuid.uuid4().hex[:8]}"
    cfn.create_stack_set(
        StackSetName=name,
        TemplateBody=json.dumps(
            {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}
        ),
    )

    def deploy() -> dict[str, Any]:
        op = cfn.create_stack_instances(
            StackSetName=name, Accounts=[account], Regions=["us-east-1"]
        )["OperationId"]
        done: dict[str, Any] = {}

        def ended() -> bool:
            found = cfn.describe_stack_set_operation(StackSetName=name, OperationId=op)
            done.update(found["StackSetOperation"])
            return done["Status"] in ("SUCCEEDED", "FAILED")

        wait_until(ended, f"operation {op} to end")
        results = cfn.list_stack_set_operation_results(StackSetName=name, OperationId=op)
        return {"status": done["Status"], "results": results["Summaries"]}

    first = deploy()
    assert first["status"] == "FAILED"
    assert (
        "should have 'AWSCloudFormationStackSetExecutionRole' role"
        in (first["results"][0]["StatusReason"])
    )
    sandbox.member_client(account, "iam").create_role(
        RoleName="AWSCloudFormationStackSetExecutionRole", AssumeRolePolicyDocument="{}"
    )
    org.update_policy(PolicyId=policy, Content=DENY_ALL)
    second = deploy()
    assert second["status"] == "FAILED"
    assert "explicit deny" in second["results"][0]["StatusReason"]
    exempt = scp.quarantine_policy(["AWSCloudFormationStackSetExecutionRole"])
    org.update_policy(PolicyId=policy, Content=exempt)
    assert deploy()["status"] == "SUCCEEDED"
