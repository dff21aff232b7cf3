"""Seed the sandbox organization with the landing zone's OUs (idempotent: safe on every start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from common import scp
from common.landing_zone import EnrollmentStrategy, LandingZone, template_path
from sandbox.aws.controltower import ControlTowerEmulator
from sandbox.aws.identities import BUDGET_ACTION_ROLE


def _client(service: str, endpoint: str, region: str) -> Any:
    make: Any = boto3.client
    return make(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


def seed_organization(endpoint: str, lz: LandingZone, region: str = "us-east-1") -> dict[str, str]:
    org = _client("organizations", endpoint, region)
    try:
        org.describe_organization()
    except org.exceptions.AWSOrganizationsNotInUseException:
        org.create_organization(FeatureSet="ALL")
    # A ready organization trusts AWS Account Management (names, contacts, regions of member
    # accounts); without it the Account API refuses calls naming another account.
    org.enable_aws_service_access(ServicePrincipal="account.amazonaws.com")
    root = org.list_roots()["Roots"][0]["Id"]
    ids: dict[str, str] = {"": root}
    for path in lz.all_paths():
        parent_path, _, name = path.rpartition("/")
        parent = ids[parent_path]
        existing = {
            ou["Name"]: ou["Id"]
            for page in org.get_paginator("list_organizational_units_for_parent").paginate(
                ParentId=parent
            )
            for ou in page["OrganizationalUnits"]
        }
        ids[path] = (
            existing.get(name)
            or org.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"][
                "Id"
            ]
        )
    return ids


def seed_control_tower(
    ct: ControlTowerEmulator, lz: LandingZone, ou_ids: dict[str, str], unregistered: set[str]
) -> None:
    """Register the landing zone's OUs (the landing zone a real organization already has)."""
    for ou in lz.organizational_units:
        strategy = lz.enrollment_for(ou)
        if strategy == EnrollmentStrategy.none or ou.path in unregistered:
            continue
        ct.register_ou(ou_ids[ou.path])
        ct.enable_other_baselines(ou_ids[ou.path])
        if strategy == EnrollmentStrategy.auto_enroll:
            ct.auto_enroll_ous.add(ou_ids[ou.path])
            # Auto-enrollment is the landing zone's setting on AWS, not an OU's.
            ct.remediation_types.add("INHERITANCE_DRIFT")
        for control in ou.guardrails.controls:  # the elective ones the platform team enabled
            ct.enable_control_now(ou_ids[ou.path], control)


# The suspended OU's SCP as docs/operations.md recommends it: everything denied but to the roles
# the decommission still acts through after quarantine (the member role, StackSets' execution
# role, Control Tower's), as Control Tower's own SCPs exempt its role.
ENGINE_ROLES = (
    "OrganizationAccountAccessRole",
    "AWSCloudFormationStackSetExecutionRole",
    "AWSControlTowerExecution",
)
QUARANTINE = scp.quarantine_policy(ENGINE_ROLES)
DENY_LEAVE = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Deny",'
    '"Action":"organizations:LeaveOrganization","Resource":"*"}]}'
)


def seed_service_control_policies(
    endpoint: str, lz: LandingZone, ou_ids: dict[str, str], region: str = "us-east-1"
) -> None:
    """The SCPs the landing zone declares, created and attached (moto does not enforce them)."""
    org = _client("organizations", endpoint, region)
    root = org.list_roots()["Roots"][0]
    if not any(
        t["Type"] == "SERVICE_CONTROL_POLICY" and t["Status"] == "ENABLED"
        for t in root.get("PolicyTypes", [])
    ):
        org.enable_policy_type(RootId=root["Id"], PolicyType="SERVICE_CONTROL_POLICY")
    wanted = [(ou.path, ou.guardrails.service_control_policies) for ou in lz.organizational_units]
    wanted.append((lz.suspended_ou, lz.suspended_ou_guardrails.service_control_policies))
    existing = {
        p["Name"]: p["Id"]
        for page in org.get_paginator("list_policies").paginate(Filter="SERVICE_CONTROL_POLICY")
        for p in page["Policies"]
    }
    for path, names in wanted:
        target = ou_ids.get(path)
        if target is None:
            continue
        attached = {
            p["Name"]
            for p in org.list_policies_for_target(TargetId=target, Filter="SERVICE_CONTROL_POLICY")[
                "Policies"
            ]
        }
        for name in names:
            content = QUARANTINE if "deny-all" in name else DENY_LEAVE
            if name not in existing:
                existing[name] = org.create_policy(
                    Name=name,
                    Description=f"{name} (sandbox)",
                    Type="SERVICE_CONTROL_POLICY",
                    Content=content,
                )["Policy"]["PolicySummary"]["Id"]
            elif org.describe_policy(PolicyId=existing[name])["Policy"]["Content"] != content:
                # A sandbox kept from an earlier version: its policy as the seed writes it now.
                org.update_policy(PolicyId=existing[name], Content=content)
            if name not in attached:
                org.attach_policy(PolicyId=existing[name], TargetId=target)


