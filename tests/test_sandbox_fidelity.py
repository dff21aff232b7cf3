"""The sandbox may be simpler than AWS, never kinder (issue 30): each rule here is AWS's, held by
the sandbox, and the engine's code that depends on it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from activities.account_lifecycle import close_quota_for
from activities.member_accounts import MemberAccountAccess
from activities.organizations import account_state
from common.landing_zone import LandingZone, load_landing_zone
from tests.conftest import ROOT, Api, Sandbox


# ------------------------------------------------------------------ 2. Account.State
def test_organizations_answers_state_not_the_retired_status(sandbox: Sandbox) -> None:
    accounts = sandbox.org.list_accounts()["Accounts"]
    assert accounts and all("Status" not in a and a["State"] for a in accounts)
    assert account_state({"State": "PENDING_CLOSURE"}) == "PENDING_CLOSURE"
    with pytest.raises(KeyError):
        account_state({"Status": "ACTIVE"})  # the retired field alone is not read


# ------------------------------------------------------------------ 3. the close quota
@pytest.mark.parametrize(
    ("members", "quota"),
    [(10, 250), (1_249, 250), (1_250, 250), (2_000, 400), (5_000, 1_000), (50_000, 1_000)],
)
def test_the_close_quota_is_the_higher_of_250_or_a_fifth_at_most_1000(
    members: int, quota: int
) -> None:
    assert close_quota_for(members) == quota


def test_the_landing_zone_may_state_the_close_quota_aws_granted() -> None:
    lz = load_landing_zone(ROOT / "tests" / "landing_zone.yaml")
    assert lz.close_quota is None
    granted = LandingZone.model_validate({**lz.model_dump(), "close_quota": 40})
    assert granted.close_quota == 40


# ------------------------------------------------------------------ 9. answers as the model says
def _members_outside(value: object, shape: object) -> list[str]:
    """Members an answer has that the botocore output shape does not (recursively)."""
    from botocore.model import ListShape, MapShape, StructureShape

    if isinstance(shape, StructureShape) and isinstance(value, dict):
        found = [k for k in value if k not in shape.members and k != "ResponseMetadata"]
        for key, member in shape.members.items():
            if key in value:
                found += [f"{key}.{m}" for m in _members_outside(value[key], member)]
        return found
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [m for item in value for m in _members_outside(item, shape.member)]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return [m for item in value.values() for m in _members_outside(item, shape.value)]
    return []


def test_listed_ssm_associations_carry_only_what_the_model_says(sandbox: Sandbox) -> None:
    import botocore.session

    account = sandbox.org.list_accounts()["Accounts"][-1]["Id"]
    ssm = sandbox.member_client(account, "ssm")
    made = ssm.create_association(
        Name="AWS-ConfigureAWSPackage",
        AssociationName="fidelity-probe",
        Targets=[{"Key": "InstanceIds", "Values": ["*"]}],
        Parameters={"action": ["Install"], "name": ["probe"]},
    )["AssociationDescription"]
    try:
        listed = ssm.list_associations(
            AssociationFilterList=[{"key": "AssociationName", "value": "fidelity-probe"}]
        )
        model = botocore.session.get_session().get_service_model("ssm")
        output = model.operation_model("ListAssociations").output_shape
        assert _members_outside(listed, output) == []
        assert "Parameters" not in listed["Associations"][0]
        described = ssm.describe_association(AssociationId=made["AssociationId"])
        assert described["AssociationDescription"]["Parameters"]["action"] == ["Install"]
    finally:
        ssm.delete_association(AssociationId=made["AssociationId"])


# ------------------------------------------------------------------ 7. a new account's role
def _new_account(sandbox: Sandbox, name: str) -> str:
    status = sandbox.org.create_account(Email=f"{name}@example.com", AccountName=name)[
        "CreateAccountStatus"
    ]
    deadline = time.monotonic() + 30
    while status["State"] == "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.1)
        status = sandbox.org.describe_create_account_status(CreateAccountRequestId=status["Id"])[
            "CreateAccountStatus"
        ]
    return str(status["AccountId"])


def test_a_new_accounts_role_is_not_assumable_at_once_and_steps_wait_for_it(
    sandbox: Sandbox, api: Api, new_body: Callable[..., dict[str, Any]]
) -> None:
    sandbox.configure(role_ready_seconds=4)
    try:
        account = _new_account(sandbox, f"role-{uuid.uuid4().hex[:8]}")
        with pytest.raises(ClientError) as refused:
            sandbox.client("sts").assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                RoleSessionName="too-soon",
            )
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        members = MemberAccountAccess(
            sandbox.client("sts"), "OrganizationAccountAccessRole", Config(region_name="us-east-1")
        )
        with pytest.raises(ClientError):
            members.client(account, "iam", role_wait_seconds=0)  # an adoption's: no wait
        assert members.client(account, "iam", role_wait_seconds=20).list_roles()["Roles"]
        # A vend's steps wait for the role as the engine's member access does: none parks,
        # none spends a retry on it.
        made = api.create("alice", new_body(organizational_unit="Sandbox", environment="sandbox"))
        done = api.wait_for(made.json()["id"], {"completed"}, timeout=180)
        assert all(s["attempts"] <= 1 for s in done["steps"]), done["steps"]
    finally:
        sandbox.configure(role_ready_seconds=1.0)
