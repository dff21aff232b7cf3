"""The sandbox may be simpler than AWS, never kinder (issue 30): each rule here is AWS's, held by
the sandbox, and the engine's code that depends on it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from activities.account_lifecycle import close_quota_for
from activities.member_accounts import MemberAccountAccess
from activities.organizations import account_state
from activities.rollouts import RolloutActivities
from activities.stack_set_operations import recent_operations
from common.landing_zone import LandingZone, StackSetBaseline, load_landing_zone
from common.rollouts import Operation, RunOperationInput
from tests.conftest import ROOT, Api, Sandbox
from tests.waiting import wait_until


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
def test_a_new_accounts_role_is_not_assumable_at_once_and_steps_wait_for_it(
    sandbox: Sandbox,
    api: Api,
    new_body: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Member-account clients take the endpoint from the environment, as in the worker.
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint)
    sandbox.configure(role_ready_seconds=4)
    try:
        account = sandbox.new_account(f"role-{uuid.uuid4().hex[:8]}")
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


# ------------------------------------------------------------------ 4. StackSet capabilities
NAMED_ROLE = """AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Sub "probe-${AWS::Region}"
      AssumeRolePolicyDocument: {Version: "2012-10-17", Statement: []}
"""


def test_a_template_with_named_iam_needs_the_capability_and_a_rollout_gives_it(
    sandbox: Sandbox,
) -> None:
    cfn = sandbox.client("cloudformation")
    name = f"fidelity-caps-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ClientError) as refused:
        cfn.create_stack_set(StackSetName=name, TemplateBody=NAMED_ROLE)
    assert refused.value.response["Error"]["Code"] == "InsufficientCapabilitiesException"
    assert "CAPABILITY_NAMED_IAM" in refused.value.response["Error"]["Message"]
    cfn.create_stack_set(
        StackSetName=name, TemplateBody=NAMED_ROLE, Capabilities=["CAPABILITY_NAMED_IAM"]
    )
    changed = NAMED_ROLE + "# version 2\n"
    with pytest.raises(ClientError) as again:
        cfn.update_stack_set(StackSetName=name, TemplateBody=changed)
    assert again.value.response["Error"]["Code"] == "InsufficientCapabilitiesException"
    # The rollout's UpdateStackSet acknowledges the template's IAM (before: refused as above).
    rollouts = RolloutActivities(cloudformation=cfn, organizations=None, poll_interval_seconds=0.2)  # type: ignore[arg-type]
    op = Operation(
        action="UpdateStackSet", accounts=[], regions=["us-east-1"], operation_id=str(uuid.uuid4())
    )
    rollouts._start(
        RunOperationInput(
            rollout_id=str(uuid.uuid4()),
            baseline=StackSetBaseline(stack_set_name=name, regions=["us-east-1"]),
            operation=op,
            template_body=changed,
        ),
        op,
    )
    assert cfn.describe_stack_set(StackSetName=name)["StackSet"]["TemplateBody"] == changed


def test_stack_set_operations_come_in_pages_newest_first(sandbox: Sandbox) -> None:
    cfn = sandbox.client("cloudformation")
    name = f"fidelity-pages-{uuid.uuid4().hex[:8]}"
    body = (
        "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n"
        "    Properties: {Type: String, Value: v}\n"
    )
    cfn.create_stack_set(StackSetName=name, TemplateBody=body)
    made = []
    for n in range(3):
        op_id = str(uuid.uuid4())

        def updated(n: int = n, op_id: str = op_id) -> bool:
            try:
                cfn.update_stack_set(
                    StackSetName=name, TemplateBody=f"{body}# {n}\n", OperationId=op_id
                )
            except ClientError as err:
                assert err.response["Error"]["Code"] == "OperationInProgressException"
                return False
            return True

        wait_until(updated, f"update {n} accepted once the one before ended", timeout=30)
        made.append(op_id)
    first = cfn.list_stack_set_operations(StackSetName=name, MaxResults=1)
    assert [o["OperationId"] for o in first["Summaries"]] == [made[-1]] and first["NextToken"]
    rest = cfn.list_stack_set_operations(
        StackSetName=name, MaxResults=5, NextToken=first["NextToken"]
    )
    assert [o["OperationId"] for o in rest["Summaries"]] == made[-2::-1]
    assert [o["OperationId"] for o in recent_operations(cfn, name, {})] == made[::-1]


def test_the_organizations_accounts_come_twenty_to_a_page_as_aws_gives_them(
    sandbox: Sandbox,
) -> None:
    """moto's default page of ListAccounts is 100, and it takes any MaxResults: the sandbox pages
    at AWS's 20 and refuses what AWS refuses, so a listing costs the calls it costs on AWS."""
    org = sandbox.client("organizations")

    def total() -> int:
        return sum(len(p["Accounts"]) for p in org.get_paginator("list_accounts").paginate())

    for _ in range(max(0, 21 - total())):  # a fresh sandbox: enough for a second page
        org.create_account(Email=f"page-{uuid.uuid4().hex[:8]}@example.com", AccountName="p")
    wait_until(lambda: total() > 20, "more than a page of accounts made")
    first = org.list_accounts()
    assert len(first["Accounts"]) == 20 and first.get("NextToken")
    assert len(org.list_accounts(MaxResults=7)["Accounts"]) == 7
    with pytest.raises(ClientError) as refused:
        org.list_accounts(MaxResults=21)
    assert refused.value.response["Error"]["Code"] == "InvalidInputException"
    assert refused.value.response["Reason"] == "MAX_VALUE_EXCEEDED"
    # Every paged Organizations list holds to the model's 1-20, not ListAccounts alone.
    root = org.list_roots()["Roots"][0]["Id"]
    paged = {
        "ListAccountsForParent": lambda n: org.list_accounts_for_parent(
            ParentId=root, MaxResults=n
        ),
        "ListOrganizationalUnitsForParent": lambda n: org.list_organizational_units_for_parent(
            ParentId=root, MaxResults=n
        ),
        "ListPolicies": lambda n: org.list_policies(Filter="SERVICE_CONTROL_POLICY", MaxResults=n),
        "ListPoliciesForTarget": lambda n: org.list_policies_for_target(
            TargetId=root, Filter="SERVICE_CONTROL_POLICY", MaxResults=n
        ),
        "ListCreateAccountStatus": lambda n: org.list_create_account_status(MaxResults=n),
    }
    for name, call in paged.items():
        call(20)
        with pytest.raises(ClientError) as refused:
            call(21)
        assert refused.value.response["Error"]["Code"] == "InvalidInputException", name
        assert refused.value.response["Reason"] == "MAX_VALUE_EXCEEDED", name


