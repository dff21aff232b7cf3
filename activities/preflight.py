"""``vend doctor``'s checks: is this organization ready for the first request? Read-only.

Each check asks the real API what it would need (never creating anything), says what it found
and, when it fails, the exact change that fixes it. All of them run at once; the slowest decides
how long the doctor takes. The worker runs them at start and holds back the steps whose
prerequisites failed; operators run them with ``vend doctor`` or ``GET /v1/landing-zone/health``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError
from temporalio import activity

from activities import quarantine_check
from activities.aws_clients import client as aws_client
from activities.billing import sunnypay_http
from activities.temporal_checks import temporal_readiness
from activities.workload_security import WorkloadSecurityClient
from common.codec import EncryptionCodec
from common.landing_zone import (
    EnrollmentStrategy,
    LandingZone,
    PermissionModel,
    StackSetBaseline,
    WorkloadSecurityRequirement,
)
from common.preflight import CheckResult, CheckStatus, PreflightReport
from common.settings import Settings

# What each organization-wide prerequisite holds back while it fails.
ORGANIZATIONS_STEPS = ["create_account", "move_to_ou"]
CONTROL_TOWER_STEPS = ["find_ou_baseline", "provision_account_factory", "reset_ou_baseline"]
REQUIRED_ACTIONS = files("activities").joinpath("required_actions.json")


class Failed(Exception):
    """A check's negative answer: what was found and how to fix it."""

    def __init__(self, found: str, fix: str, status: CheckStatus = CheckStatus.failed) -> None:
        super().__init__(found)
        self.found, self.fix, self.status = found, fix, status


def _aws_error(err: ClientError | BotoCoreError) -> str:
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', str(err))}"
    return str(err)


@dataclass
class Check:
    name: str
    title: str
    run: Callable[[], str]  # returns what it found; raises Failed
    gates: list[str] = field(default_factory=list)
    denied_fix: str = "grant the worker's role what deploy/iam/worker-policy.json lists"

    def __call__(self) -> CheckResult:
        started = time.monotonic()
        status, fix = CheckStatus.ok, None
        try:
            found = self.run()
        except Failed as failed:
            status, found, fix = failed.status, failed.found, failed.fix
        except (ClientError, BotoCoreError) as err:
            status, found, fix = CheckStatus.failed, _aws_error(err), self.denied_fix
        except httpx.HTTPError as err:
            status, found = CheckStatus.failed, f"unreachable: {err.__class__.__name__}: {err}"
            fix = "check the URL setting and that the network lets the worker reach it"
        return CheckResult(
            name=self.name,
            title=self.title,
            status=status,
            found=found,
            fix=fix,
            gates=self.gates,
            seconds=round(time.monotonic() - started, 3),
        )


