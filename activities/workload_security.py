"""Trend Micro Cloud One Workload Security: protect a new account.

(1) the tenant's external id; (2) the cross-account role Trend Micro assumes, made or corrected
through OrganizationAccountAccessRole; (3) the AWS connector, found or created; (4) an SSM State
Manager association that installs the agent on every instance, now and in the future, with the
tenant id and activation token copied from the management account's Parameter Store inside
this activity (they never pass through workflow history); (5) the policy on the account's
computers. Running it again changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from botocore.exceptions import ClientError
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.aws_errors import error_code, final, is_transient, to_application_error
from activities.heartbeats import beat
from activities.http_calls import call, message_of, path
from activities.member_accounts import MemberAccountAccess
from common.settings import WorkloadSecuritySettings

SERVICE = "WorkloadSecurity"
SCRIPT_DOCUMENT = "vend-workload-security-agent-install"
DISCOVERY_ACTIONS = [
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeRegions",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeLicenses",
    "iam:ListAccountAliases",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "workspaces:DescribeWorkspaces",
    "workspaces:DescribeWorkspaceDirectories",
    "workspaces:DescribeWorkspaceBundles",
    "workspaces:DescribeTags",
]


ENGINE_ROLE_DESCRIPTION = "Trend Micro Cloud One Workload Security discovery (read-only)"


class WorkloadSecurityInput(BaseModel):
    request_id: str
    account_id: str
    account_name: str
    policy: str | None = None


class WorkloadSecurityResult(BaseModel):
    connector_id: int
    role_arn: str
    policy_id: int
    associations: list[str]
    computers_assigned: int
    detail: str
    attempt: int = 1


class ApplyPolicyInput(BaseModel):
    policy: str
    account_ids: list[str]


class ApplyPolicyResult(BaseModel):
    policy_id: int
    failed: dict[str, str]  # account -> why
    computers_assigned: int


class WorkloadSecurityClient:
    """The REST API (``/api``), with the key in headers set once: nothing else sees it."""

    def __init__(self, settings: WorkloadSecuritySettings) -> None:
        headers = {"api-version": "v1", "Content-Type": "application/json"}
        if settings.api_key is not None:
            key = settings.api_key.get_secret_value()
            if settings.auth_header == "api-secret-key":
                headers["api-secret-key"] = key
            else:
                headers["Authorization"] = f"ApiKey {key}"
        self.configured = settings.api_key is not None
        self.http = httpx.Client(
            base_url=settings.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=settings.timeout_seconds,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if not self.configured:
            raise final(
                "Workload Security is not configured (VEND_WORKLOAD_SECURITY__API_KEY)",
                "WorkloadSecurityNotConfigured",
            )
        resp = call(self.http, method, path, service=SERVICE, **kwargs)
        if resp.status_code == 401:
            raise final(
                "Workload Security refused the API key (401); check the configured key",
                "WorkloadSecurityUnauthorized",
            )
        if resp.status_code >= 400:
            raise ApplicationError(
                f"Workload Security {method} /{path} answered {resp.status_code}: "
                f"{message_of(resp)}",
                type="WorkloadSecurityRequestFailed",
                non_retryable=not _propagating(resp),
            )
        return resp.json() if resp.content else None


def _propagating(resp: httpx.Response) -> bool:
    """A new role may not be assumable for a few seconds (IAM propagation): worth a retry."""
    return resp.status_code == 400 and "Unable to assume role" in message_of(resp)


@dataclass
class WorkloadSecurityActivities:
    ws: WorkloadSecurityClient
    members: MemberAccountAccess
    management_ssm: Any
    settings: WorkloadSecuritySettings

    @activity.defn(no_thread_cancel_exception=True)
    def enroll_workload_security(self, inp: WorkloadSecurityInput) -> WorkloadSecurityResult:
        info = activity.info()
        external_id = self.ws.request("GET", "awsconnectorsettings")["externalId"]
        try:
            role_arn = self._ensure_role(inp.account_id, external_id)
        except ClientError as err:
            raise to_application_error(err, action="cross-account role") from err
        connector = self._connector(inp, role_arn)
        policy_id = self._policy_id(inp.policy or self.settings.default_policy)
        try:
            associations = [
                self._ensure_agent_association(inp.account_id, region, policy_id)
                for region in self.settings.regions
            ]
        except ClientError as err:
            raise to_application_error(err, action="SSM agent association") from err
        assigned = self._assign_policy(inp.account_id, policy_id)
        return WorkloadSecurityResult(
            connector_id=int(connector["ID"]),
            role_arn=role_arn,
            policy_id=policy_id,
            associations=associations,
            computers_assigned=assigned,
            detail=f"connector {connector['ID']}, policy {policy_id}, "
            f"agent association in {', '.join(self.settings.regions)}",
            attempt=info.attempt,
        )

    # ------------------------------------------------------------------ (2) the role
    def _ensure_role(self, account_id: str, external_id: str, *, again: bool = False) -> str:
        iam = self.members.client(account_id, "iam")
        name = self.settings.role_name
        trust = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{self.settings.trend_account_id}:root"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
                    }
                ],
            }
        )
        stackset = self.settings.role_source == "stackset"
        try:
            role = iam.get_role(RoleName=name)["Role"]
            current = role["AssumeRolePolicyDocument"]
            current = json.loads(current) if isinstance(current, str) else current
            if current != json.loads(trust):
                if stackset:
                    raise final(
                        f"role {name} in {account_id} does not trust Trend Micro with this "
                        "tenant's external id; fix the baseline StackSet's ExternalId parameter",
                        "ConnectorRoleMisconfigured",
                    )
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)  # drifted
            if stackset:
                return str(role["Arn"])
        except ClientError as err:
            if error_code(err) != "NoSuchEntity":
                raise
            if stackset:
                raise final(
                    f"role {name} is missing in {account_id}; the baseline StackSet that deploys "
                    "it has not run for this account",
                    "ConnectorRoleMissing",
                ) from err
            try:
                role = iam.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=trust,
                    Description=ENGINE_ROLE_DESCRIPTION,
                )["Role"]
            except ClientError as exists:
                # Another attempt of this step made it between our look and our create (an
                # attempt presumed dead by its heartbeat, still running): take it as it is.
                if error_code(exists) != "EntityAlreadyExists" or again:
                    raise  # (IAM's reads may lag its writes: the step's retry looks again)
                return self._ensure_role(account_id, external_id, again=True)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": DISCOVERY_ACTIONS, "Resource": "*"}],
        }
        iam.put_role_policy(
            RoleName=name,
            PolicyName="workload-security-discovery",
            PolicyDocument=json.dumps(policy),
        )
        return str(role["Arn"])

    # ------------------------------------------------------------------ (3) the connector
    def _connector(self, inp: WorkloadSecurityInput, role_arn: str) -> dict[str, Any]:
        search = {
            "maxItems": 1,
            "searchCriteria": [
                {"fieldName": "accountId", "stringValue": inp.account_id, "stringTest": "equal"}
            ],
        }
        found = self.ws.request("POST", "awsconnectors/search", json=search)["awsConnectors"]
        if found:
            return dict(found[0])
        created = self.ws.request(
            "POST",
            "awsconnectors",
            json={
                "displayName": inp.account_name,
                "accountId": inp.account_id,
                "crossAccountRoleArn": role_arn,
                "workspacesEnabled": False,
                "seedRegion": self.settings.regions[0],
            },
        )
        return dict(created)

    def _policy_id(self, name: str) -> int:
        search = {"searchCriteria": [{"fieldName": "name", "stringValue": name}]}
        policies = self.ws.request("POST", "policies/search", json=search)["policies"]
        match = next((p for p in policies if p["name"] == name), None)
        if match is None:
            raise final(f"Workload Security policy {name!r} does not exist", "PolicyNotFound")
        return int(match["ID"])

    # ------------------------------------------------------------------ (4) the agent
    def _secret(self, name: str) -> str:
        value = self.management_ssm.get_parameter(Name=name, WithDecryption=True)
        return str(value["Parameter"]["Value"])

    def _ensure_agent_association(self, account_id: str, region: str, policy_id: int) -> str:
        ssm = self.members.client(account_id, "ssm", region=region)
        s = self.settings
        # What the Distributor package reads on the instance (Trend's documented parameters).
        params = {
            "dsTenantId": (self._secret(s.tenant_id_parameter), "String"),
            "dsToken": (self._secret(s.activation_token_parameter), "SecureString"),
            "dsActivationUrl": (s.activation_url, "String"),
            "dsManagerUrl": (s.manager_url, "String"),
            "dsPolicyId": (str(policy_id), "String"),
        }
        for name, (value, kind) in params.items():
            ssm.put_parameter(Name=name, Value=value, Type=kind, Overwrite=True)
        existing = ssm.list_associations(
            AssociationFilterList=[{"key": "AssociationName", "value": s.association_name}]
        )["Associations"]
        parameters: dict[str, list[str]] = {}
        if s.agent_install != "script":
            parameters = {
                "action": ["Install"],
                "name": [s.distributor_package],
                "additionalArguments": [json.dumps({"SSM_DS_POLICY_ID": str(policy_id)})],
            }
        if existing:
            association = existing[0]
            # ListAssociations items carry no Parameters (the model's Association shape): ask
            # DescribeAssociation, or every enrollment would look like a change of policy.
            described = ssm.describe_association(AssociationId=association["AssociationId"])[
                "AssociationDescription"
            ]
            if parameters and described.get("Parameters") != parameters:
                # Another policy now (a rollout, an update): instances launched from here on
                # activate with it. A new version of the association, not a second one.
                ssm.update_association(
                    AssociationId=association["AssociationId"],
                    Parameters=parameters,
                    Targets=[{"Key": "InstanceIds", "Values": ["*"]}],
                    ScheduleExpression="rate(1 day)",
                )
            return str(association["AssociationId"])
        document = (
            self._script_document(ssm, policy_id)
            if s.agent_install == "script"
            else "AWS-ConfigureAWSPackage"
        )
        try:
            created = ssm.create_association(
                Name=document,
                AssociationName=s.association_name,
                Targets=[{"Key": "InstanceIds", "Values": ["*"]}],  # every instance, now and later
                Parameters=parameters,
                ScheduleExpression="rate(1 day)",
            )
        except ClientError as err:
            if error_code(err) != "AssociationAlreadyExists":
                raise
            # Made since we looked (an earlier attempt of this step still running when its
            # retry began): that one is ours; take it as the look would have.
            return self._ensure_agent_association(account_id, region, policy_id)
        return str(created["AssociationDescription"]["AssociationId"])

    def _script_document(self, ssm: Any, policy_id: int) -> str:
        """The deployment script (it embeds the token) stored as an SSM document in the account."""
        try:
            ssm.describe_document(Name=SCRIPT_DOCUMENT)
            return SCRIPT_DOCUMENT
        except ClientError as err:
            if error_code(err) != "InvalidDocument":
                raise
        script = self.ws.request(
            "POST",
            "agentdeploymentscripts",
            json={
                "platform": "linux",
                "activationRequired": True,
                "policyID": policy_id,
                "validateCertificateRequired": True,
            },
        )["scriptBody"]
        content = {
            "schemaVersion": "2.2",
            "description": "Install the Workload Security agent",
            "mainSteps": [
                {
                    "action": "aws:runShellScript",
                    "name": "install",
                    "inputs": {"runCommand": script.splitlines()},
                }
            ],
        }
        ssm.create_document(
            Name=SCRIPT_DOCUMENT,
            Content=json.dumps(content),
            DocumentType="Command",
            DocumentFormat="JSON",
        )
        return SCRIPT_DOCUMENT

    # ------------------------------------------------------------------ (5) the policy
    def _computers(self) -> list[dict[str, Any]]:
        found = self.ws.request("GET", "computers", params={"expand": "ec2VirtualMachineSummary"})
        return list(found.get("computers", []))

    def _assign_policy(
        self, account_id: str, policy_id: int, computers: list[dict[str, Any]] | None = None
    ) -> int:
        assigned = 0
        for computer in self._computers() if computers is None else computers:
            summary = computer.get("ec2VirtualMachineSummary") or {}
            if summary.get("accountID") != account_id or computer.get("policyID") == policy_id:
                continue
            self.ws.request(
                "POST", path("computers/{id}", id=computer["ID"]), json={"policyID": policy_id}
            )
            assigned += 1
        return assigned

    @activity.defn(no_thread_cancel_exception=True)
    def find_workload_security_policy(self, name: str) -> int:
        """The policy's id, or a non-retryable PolicyNotFound: a rollout's plan checks it."""
        return self._policy_id(name)

    @activity.defn(no_thread_cancel_exception=True)
    def apply_workload_security_policy(self, inp: ApplyPolicyInput) -> ApplyPolicyResult:
        """Give a wave of accounts another policy: on the computers Workload Security already
        has for them, and in the agent association (and its ``dsPolicyId``) that later
        installs read. Running it again changes nothing. An account that fails is reported with
        AWS's or Trend Micro's reason; the others go on."""
        policy_id = self._policy_id(inp.policy)
        computers = self._computers()  # once for the wave, not once per account
        failed: dict[str, str] = {}
        assigned = 0
        for account_id in inp.account_ids:
            beat(account_id)
            try:
                for region in self.settings.regions:
                    self._ensure_agent_association(account_id, region, policy_id)
                assigned += self._assign_policy(account_id, policy_id, computers)
            except ClientError as err:
                if is_transient(err):
                    raise  # the activity's retry asks again (it changes nothing twice)
                failed[account_id] = str(err)
            except ApplicationError as err:
                if not err.non_retryable:
                    raise
                failed[account_id] = err.message
        return ApplyPolicyResult(policy_id=policy_id, failed=failed, computers_assigned=assigned)

    @activity.defn(no_thread_cancel_exception=True)
    def remove_workload_security(self, inp: WorkloadSecurityInput) -> WorkloadSecurityResult:
        """Undo the enrollment (compensation): connector, agent associations, the role."""
        search = {
            "maxItems": 1,
            "searchCriteria": [
                {"fieldName": "accountId", "stringValue": inp.account_id, "stringTest": "equal"}
            ],
        }
        found = self.ws.request("POST", "awsconnectors/search", json=search)["awsConnectors"]
        for connector in found:
            self.ws.request("DELETE", path("awsconnectors/{id}", id=connector["ID"]))
        try:
            for region in self.settings.regions:
                ssm = self.members.client(inp.account_id, "ssm", region=region)
                existing = ssm.list_associations(
                    AssociationFilterList=[
                        {"key": "AssociationName", "value": self.settings.association_name}
                    ]
                )["Associations"]
                for assoc in existing:
                    ssm.delete_association(AssociationId=assoc["AssociationId"])
            iam = self.members.client(inp.account_id, "iam")
            name = self.settings.role_name
            if self.settings.role_source == "engine":
                try:
                    # Only the role the engine made: one a baseline StackSet deployed (same
                    # name) is its stack's to delete, and deleting it here would leave that
                    # stack unable to delete itself.
                    role = iam.get_role(RoleName=name)["Role"]
                    if role.get("Description") == ENGINE_ROLE_DESCRIPTION:
                        iam.delete_role_policy(
                            RoleName=name, PolicyName="workload-security-discovery"
                        )
                        iam.delete_role(RoleName=name)
                except ClientError as err:
                    if error_code(err) != "NoSuchEntity":
                        raise
        except ClientError as err:
            raise to_application_error(err, action="remove Workload Security") from err
        return WorkloadSecurityResult(
            connector_id=int(found[0]["ID"]) if found else 0,
            role_arn="",
            policy_id=0,
            associations=[],
            computers_assigned=0,
            detail=f"removed {len(found)} connector(s) and the agent association",
            attempt=activity.info().attempt,
        )