# ------------------------------------------------------------------ 5. Control Tower baselines
def test_a_registered_ou_carries_several_baselines_and_children_need_asking(
    sandbox: Sandbox, api: Api, new_body: Callable[..., dict[str, Any]]
) -> None:
    done = api.wait_for(
        api.create("alice", new_body(organizational_unit="Sandbox", environment="sandbox")).json()[
            "id"
        ],
        {"completed"},
        timeout=180,
    )
    ct = sandbox.client("controltower")
    names = {b["arn"]: b["name"] for b in ct.list_baselines()["baselines"]}
    ou = done["organizational_unit_id"]
    ou_arn = sandbox.org.describe_organizational_unit(OrganizationalUnitId=ou)[
        "OrganizationalUnit"
    ]["Arn"]
    on_ou = ct.list_enabled_baselines(filter={"targetIdentifiers": [ou_arn]})["enabledBaselines"]
    kinds = [names[b["baselineIdentifier"]] for b in on_ou]
    assert sorted(kinds) == ["AWSControlTowerBaseline", "ConfigBaseline", "IdentityCenterBaseline"]
    assert kinds[0] != "AWSControlTowerBaseline"  # the first found is not the one to reset
    account_arn = sandbox.org.describe_account(AccountId=done["account_id"])["Account"]["Arn"]
    flt = {"targetIdentifiers": [account_arn]}
    assert ct.list_enabled_baselines(filter=flt)["enabledBaselines"] == []
    children = ct.list_enabled_baselines(filter=flt, includeChildren=True)["enabledBaselines"]
    assert [names[c["baselineIdentifier"]] for c in children] == ["AWSControlTowerBaseline"]
    assert children[0]["statusSummary"]["status"] == "SUCCEEDED"