@dataclass
class Preflight:
    """The checks, with the clients the worker uses (created once and passed in)."""

    settings: Settings
    landing_zone: LandingZone
    sts: Any
    organizations: Any
    controltower: Any
    servicecatalog: Any
    cloudformation: Any
    iam: Any
    ssm: Any
    sso_admin: Any
    workload_security: WorkloadSecurityClient
    billing_http: httpx.Client
    temporal: Any = None  # a temporalio Client; without one the Temporal checks are skipped
    _ous: dict[str, dict[str, str]] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # ------------------------------------------------------------------ running
    def checks(self) -> list[Check]:
        lz = self.landing_zone
        governed = any(
            lz.enrollment_for(ou) != EnrollmentStrategy.none
            for ou in lz.organizational_units
            if ou.open_for_vending
        )
        protected = any(
            ou.workload_security != WorkloadSecurityRequirement.off
            for ou in lz.organizational_units
            if ou.open_for_vending
        )
        out = [
            Check(
                "aws.identity",
                "The credentials are the management account's",
                self.identity,
                ORGANIZATIONS_STEPS,
            ),
            Check(
                "organizations.all_features",
                "Organizations has all features on",
                self.all_features,
                ORGANIZATIONS_STEPS,
            ),
            Check("organizations.ou_paths", "Every OU of the landing zone exists", self.ou_paths),
            Check(
                "organizations.trusted_access",
                "Trusted access for AWS Account Management is on (names, contacts, regions)",
                self.trusted_access,
            ),
            Check(
                "organizations.guardrails",
                "The SCPs the landing zone declares are attached",
                self.scps,
            ),
            Check(
                "organizations.quarantine_exemption",
                "The suspended OU's SCPs let the decommission finish after quarantine",
                self.quarantine_exemption,
                ["remove_workload_security", "remove_baselines", "unmanage_control_tower"],
            ),
            Check(
                "stacksets.baselines", "Every baseline StackSet exists as declared", self.stack_sets
            ),
            Check(
                "iam.permissions",
                "The worker's role may make every call the engine makes",
                self.permissions,
            ),
            Check(
                "sunnypay.api",
                "Sunny Pay answers and accepts the key",
                self.sunnypay,
                ["register_billing"],
            ),
            Check("codec.key", "Workflow payloads are encrypted", self.codec),
        ]
        if governed:
            out += [
                Check(
                    "controltower.landing_zone",
                    "Control Tower's landing zone is active",
                    self.landing_zone_status,
                    CONTROL_TOWER_STEPS,
                ),
                Check(
                    "controltower.ou_registration",
                    "Each governed OU is registered",
                    self.ou_registration,
                ),
                Check(
                    "controltower.enrollment",
                    "The enrollment strategies' prerequisites hold",
                    self.enrollment_prerequisites,
                ),
                Check(
                    "controltower.controls",
                    "The controls the landing zone declares are on",
                    self.controls,
                ),
            ]
        if any(lz.settings_for(ou).access is not None for ou in lz.organizational_units):
            out.append(
                Check(
                    "identity_center.permission_sets",
                    "Identity Center is on and has the landing zone's permission sets",
                    self.permission_sets,
                    ["assign_access"],
                )
            )
        if protected:
            out += [
                Check(
                    "workload_security.api",
                    "Workload Security answers and accepts the key",
                    self.workload_security_api,
                    ["enroll_workload_security"],
                ),
                Check(
                    "ssm.agent_parameters",
                    "The agent's tenant id and token are in Parameter Store",
                    self.agent_parameters,
                    ["enroll_workload_security"],
                ),
            ]
        return out

    async def run(self, only: set[str] | None = None) -> PreflightReport:
        """Every check at once (each blocking one in a thread), the Temporal ones on the loop."""
        checks = [c for c in self.checks() if only is None or c.name in only]
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=max(1, len(checks))) as pool:
            futures = [loop.run_in_executor(pool, check) for check in checks]
            temporal: list[CheckResult] = []
            if self.temporal is not None and (only is None or "temporal.namespace" in only):
                temporal = await temporal_readiness(self.temporal, self.settings.temporal)
            results = list(await asyncio.gather(*futures)) + temporal
        return PreflightReport(checked_at=datetime.now(UTC), checks=results)

    @activity.defn(no_thread_cancel_exception=True)
    async def run_preflight(self) -> PreflightReport:
        return await self.run()

    # ------------------------------------------------------------------ Organizations
    def _organization(self) -> dict[str, Any]:
        try:
            org: dict[str, Any] = self.organizations.describe_organization()["Organization"]
        except ClientError as err:
            if err.response["Error"]["Code"] == "AWSOrganizationsNotInUseException":
                raise Failed(
                    "this account is in no organization",
                    "create the organization (aws organizations create-organization "
                    "--feature-set ALL) or use the management account's credentials",
                ) from err
            raise
        return org

    def identity(self) -> str:
        caller = self.sts.get_caller_identity()
        org = self._organization()
        account, management = caller["Account"], org["MasterAccountId"]
        if account == management:
            return f"account {account} (the management account) as {caller['Arn']}"
        raise Failed(
            f"account {account} is not the management account ({management})",
            f"run the worker with credentials of account {management}: CreateAccount, "
            "CloseAccount and member accounts' budgets are the management account's alone (a "
            "delegated administrator cannot make accounts)",
        )

    def trusted_access(self) -> str:
        enabled = {
            s["ServicePrincipal"]
            for page in self.organizations.get_paginator(
                "list_aws_service_access_for_organization"
            ).paginate()
            for s in page["EnabledServicePrincipals"]
        }
        if "account.amazonaws.com" not in enabled:
            raise Failed(
                "trusted access for AWS Account Management is off: renames, alternate contacts "
                "and opt-in regions of member accounts would be refused",
                "aws organizations enable-aws-service-access "
                "--service-principal account.amazonaws.com",
            )
        return "account.amazonaws.com trusted"

    def permission_sets(self) -> str:
        instances = self.sso_admin.list_instances()["Instances"]
        if not instances:
            raise Failed(
                "IAM Identity Center is not enabled in this organization",
                "enable IAM Identity Center in the management account (console: IAM Identity "
                "Center, Enable)",
            )
        arn = instances[0]["InstanceArn"]
        have = {
            self.sso_admin.describe_permission_set(InstanceArn=arn, PermissionSetArn=ps)[
                "PermissionSet"
            ]["Name"]
            for page in self.sso_admin.get_paginator("list_permission_sets").paginate(
                InstanceArn=arn
            )
            for ps in page["PermissionSets"]
        }
        lz = self.landing_zone
        wanted = {
            name
            for ou in lz.organizational_units
            if (access := lz.settings_for(ou).access) is not None
            for name in access.permission_sets
        }
        missing = sorted(wanted - have)
        if missing:
            raise Failed(
                f"permission sets missing from Identity Center: {', '.join(missing)}",
                " ; ".join(
                    f"aws sso-admin create-permission-set --instance-arn {arn} --name {name}"
                    for name in missing
                ),
            )
        return f"{len(wanted)} permission set(s) in {arn}"

    def all_features(self) -> str:
        org = self._organization()
        if org.get("FeatureSet") != "ALL":
            raise Failed(
                f"feature set {org.get('FeatureSet')}",
                "enable all features: aws organizations enable-all-features (then accept the "
                "handshake in every member account)",
            )
        return f"organization {org['Id']}: all features"

    def ous(self) -> dict[str, dict[str, str]]:
        """Every OU path of the organization -> its id and ARN (walked once, then kept)."""
        with self._lock:
            return self._walk()

    def _walk(self) -> dict[str, dict[str, str]]:
        if self._ous is None:
            root = self.organizations.list_roots()["Roots"][0]
            found = {"": {"Id": root["Id"], "Arn": root["Arn"]}}
            todo = [("", root["Id"])]
            while todo:
                path, parent = todo.pop()
                for page in self.organizations.get_paginator(
                    "list_organizational_units_for_parent"
                ).paginate(ParentId=parent):
                    for ou in page["OrganizationalUnits"]:
                        child = f"{path}/{ou['Name']}".strip("/")
                        found[child] = {"Id": ou["Id"], "Arn": ou["Arn"]}
                        todo.append((child, ou["Id"]))
            self._ous = found
        return self._ous

    def ou_paths(self) -> str:
        lz, ous = self.landing_zone, self.ous()
        wanted = [*lz.all_paths(), lz.suspended_ou]
        missing = [p for p in dict.fromkeys(wanted) if p not in ous]
        if missing:
            fixes = []
            for path in missing:
                parent, _, name = path.rpartition("/")
                parent_id = ous.get(parent, {}).get("Id", f"<id of {parent}>")
                fixes.append(
                    f"aws organizations create-organizational-unit --parent-id {parent_id} "
                    f"--name {name}"
                )
            raise Failed(f"missing: {', '.join(missing)}", "; ".join(fixes))
        open_ = sum(1 for ou in lz.organizational_units if ou.open_for_vending)
        closed = len(lz.organizational_units) - open_
        return f"{len(wanted)} OUs found ({open_} open for vending, {closed} closed)"

    def scps(self) -> str:
        lz, ous = self.landing_zone, self.ous()
        wanted = [
            (ou.path, ou.guardrails.service_control_policies) for ou in lz.organizational_units
        ]
        wanted.append((lz.suspended_ou, lz.suspended_ou_guardrails.service_control_policies))
        missing, checked = [], 0
        for path, names in wanted:
            if not names or path not in ous:
                continue
            attached = {
                p["Name"]
                for page in self.organizations.get_paginator("list_policies_for_target").paginate(
                    TargetId=ous[path]["Id"], Filter="SERVICE_CONTROL_POLICY"
                )
                for p in page["Policies"]
            }
            checked += len(names)
            missing += [(path, n) for n in names if n not in attached]
        if missing:
            raise Failed(
                "not attached: " + ", ".join(f"{n} on {p}" for p, n in missing),
                "; ".join(
                    f"aws organizations attach-policy --policy-id <id of {n}> --target-id "
                    f"{ous[p]['Id']}"
                    for p, n in missing
                ),
            )
        return f"{checked} SCP attachments in force" if checked else "none declared"

    def quarantine_exemption(self) -> str:
        lz, ous = self.landing_zone, self.ous()
        if lz.suspended_ou not in ous:
            raise Failed(f"no OU {lz.suspended_ou}", "see organizations.ou_paths")
        member = self.settings.aws.member_role_name
        roles = self._stack_set_execution_roles()
        refused = quarantine_check.refused_after_quarantine(
            self.organizations, ous, lz.suspended_ou, member, roles
        )
        if refused:
            raise Failed("; ".join(refused), quarantine_check.fix_for(member, roles))
        exempt = ", ".join([member, quarantine_check.CONTROL_TOWER_EXECUTION_ROLE, *roles])
        return f"{lz.suspended_ou}'s SCPs let {exempt} act in a suspended account"

    def _stack_set(self, baseline: StackSetBaseline) -> dict[str, Any] | None:
        """The baseline's StackSet as CloudFormation describes it; None when it does not exist."""
        try:
            found: dict[str, Any] = self.cloudformation.describe_stack_set(
                StackSetName=baseline.stack_set_name, CallAs=baseline.call_as
            )["StackSet"]
        except ClientError as err:
            if err.response["Error"]["Code"] != "StackSetNotFoundException":
                raise
            return None
        return found

    def _stack_set_execution_roles(self) -> list[str]:
        """The execution roles of the self-managed baseline StackSets (those that exist)."""
        roles: set[str] = set()
        for baseline in self.landing_zone.baselines.values():
            if baseline.permission_model != PermissionModel.SELF_MANAGED:
                continue
            found = self._stack_set(baseline)
            if found is None:
                continue  # stacksets.baselines says so
            roles.add(found.get("ExecutionRoleName") or quarantine_check.STACK_SET_EXECUTION_ROLE)
        return sorted(roles)

    # ------------------------------------------------------------------ Control Tower
    def landing_zone_status(self) -> str:
        zones = self.controltower.list_landing_zones().get("landingZones", [])
        if not zones:
            raise Failed(
                "no Control Tower landing zone",
                "set up Control Tower (landing zone 3.x) in the management account, or mark the "
                "OUs control_tower_enrollment: none",
            )
        zone = self.controltower.get_landing_zone(landingZoneIdentifier=zones[0]["arn"])[
            "landingZone"
        ]
        status, drift = zone.get("status"), zone.get("driftStatus", {}).get("status")
        if status != "ACTIVE":
            raise Failed(
                f"landing zone {zone.get('version')} is {status}",
                "wait for it to finish, or repair it: Control Tower console → Landing zone "
                "settings → Repair",
            )
        if drift == "DRIFTED":
            raise Failed(
                f"landing zone {zone.get('version')} is ACTIVE but has drifted",
                "repair it: Control Tower console → Landing zone settings → Repair",
                CheckStatus.warning,
            )
        return f"landing zone {zone.get('version')} ACTIVE"

    def _governed(self) -> list[tuple[str, EnrollmentStrategy]]:
        lz = self.landing_zone
        return [
            (ou.path, lz.enrollment_for(ou))
            for ou in lz.organizational_units
            if ou.open_for_vending and lz.enrollment_for(ou) != EnrollmentStrategy.none
        ]

    def _baseline_status(self, ou_arn: str, baseline_arn: str) -> str | None:
        found = self.controltower.list_enabled_baselines(
            filter={"targetIdentifiers": [ou_arn]}
        ).get("enabledBaselines", [])
        ct = [b for b in found if b.get("baselineIdentifier") == baseline_arn]
        return str(ct[0]["statusSummary"]["status"]) if ct else None

    def _control_tower_baseline(self) -> str:
        """AWSControlTowerBaseline's ARN in this region (its name is not in the ARN)."""
        for page in self.controltower.get_paginator("list_baselines").paginate():
            for baseline in page["baselines"]:
                if baseline.get("name") == "AWSControlTowerBaseline":
                    return str(baseline["arn"])
        raise Failed(
            "Control Tower offers no AWSControlTowerBaseline here",
            "update the landing zone to 3.x (baselines need it)",
        )

    def ou_registration(self) -> str:
        ous, problems = self.ous(), []
        governed = self._governed()
        baseline_arn = self._control_tower_baseline()
        for path, _ in governed:
            if path not in ous:
                continue  # the OU paths check says so
            status = self._baseline_status(ous[path]["Arn"], baseline_arn)
            if status != "SUCCEEDED":
                problems.append((path, status))
        if problems:
            raise Failed(
                "; ".join(
                    f"{p} is not registered" if s is None else f"{p}: baseline {s}"
                    for p, s in problems
                ),
                "; ".join(
                    f"register {p}: Control Tower console → Organization → {p} → Register OU"
                    if s is None
                    else f"re-register {p}: Control Tower console → Organization → {p} → "
                    "Re-register OU"
                    for p, s in problems
                ),
            )
        return f"{len(governed)} governed OUs registered (AWSControlTowerBaseline)"

    def enrollment_prerequisites(self) -> str:
        strategies = {s for _, s in self._governed()}
        said = []
        if EnrollmentStrategy.account_factory in strategies:
            product = self.landing_zone.control_tower.account_factory_product
            found = self.servicecatalog.search_products(Filters={"FullTextSearch": [product]}).get(
                "ProductViewSummaries", []
            )
            match = next((p for p in found if p.get("Name") == product), None)
            if match is None:
                raise Failed(
                    f"Service Catalog product {product!r} is not available to the worker's role",
                    "share the Account Factory portfolio with it: Service Catalog → Portfolios → "
                    "AWS Control Tower Account Factory Portfolio → Access → Grant access",
                )
            artifacts = self.servicecatalog.list_provisioning_artifacts(
                ProductId=match["ProductId"]
            ).get("ProvisioningArtifactDetails", [])
            if not any(a.get("Active") for a in artifacts):
                raise Failed(
                    f"{product!r} has no active version",
                    "repair the landing zone (Control Tower re-publishes Account Factory)",
                )
            said.append(f"Account Factory product {match['ProductId']} shared")
        if EnrollmentStrategy.auto_enroll in strategies:
            said.append(self._auto_enrollment_on())
        if strategies & {EnrollmentStrategy.baseline_reset, EnrollmentStrategy.auto_enroll}:
            said.append("OU baselines: see controltower.ou_registration")
        return "; ".join(said) or "nothing to check"

    def _auto_enrollment_on(self) -> str:
        """Auto-enrollment is the landing zone's (3.1 or later) remediation of inheritance
        drift, not an OU's: without it an account moved into an OU stays unenrolled."""
        zones = self.controltower.list_landing_zones().get("landingZones", [])
        zone = (
            self.controltower.get_landing_zone(landingZoneIdentifier=zones[0]["arn"])["landingZone"]
            if zones
            else {}
        )
        if "INHERITANCE_DRIFT" not in zone.get("remediationTypes", []):
            ous = [p for p, s in self._governed() if s == EnrollmentStrategy.auto_enroll]
            raise Failed(
                f"{', '.join(ous)} rely on auto-enrollment, but the landing zone "
                f"{zone.get('arn', '')} does not remediate inheritance drift (remediationTypes "
                f"{zone.get('remediationTypes', [])})",
                "aws controltower update-landing-zone --landing-zone-identifier <arn> "
                "--version <its version> --manifest file://<its manifest> "
                "--remediation-types INHERITANCE_DRIFT (landing zone 3.1 or later)",
            )
        return "the landing zone auto-enrolls accounts moved into registered OUs"

    def controls(self) -> str:
        ous, missing, checked = self.ous(), [], 0
        for ou in self.landing_zone.organizational_units:
            declared = ou.guardrails.controls
            if not declared or ou.path not in ous:
                continue
            try:
                enabled = {
                    c["controlIdentifier"].rsplit("/", 1)[-1]
                    for page in self.controltower.get_paginator("list_enabled_controls").paginate(
                        targetIdentifier=ous[ou.path]["Arn"]
                    )
                    for c in page["enabledControls"]
                    if c.get("statusSummary", {}).get("status") == "SUCCEEDED"
                }
            except ClientError as err:
                if err.response["Error"]["Code"] == "ResourceNotFoundException":
                    missing += [(ou.path, c) for c in declared]  # unregistered: none in force
                    continue
                raise
            checked += len(declared)
            missing += [(ou.path, c) for c in declared if c not in enabled]
        if missing:
            region = self.settings.aws.region
            raise Failed(
                "not in force: " + ", ".join(f"{c} on {p}" for p, c in missing),
                "; ".join(
                    f"aws controltower enable-control --control-identifier "
                    f"arn:aws:controltower:{region}::control/{c} --target-identifier "
                    f"{ous[p]['Arn']}"
                    for p, c in missing
                ),
            )
        return f"{checked} controls in force" if checked else "none declared"

    # ------------------------------------------------------------------ StackSets, IAM
    def stack_sets(self) -> str:
        lz = self.landing_zone
        used = {
            name for ou in lz.organizational_units if ou.open_for_vending for name in ou.baselines
        }
        problems, fixes = [], []
        for name in sorted(used):
            baseline = lz.baselines[name]
            found = self._stack_set(baseline)
            if found is None:
                problems.append(f"{baseline.stack_set_name} does not exist")
                fixes.append(
                    f"aws cloudformation create-stack-set --stack-set-name "
                    f"{baseline.stack_set_name} --permission-model "
                    f"{baseline.permission_model.value} --call-as {baseline.call_as} "
                    "--template-body file://<its template>"
                )
                continue
            model = found.get("PermissionModel", "SELF_MANAGED")
            if model != baseline.permission_model.value:
                problems.append(
                    f"{baseline.stack_set_name} is {model}, the landing zone says "
                    f"{baseline.permission_model.value}"
                )
                fixes.append(
                    f"set permission_model: {model} on baseline {name} in the landing zone"
                )
        if problems:
            raise Failed("; ".join(problems), "; ".join(fixes))
        return f"{len(used)} baseline StackSets found as declared"

    def permissions(self) -> str:
        caller = self.sts.get_caller_identity()["Arn"]
        principal = caller
        if ":assumed-role/" in caller:  # simulate the role, not the session
            role = caller.split(":assumed-role/", 1)[1].split("/", 1)[0]
            principal = self.iam.get_role(RoleName=role)["Role"]["Arn"]
        actions: list[str] = json.loads(REQUIRED_ACTIONS.read_text())["management"]
        denied = []
        for start in range(0, len(actions), 100):
            result = self.iam.simulate_principal_policy(
                PolicySourceArn=principal, ActionNames=actions[start : start + 100]
            )
            denied += [
                r["EvalActionName"]
                for r in result["EvaluationResults"]
                if r["EvalDecision"] != "allowed"
            ]
        if denied:
            raise Failed(
                f"{principal} may not: {', '.join(denied)}",
                f"add {', '.join(denied)} to the worker's role (deploy/iam/worker-policy.json "
                "lists every action; deploy/iam/worker-role.cfn.json makes the role)",
            )
        return f"{principal} may make all {len(actions)} calls"

    # ------------------------------------------------------------------ vendors
    def workload_security_api(self) -> str:
        ws = self.settings.workload_security
        if ws.api_key is None:
            raise Failed(
                "no API key configured",
                "set VEND_WORKLOAD_SECURITY__API_KEY (Cloud One → Administration → API Keys)",
            )
        resp = self.workload_security.http.get("awsconnectorsettings", timeout=10)
        if resp.status_code in (401, 403):
            raise Failed(
                f"the key was refused ({resp.status_code})",
                "create a key whose role may manage AWS connectors and computers, and set "
                "VEND_WORKLOAD_SECURITY__API_KEY to it",
            )
        if resp.status_code >= 400:
            raise Failed(
                f"{ws.base_url} answered {resp.status_code}",
                "check VEND_WORKLOAD_SECURITY__BASE_URL (your region's /api URL)",
            )
        external_id = resp.json().get("externalId")
        stated = {
            name: b.parameters["ExternalId"]
            for name, b in self.landing_zone.baselines.items()
            if "ExternalId" in b.parameters
        }
        if ws.role_source == "stackset":
            wrong = [n for n, v in stated.items() if v != external_id]
            if wrong:
                raise Failed(
                    f"baseline {', '.join(wrong)} sets ExternalId other than the tenant's",
                    f"set ExternalId: {external_id} on {', '.join(wrong)} in the landing zone",
                )
        return f"{ws.base_url} accepts the key; tenant external id known"

    def agent_parameters(self) -> str:
        ws = self.settings.workload_security
        names = [ws.tenant_id_parameter, ws.activation_token_parameter]
        found = {
            p["Name"]
            for page in self.ssm.get_paginator("describe_parameters").paginate(
                ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": names}]
            )
            for p in page["Parameters"]
        }
        missing = [n for n in names if n not in found]
        if missing:
            raise Failed(
                f"missing: {', '.join(missing)}",
                "; ".join(
                    f"aws ssm put-parameter --name {n} --type SecureString --value <from Cloud "
                    "One → Support → Deployment Scripts>"
                    for n in missing
                ),
            )
        return f"{len(names)} parameters present (values not read)"

    def sunnypay(self) -> str:
        billing = self.settings.billing
        if billing.api_key is None:
            raise Failed("no API key configured", "set VEND_BILLING__API_KEY")
        resp = self.billing_http.get("/v1/customers/vend-doctor-probe", timeout=10)
        if resp.status_code in (401, 403):
            raise Failed(
                f"the key was refused ({resp.status_code})",
                "set VEND_BILLING__API_KEY to a key Sunny Pay issued for this reseller",
            )
        if resp.status_code not in (200, 404):
            raise Failed(
                f"{billing.base_url} answered {resp.status_code}",
                "check VEND_BILLING__BASE_URL",
            )
        return f"{billing.base_url} accepts the key"

    def codec(self) -> str:
        codec = EncryptionCodec.from_settings(self.settings.codec)
        if codec is None:
            raise Failed(
                "no payload key: requests would be stored in Temporal in clear",
                'set VEND_CODEC__KEYS=\'{"2026-12": "<key>"}\' and VEND_CODEC__ACTIVE_KEY_ID '
                '(python -c "import base64,os;print(base64.b64encode(os.urandom(32)).decode())")',
            )
        return f"AES-256-GCM, {len(self.settings.codec.keys)} key(s)"


def preflight_from_settings(
    settings: Settings, landing_zone: LandingZone, temporal: Any = None
) -> Preflight:
    """The checks with clients made the way the worker makes its own (same credentials chain,
    same endpoints), so what the doctor says is what the worker will meet."""
    aws = settings.aws
    return Preflight(
        settings=settings,
        landing_zone=landing_zone,
        sts=aws_client("sts", aws),
        organizations=aws_client("organizations", aws),
        controltower=aws_client("controltower", aws),
        servicecatalog=aws_client("servicecatalog", aws),
        cloudformation=aws_client("cloudformation", aws),
        iam=aws_client("iam", aws),
        ssm=aws_client("ssm", aws),
        sso_admin=aws_client("sso-admin", aws),
        workload_security=WorkloadSecurityClient(settings.workload_security),
        billing_http=sunnypay_http(settings.billing),
        temporal=temporal,
    )