_BUDGETS_TRUST = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
    '{"Service":"budgets.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
)


def seed_budget_action_role(endpoint: str, region: str = "us-east-1") -> str:
    """The management account's role for budget actions (idempotent); its ARN."""
    iam = _client("iam", endpoint, region)
    try:
        return str(iam.get_role(RoleName=BUDGET_ACTION_ROLE)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        pass
    return str(
        iam.create_role(
            RoleName=BUDGET_ACTION_ROLE,
            AssumeRolePolicyDocument=_BUDGETS_TRUST,
            Description="AWS Budgets applies sandbox leases' freeze SCP",
        )["Role"]["Arn"]
    )


def seed_stack_sets(
    endpoint: str, lz: LandingZone, lz_file: Path, region: str = "us-east-1"
) -> None:
    """Create the baseline StackSets from their templates, as a platform team would have."""
    cfn = _client("cloudformation", endpoint, region)
    for baseline in lz.baselines.values():
        path = template_path(lz_file, baseline)
        if path is None:
            continue
        try:
            cfn.describe_stack_set(StackSetName=baseline.stack_set_name)
            continue
        except cfn.exceptions.StackSetNotFoundException:
            pass
        cfn.create_stack_set(
            StackSetName=baseline.stack_set_name,
            TemplateBody=path.read_text(encoding="utf-8"),
            Parameters=[
                {"ParameterKey": k, "ParameterValue": v} for k, v in baseline.parameters.items()
            ],
            PermissionModel=baseline.permission_model.value,
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )


TENANT_ID_PARAMETER = "/vend/workload-security/tenant-id"
ACTIVATION_TOKEN_PARAMETER = "/vend/workload-security/activation-token"


def seed_workload_security_secrets(
    endpoint: str, tenant_id: str, activation_token: str, region: str = "us-east-1"
) -> None:
    """Where a platform team keeps the agent's tenant id and activation token: Parameter Store
    of the management account (the worker reads them; workflows never see them)."""
    ssm = _client("ssm", endpoint, region)
    ssm.put_parameter(Name=TENANT_ID_PARAMETER, Value=tenant_id, Type="String", Overwrite=True)
    ssm.put_parameter(
        Name=ACTIVATION_TOKEN_PARAMETER, Value=activation_token, Type="SecureString", Overwrite=True
    )


# Who the embedded stack's Identity Center knows: groups a request can name as its owner group,
# and the demo users by user name.
DEMO_GROUPS = ("team-platform", "team-payments", "team-data")
DEMO_USERS = ("alice", "bob", "carol", "dave", "erin")


def seed_identity_center(endpoint: str, lz: LandingZone, region: str = "us-east-1") -> None:
    """The permission sets the landing zone names, and demo groups and users (idempotent)."""
    sso = _client("sso-admin", endpoint, region)
    store = _client("identitystore", endpoint, region)
    instance = sso.list_instances()["Instances"][0]
    arn, store_id = instance["InstanceArn"], instance["IdentityStoreId"]
    existing = {
        sso.describe_permission_set(InstanceArn=arn, PermissionSetArn=ps)["PermissionSet"]["Name"]
        for ps in sso.list_permission_sets(InstanceArn=arn)["PermissionSets"]
    }
    wanted = {
        name
        for ou in lz.organizational_units
        if (access := lz.settings_for(ou).access) is not None
        for name in access.permission_sets
    } | {name for template in lz.lease_templates for name in template.permission_sets}
    for name in sorted(wanted - existing):
        sso.create_permission_set(InstanceArn=arn, Name=name, SessionDuration="PT8H")
    groups = {g["DisplayName"] for g in store.list_groups(IdentityStoreId=store_id)["Groups"]}
    for name in DEMO_GROUPS:
        if name not in groups:
            store.create_group(IdentityStoreId=store_id, DisplayName=name)
    users = {u["UserName"] for u in store.list_users(IdentityStoreId=store_id)["Users"]}
    for name in DEMO_USERS:
        if name not in users:
            store.create_user(
                IdentityStoreId=store_id,
                UserName=name,
                DisplayName=name.title(),
                Name={"GivenName": name.title(), "FamilyName": "Demo"},
                Emails=[{"Value": f"{name}@example.com", "Primary": True}],
            )
