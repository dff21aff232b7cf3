"""Every activity can run twice without creating anything twice: run each one again, directly,
after its request has completed, and check that the sandbox did not change."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from temporalio.testing import ActivityEnvironment

from activities.control_tower import (
    AccountFactoryInput,
    AccountInput,
    ControlTowerActivities,
    WaitEnrollmentInput,
)
from activities.member_accounts import MemberAccountAccess
from activities.organizations import (
    CreateAccountInput,
    MoveToOuInput,
    OrganizationsActivities,
)
from activities.stack_sets import DeployBaselineInput, StackSetActivities
from common.landing_zone import StackSetPreferences, load_landing_zone
from tests.conftest import Api, Sandbox

Body = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def completed(api: Api, new_body_module: Body) -> dict[str, Any]:
    body = new_body_module(organizational_unit="Experiments/Factory", environment="dev")
    req = api.create("alice", body).json()
    return api.wait_for(req["id"], {"completed"})


@pytest.fixture(scope="module")
def new_body_module() -> Body:
    import uuid

    def make(**overrides: Any) -> dict[str, Any]:
        suffix = uuid.uuid4().hex[:10]
        body = {
            "account_name": f"idem-{suffix}",
            "account_email": f"idem+{suffix}@example.com",
            "owner_email": "alice@example.com",
            "cost_center": "CC-1",
            "justification": "t",
            "billing": {"customer_id": "cust-001"},
        }
        return {**body, **overrides}

    return make


def _env() -> ActivityEnvironment:
    return ActivityEnvironment()


def test_create_account_again_adopts(completed: dict[str, Any], sandbox: Sandbox) -> None:
    acts = OrganizationsActivities(sandbox.org, poll_interval_seconds=0.1)
    before = sandbox.calls("CreateAccount")
    result = _env().run(
        acts.create_account,
        CreateAccountInput(
            request_id=completed["id"],
            account_name=completed["request"]["account_name"],
            account_email=completed["request"]["account_email"],
        ),
    )
    assert result.account_id == completed["account_id"] and result.adopted
    assert sandbox.calls("CreateAccount") == before


def test_move_to_ou_again_does_not_move(completed: dict[str, Any], sandbox: Sandbox) -> None:
    acts = OrganizationsActivities(sandbox.org)
    before = sandbox.calls("MoveAccount")
    result = _env().run(
        acts.move_to_ou,
        MoveToOuInput(
            request_id=completed["id"],
            account_id=completed["account_id"],
            ou_path="Experiments/Factory",
            tags={"team": "platform"},
        ),
    )
    assert not result.moved
    assert sandbox.calls("MoveAccount") == before


def _ct(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> ControlTowerActivities:
    members = MemberAccountAccess(
        sandbox.client("sts"), "OrganizationAccountAccessRole", Config(region_name="us-east-1")
    )
    # Member-account clients take the endpoint from the environment, as in the worker.
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint)
    return ControlTowerActivities(
        controltower=sandbox.client("controltower"),
        servicecatalog=sandbox.client("servicecatalog"),
        organizations=sandbox.org,
        members=members,
        poll_interval_seconds=0.1,
    )


def test_control_tower_steps_again_change_nothing(
    completed: dict[str, Any], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    ct = _ct(sandbox, monkeypatch)
    operations = len(sandbox.control_tower()["operations"])
    role = _env().run(ct.ensure_execution_role, AccountInput(account_id=completed["account_id"]))
    assert role.created is False
    req = completed["request"]
    factory = _env().run(
        ct.provision_account_factory,
        AccountFactoryInput(
            request_id=completed["id"],
            account_id=completed["account_id"],
            account_name=req["account_name"],
            account_email=req["account_email"],
            ou_name="Factory",
            ou_id=completed["organizational_unit_id"],
            sso_user_email=req["owner_email"],
            product_name="AWS Control Tower Account Factory",
        ),
    )
    assert factory.adopted
    enrolled = _env().run(
        ct.wait_for_enrollment,
        WaitEnrollmentInput(account_id=completed["account_id"], timeout_seconds=5),
    )
    assert enrolled.detail == "enrolled"
    assert len(sandbox.control_tower()["operations"]) == operations


def test_baselines_again_change_nothing(completed: dict[str, Any], sandbox: Sandbox) -> None:
    lz = load_landing_zone(Path(__file__).parent / "landing_zone.yaml")
    cfn = sandbox.client("cloudformation")
    name = "vend-workload-security-role"
    ops_before = len(cfn.list_stack_set_operations(StackSetName=name)["Summaries"])
    result = _env().run(
        StackSetActivities(cfn, poll_interval_seconds=0.1).deploy_baseline,
        DeployBaselineInput(
            request_id=completed["id"],
            account_id=completed["account_id"],
            ou_id=completed["organizational_unit_id"],
            baseline=lz.baselines["ws-role"],
            preferences=StackSetPreferences(),
        ),
    )
    assert result.already_current and result.operation_id is None
    assert len(cfn.list_stack_set_operations(StackSetName=name)["Summaries"]) == ops_before
    assert len(sandbox.stack_instances(name, completed["account_id"])) == 1


class _StaleListing:
    """An EC2 client whose subnet listing was taken before another attempt deleted them: what
    an attempt running beside an earlier one (past its heartbeat timeout) sees."""

    def __init__(self, ec2: Any, listing: dict[str, Any]) -> None:
        self._ec2, self._listing = ec2, listing

    def describe_subnets(self, **kw: Any) -> dict[str, Any]:
        return self._listing

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ec2, name)


def test_deleting_a_default_vpc_whose_parts_another_attempt_deleted_finishes(
    sandbox: Sandbox,
) -> None:
    """Found by the fault run: a second attempt listed a subnet the first had just deleted,
    and AWS's InvalidSubnetID.NotFound parked the step. Gone counts as done."""
    from activities.member_settings import MemberSettingsActivities

    account = sandbox.new_account(f"vpc-{uuid.uuid4().hex[:8]}")
    ec2 = sandbox.member_client(account, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    in_vpc = [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
    listing = ec2.describe_subnets(Filters=in_vpc)
    assert listing["Subnets"]
    for subnet in listing["Subnets"]:  # the other attempt got there first
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    MemberSettingsActivities._delete(_StaleListing(ec2, listing), vpc["VpcId"])
    assert ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"] == []