@pytest.mark.parametrize("remediation", [["INHERITANCE_DRIFT"], []])
def test_auto_enrollment_is_the_landing_zones_remediation_of_inheritance_drift(
    sandbox: Sandbox, remediation: list[str]
) -> None:
    """Control Tower enrolls an account moved into a registered OU only when the landing zone
    (3.1 or later) remediates INHERITANCE_DRIFT, and GetLandingZone says whether it does."""
    ct = sandbox.client("controltower")
    arn = ct.list_landing_zones()["landingZones"][0]["arn"]
    seeded = ct.get_landing_zone(landingZoneIdentifier=arn)["landingZone"]
    assert seeded["remediationTypes"] == ["INHERITANCE_DRIFT"]  # the test landing zone uses it
    account = sandbox.new_account(f"auto-{uuid.uuid4().hex[:8]}")
    root = sandbox.org.list_roots()["Roots"][0]["Id"]
    auto = next(
        o["Id"]
        for o in sandbox.org.list_organizational_units_for_parent(
            ParentId=next(
                o["Id"]
                for o in sandbox.org.list_organizational_units_for_parent(ParentId=root)[
                    "OrganizationalUnits"
                ]
                if o["Name"] == "Experiments"
            )
        )["OrganizationalUnits"]
        if o["Name"] == "Auto"
    )
    sandbox.configure(remediation_types=remediation)
    try:
        zone = ct.get_landing_zone(landingZoneIdentifier=arn)["landingZone"]
        assert zone.get("remediationTypes", []) == remediation
        sandbox.org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=auto)
        account_arn = sandbox.org.describe_account(AccountId=account)["Account"]["Arn"]
        enrolled = ct.list_enabled_baselines(
            filter={"targetIdentifiers": [account_arn]}, includeChildren=True
        )["enabledBaselines"]
        assert bool(enrolled) == bool(remediation)
    finally:
        sandbox.configure(remediation_types=["INHERITANCE_DRIFT"])


# ------------------------------------------------------------------ 9. faults as the client reads
@pytest.mark.parametrize(
    ("service", "client", "action", "call"),
    [
        (
            "servicecatalog",
            "servicecatalog",
            "SearchProductsAsAdmin",
            lambda c: c.search_products_as_admin(),
        ),
        ("controltower", "controltower", "ListBaselines", lambda c: c.list_baselines()),
        ("sso", "sso-admin", "ListInstances", lambda c: c.list_instances()),
        ("organizations", "organizations", "ListRoots", lambda c: c.list_roots()),
    ],
)
def test_an_injected_fault_reaches_the_client_as_the_service_would_send_it(
    sandbox: Sandbox, service: str, client: str, action: str, call: Callable[[Any], Any]
) -> None:
    """CBOR to an RPC v2 client, JSON to a JSON or REST-JSON one, XML to a query one: botocore
    then raises the ClientError the engine maps, message and all (before: every fault to a
    client without X-Amz-Target came back as XML; Control Tower's lost its message)."""
    sandbox.fault(
        service=service, action=action, status=400, error="AccessDeniedException", times=1
    )
    try:
        with pytest.raises(ClientError) as raised:
            call(sandbox.client(client))
        error = raised.value.response["Error"]
        assert error["Code"] == "AccessDeniedException"
        assert error["Message"] == "injected by the sandbox fault plan"
    finally:
        sandbox.clear_faults()


# ------------------------------------------------------------------ throttling at a rate
def test_an_api_past_its_rate_is_throttled_with_the_services_own_error(sandbox: Sandbox) -> None:
    """With a rate set (the fleet benchmark sets AWS's), a caller going faster than it gets the
    service's throttling error, which botocore knows to back off from; the others are not
    throttled. One call in twenty seconds with a burst of two: a third call at once is
    refused."""
    once = Config(retries={"mode": "standard", "max_attempts": 1})
    org = sandbox.client("organizations", once)
    ct = sandbox.client("controltower", once)
    sandbox.configure(
        rates={
            "organizations:DescribeOrganization": {"rate": 0.05, "burst": 2},
            "controltower": 0.05,
        }
    )
    try:
        refused = _first_refusal(org.describe_organization)
        assert refused.response["Error"]["Code"] == "TooManyRequestsException"
        assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        org.list_roots()  # another action: no rate set for it
        throttled = _first_refusal(ct.list_landing_zones)
        assert throttled.response["Error"]["Code"] == "ThrottlingException"
        rates = sandbox.state()["rates"]
        assert rates["organizations:DescribeOrganization"]["throttled"] >= 1
        assert rates["controltower"]["throttled"] >= 1
    finally:
        sandbox.configure(rates={})
    assert sandbox.state()["rates"] == {}
    org.describe_organization()
    org.describe_organization()
    org.describe_organization()


def _first_refusal(call: Callable[[], Any]) -> ClientError:
    """Call until refused (the worker may have taken a token meanwhile: at most a few calls)."""
    for _ in range(5):
        try:
            call()
        except ClientError as err:
            return err
    raise AssertionError("never throttled")
