"""AWS Control Tower enrollment: Account Factory, OU baseline reset, or auto-enrollment.

Each activity looks before it acts (an enrolled account, a provisioned product with our name, a
running operation are adopted) and heartbeats the id of what it waits on, so a retry after a
crash resumes the same operation instead of starting another.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.aws_errors import final, to_application_error
from activities.execution_roles import ensure_admin_role
from activities.heartbeats import beat
from activities.member_accounts import MemberAccountAccess
from activities.waiting import until

CONTROL_TOWER_BASELINE_NAME = "AWSControlTowerBaseline"
EXECUTION_ROLE = "AWSControlTowerExecution"
# Service Catalog record error codes that say "too many at once": retried, not parked.
QUOTA_CODES = frozenset({"ServiceQuotaExceededException", "LimitExceededException"})
_NAMESPACE = uuid.UUID("0b8e1f3c-52a4-4c1e-9a9f-7f2d7e0c6a11")


class OuBaselineInput(BaseModel):
    ou_id: str


class OuBaselineResult(BaseModel):
    ou_arn: str
    enabled_baseline_arn: str


class AccountInput(BaseModel):
    account_id: str


class EnrollmentStatus(BaseModel):
    status: str  # NOT_ENROLLED | UNDER_CHANGE | SUCCEEDED | FAILED
    enabled_baseline_arn: str | None = None
    last_operation: str | None = None


class WaitEnrollmentInput(BaseModel):
    account_id: str
    timeout_seconds: float


class ResetInput(BaseModel):
    enabled_baseline_arn: str


class OperationResult(BaseModel):
    operation_id: str
    status: str
    message: str | None = None


class EnsureRoleResult(BaseModel):
    created: bool


class AccountFactoryInput(BaseModel):
    request_id: str
    account_id: str
    account_name: str
    account_email: str
    ou_name: str
    ou_id: str
    sso_user_email: str
    product_name: str
    run: int = 1  # which run of the step (operator retries): a new run may need a new token


class AccountFactoryResult(BaseModel):
    provisioned_product_name: str
    record_id: str
    adopted: bool
    attempt: int = 1


class UnmanageInput(BaseModel):
    request_id: str
    account_id: str


class UnmanageResult(BaseModel):
    record_id: str | None  # None: no Account Factory product held the account any more
    detail: str
    attempt: int = 1


class EnrollResult(BaseModel):
    strategy: str
    detail: str
    attempt: int = 1


def enrollment_status(eb: dict[str, Any]) -> str:
    """An enabled baseline's status as the engine reads an enrollment: DRIFTED when Control
    Tower has it SUCCEEDED but the account was enrolled through another OU than the one it is in
    now (it was moved), and must be enrolled again through its new OU."""
    status = str(eb.get("statusSummary", {}).get("status", "UNDER_CHANGE"))
    drift = eb.get("driftStatusSummary", {}).get("types", {}).get("inheritance", {})
    if status == "SUCCEEDED" and drift.get("status") == "DRIFTED":
        return "DRIFTED"
    return status


@dataclass
class ControlTowerActivities:
    controltower: Any
    servicecatalog: Any
    organizations: Any
    members: MemberAccountAccess
    poll_interval_seconds: float = 30.0
    _baseline_arn: str | None = field(default=None, init=False, repr=False)

    # ------------------------------------------------------------------ lookups
    def ou_arn(self, ou_id: str) -> str:
        ou = self.organizations.describe_organizational_unit(OrganizationalUnitId=ou_id)
        return str(ou["OrganizationalUnit"]["Arn"])

    def _account_arn(self, account_id: str) -> str:
        return str(self.organizations.describe_account(AccountId=account_id)["Account"]["Arn"])

    def _enabled_baselines(self, target_arn: str) -> list[dict[str, Any]]:
        """The target's enabled AWSControlTowerBaseline(s): an OU in landing zone 4.0 carries
        ConfigBaseline and IdentityCenterBaseline too, listed in no promised order, and an
        account's is a child of its OU's, listed only with ``includeChildren``."""
        wanted = self._control_tower_baseline_arn()
        out: list[dict[str, Any]] = []
        paginator = self.controltower.get_paginator("list_enabled_baselines")
        pages = paginator.paginate(filter={"targetIdentifiers": [target_arn]}, includeChildren=True)
        for page in pages:
            out.extend(
                eb
                for eb in page["enabledBaselines"]
                if eb.get("targetIdentifier", target_arn) == target_arn
                and eb.get("baselineIdentifier") == wanted
            )
        return out

    def _control_tower_baseline_arn(self) -> str:
        """AWSControlTowerBaseline's ARN in this region (its name is not in the ARN)."""
        if self._baseline_arn is None:
            for page in self.controltower.get_paginator("list_baselines").paginate():
                for baseline in page["baselines"]:
                    if baseline.get("name") == CONTROL_TOWER_BASELINE_NAME:
                        self._baseline_arn = str(baseline["arn"])
            if self._baseline_arn is None:
                raise final(
                    f"Control Tower lists no {CONTROL_TOWER_BASELINE_NAME}: is the landing zone "
                    "set up in this region?",
                    "ControlTowerBaselineMissing",
                )
        return self._baseline_arn

    @activity.defn(no_thread_cancel_exception=True)
    def find_ou_baseline(self, inp: OuBaselineInput) -> OuBaselineResult:
        """The OU's enabled AWSControlTowerBaseline; an unregistered OU fails the step."""
        try:
            ou_arn = self.ou_arn(inp.ou_id)
            for eb in self._enabled_baselines(ou_arn):
                if eb.get("parentIdentifier"):
                    continue
                return OuBaselineResult(ou_arn=ou_arn, enabled_baseline_arn=eb["arn"])
        except ClientError as err:
            raise to_application_error(err, action="ListEnabledBaselines") from err
        raise final(
            f"OU {inp.ou_id} is not registered with AWS Control Tower (no enabled "
            f"{CONTROL_TOWER_BASELINE_NAME}); register it in the Control Tower console first",
            "OuNotRegistered",
        )

    def enrollment_of(self, account_id: str) -> EnrollmentStatus:
        """The account's enrollment as Control Tower reports it (boto3 errors raised as such)."""
        return self._enrollment(account_id)

    def _enrollment(self, account_id: str) -> EnrollmentStatus:
        return self.enrollment_of_arn(self._account_arn(account_id))

    def enrollment_of_arn(self, account_arn: str) -> EnrollmentStatus:
        """As ``enrollment_of``, for an account whose ARN is known (a call fewer)."""
        for eb in self._enabled_baselines(account_arn):
            return EnrollmentStatus(
                status=enrollment_status(eb),
                enabled_baseline_arn=eb["arn"],
                last_operation=eb.get("statusSummary", {}).get("lastOperationIdentifier"),
            )
        return EnrollmentStatus(status="NOT_ENROLLED")

    def enrollments_through(self, ou_arn: str) -> dict[str, str]:
        """Every account enrolled through the OU (its enabled baseline's children), by account
        ARN, with its enrollment status: a page of a hundred per call, where asking of each
        account would cost two calls (its ARN, its enabled baseline)."""
        wanted = self._control_tower_baseline_arn()
        out: dict[str, str] = {}
        pages = self.controltower.get_paginator("list_enabled_baselines").paginate(
            filter={"targetIdentifiers": [ou_arn]},
            includeChildren=True,
            PaginationConfig={"PageSize": 100},
        )
        for page in pages:
            for eb in page["enabledBaselines"]:
                target = str(eb.get("targetIdentifier", ""))
                if eb.get("baselineIdentifier") == wanted and ":account/" in target:
                    out[target] = enrollment_status(eb)
        return out

    @activity.defn(no_thread_cancel_exception=True)
    def account_enrollment(self, inp: AccountInput) -> EnrollmentStatus:
        try:
            return self._enrollment(inp.account_id)
        except ClientError as err:
            raise to_application_error(err, action="ListEnabledBaselines") from err

    # ------------------------------------------------------------------ auto-enroll / verify
    @activity.defn(no_thread_cancel_exception=True)
    def wait_for_enrollment(self, inp: WaitEnrollmentInput) -> EnrollResult:
        """Wait until Control Tower shows the account enrolled, within a deadline kept across
        retries (the first attempt's start is heartbeated)."""
        info = activity.info()
        started = float(info.heartbeat_details[0]) if info.heartbeat_details else time.time()
        beat(started)
        try:
            status = until(
                lambda: self._enrollment(inp.account_id),
                lambda s: (
                    s.status in ("SUCCEEDED", "FAILED")
                    or time.time() - started > inp.timeout_seconds
                ),
                self.poll_interval_seconds,
                waiting_for=f"enrollment of {inp.account_id}",
            )
            if status.status == "SUCCEEDED":
                return EnrollResult(strategy="verified", detail="enrolled", attempt=info.attempt)
            if status.status == "FAILED":
                raise final(
                    f"Control Tower enrollment of {inp.account_id} failed: "
                    f"{self._operation_message(status.last_operation)}",
                    "EnrollmentFailed",
                )
            raise final(
                f"account {inp.account_id} was not enrolled within "
                f"{inp.timeout_seconds:.0f}s (last status {status.status})",
                "EnrollmentTimeout",
            )
        except ClientError as err:
            raise to_application_error(err, action="ListEnabledBaselines") from err

    def _operation_message(self, operation_id: str | None) -> str:
        if not operation_id:
            return "no operation recorded"
        op = self.controltower.get_baseline_operation(operationIdentifier=operation_id)
        return str(op["baselineOperation"].get("statusMessage") or "no reason given")

    # ------------------------------------------------------------------ baseline reset (OU op)
    @activity.defn(no_thread_cancel_exception=True)
    def reset_ou_baseline(self, inp: ResetInput) -> OperationResult:
        """ResetEnabledBaseline on an OU and wait for it: enrolls every account in the OU."""
        info = activity.info()
        try:
            if info.heartbeat_details:
                operation_id = str(info.heartbeat_details[0])
            else:
                operation_id = (
                    self._running_reset(inp.enabled_baseline_arn)
                    or (
                        self.controltower.reset_enabled_baseline(
                            enabledBaselineIdentifier=inp.enabled_baseline_arn
                        )["operationIdentifier"]
                    )
                )
            beat(operation_id)
            op = until(
                lambda: self.controltower.get_baseline_operation(operationIdentifier=operation_id)[
                    "baselineOperation"
                ],
                lambda o: o["status"] in ("SUCCEEDED", "FAILED"),
                self.poll_interval_seconds,
                waiting_for=f"Control Tower operation {operation_id}",
            )
            return OperationResult(
                operation_id=operation_id, status=op["status"], message=op.get("statusMessage")
            )
        except ClientError as err:
            raise to_application_error(err, action="ResetEnabledBaseline") from err

    def _running_reset(self, enabled_baseline_arn: str) -> str | None:
        """The operation already changing this OU's baseline, if any.

        A heartbeat can be lost: the SDK sends the first one at once and holds later ones for
        most of the heartbeat timeout, so a worker killed just after ResetEnabledBaseline leaves
        a retry with no operation id. Starting another reset would then fail with a conflict, or
        run the whole OU again; adopting the operation is what the first attempt would have done.
        Only the coordinator resets OUs, so a reset that is still running, or that started after
        this activity was first scheduled, was started by an earlier attempt of it.
        """
        details = self.controltower.get_enabled_baseline(
            enabledBaselineIdentifier=enabled_baseline_arn
        )["enabledBaselineDetails"]
        summary = details.get("statusSummary", {})
        last = summary.get("lastOperationIdentifier")
        if not last:
            return None
        if summary.get("status") == "UNDER_CHANGE":
            return str(last)
        operation = self.controltower.get_baseline_operation(operationIdentifier=last)
        started = operation["baselineOperation"].get("startTime")
        if started is not None and started >= activity.info().scheduled_time:
            return str(last)
        return None

    # ------------------------------------------------------------------ Account Factory
    @activity.defn(name="ensure_control_tower_execution_role", no_thread_cancel_exception=True)
    def ensure_execution_role(self, inp: AccountInput) -> EnsureRoleResult:
        """Enrolling an existing account needs AWSControlTowerExecution (admin, trusting the
        management account); create it through OrganizationAccountAccessRole when missing."""
        try:
            iam = self.members.client(inp.account_id, "iam")
            management = self.members.management_account_id()
            created = ensure_admin_role(
                iam,
                EXECUTION_ROLE,
                f"arn:aws:iam::{management}:root",
                "Lets AWS Control Tower manage this account",
            )
        except ClientError as err:
            raise to_application_error(err, action="CreateRole AWSControlTowerExecution") from err
        return EnsureRoleResult(created=created)

    @activity.defn(no_thread_cancel_exception=True)
    def provision_account_factory(self, inp: AccountFactoryInput) -> AccountFactoryResult:
        info = activity.info()
        name = f"vend-{inp.account_name}"
        try:
            record_id = str(info.heartbeat_details[0]) if info.heartbeat_details else None
            adopted = record_id is not None
            if record_id is None:
                record_id, adopted, failed = self._existing_record(name)
                for product in failed:  # AWS keeps a failed product's name until terminated
                    self._terminate_failed(inp, product)
            if record_id is None:
                record_id = self._provision(inp, name, attempt=info.attempt)
            self._wait_for_record(record_id, "Account Factory provisioning")
        except ClientError as err:
            raise to_application_error(err, action="ProvisionProduct") from err
        return AccountFactoryResult(
            provisioned_product_name=name,
            record_id=record_id,
            adopted=adopted,
            attempt=info.attempt,
        )

    @activity.defn(no_thread_cancel_exception=True)
    def unmanage_account_factory(self, inp: UnmanageInput) -> UnmanageResult:
        """Terminate the account's Account Factory provisioned product (Control Tower's
        "unmanage"; the account is not closed). Found by the account id, not the name, which a
        rename does not change in Service Catalog; none left means it is done already."""
        info = activity.info()
        try:
            record_id = str(info.heartbeat_details[0]) if info.heartbeat_details else None
            if record_id is None:
                product = self._product_of(inp.account_id)
                if product is None:
                    return UnmanageResult(
                        record_id=None,
                        detail="no Account Factory product holds the account",
                        attempt=info.attempt,
                    )
                if product["Status"] == "UNDER_CHANGE":
                    self._wait_for_record(str(product["LastRecordId"]), "an earlier operation")
                    product = self._product_of(inp.account_id)
                    if product is None:
                        return UnmanageResult(record_id=None, detail="unmanaged already")
                token = uuid.uuid5(_NAMESPACE, f"terminate/{inp.request_id}/{inp.account_id}")
                record_id = str(
                    self.servicecatalog.terminate_provisioned_product(
                        ProvisionedProductId=product["Id"],
                        TerminateToken=str(token),
                        # The account is the physical resource: it is closed by its own step.
                        RetainPhysicalResources=True,
                    )["RecordDetail"]["RecordId"]
                )
                beat(record_id)
            self._wait_for_record(record_id, "Account Factory unmanage")
        except ClientError as err:
            raise to_application_error(err, action="TerminateProvisionedProduct") from err
        return UnmanageResult(
            record_id=record_id,
            detail=f"unmanaged by record {record_id}",
            attempt=info.attempt,
        )

    def _product_of(self, account_id: str) -> dict[str, Any] | None:
        found = self.servicecatalog.search_provisioned_products(
            Filters={"SearchQuery": [f"physicalId:{account_id}"]}
        )["ProvisionedProducts"]
        return next(
            (
                p
                for p in found
                if p.get("PhysicalId") == account_id and p.get("Type") == "CONTROL_TOWER_ACCOUNT"
            ),
            None,
        )

    def _existing_record(self, name: str) -> tuple[str | None, bool, list[dict[str, Any]]]:
        """The record of a live product of this name (adopted), or none and the failed ones
        (ERROR) that hold the name until they are terminated."""
        found = self.servicecatalog.search_provisioned_products(
            Filters={"SearchQuery": [f"name:{name}"]}
        )["ProvisionedProducts"]
        failed: list[dict[str, Any]] = []
        for pp in found:
            if pp["Name"] != name:
                continue
            if pp["Status"] in ("AVAILABLE", "UNDER_CHANGE", "PLAN_IN_PROGRESS"):
                return str(pp["LastRecordId"]), True, []
            if pp["Status"] == "TAINTED":
                raise final(
                    f"provisioned product {name} is TAINTED: {pp.get('StatusMessage', '')}; "
                    "fix it in Service Catalog, then retry",
                    "ProvisionedProductTainted",
                )
            if pp["Status"] == "ERROR":
                failed.append(dict(pp))
        return None, False, failed

    def _terminate_failed(self, inp: AccountFactoryInput, product: dict[str, Any]) -> None:
        """Free the name a failed provisioning holds: terminate it (keeping whatever it made;
        the account, if any, is the request's to find) and wait. The token is the same on every
        attempt, so a retried activity waits for the same termination."""
        token = uuid.uuid5(_NAMESPACE, f"terminate-failed/{inp.request_id}/{product['Id']}")
        record = self.servicecatalog.terminate_provisioned_product(
            ProvisionedProductId=product["Id"],
            TerminateToken=str(token),
            RetainPhysicalResources=True,
        )["RecordDetail"]
        self._wait_for_record(str(record["RecordId"]), f"termination of failed {product['Name']}")

    def _provision(self, inp: AccountFactoryInput, name: str, attempt: int) -> str:
        product_id, artifact_id = self._product(inp.product_name)
        first, _, last = inp.account_name.partition("-")
        params = {
            "AccountEmail": inp.account_email,
            "AccountName": inp.account_name,
            "ManagedOrganizationalUnit": f"{inp.ou_name} ({inp.ou_id})",
            "SSOUserEmail": inp.sso_user_email,
            "SSOUserFirstName": first or inp.account_name,
            "SSOUserLastName": last or "owner",
        }
        record = self.servicecatalog.provision_product(
            ProductId=product_id,
            ProvisioningArtifactId=artifact_id,
            ProvisionedProductName=name,
            # Same request and attempt, same token: a resent call cannot provision twice.
            ProvisionToken=str(uuid.uuid5(_NAMESPACE, f"{inp.request_id}/{inp.run}/{attempt}")),
            ProvisioningParameters=[{"Key": k, "Value": v} for k, v in params.items()],
        )["RecordDetail"]
        return str(record["RecordId"])

    def _product(self, product_name: str) -> tuple[str, str]:
        views = self.servicecatalog.search_products_as_admin(
            Filters={"FullTextSearch": [product_name]}
        )["ProductViewDetails"]
        product = next(
            (
                v["ProductViewSummary"]
                for v in views
                if v["ProductViewSummary"]["Name"] == product_name
            ),
            None,
        )
        if product is None:
            raise final(f"Service Catalog product {product_name!r} not found", "ProductNotFound")
        artifacts = self.servicecatalog.list_provisioning_artifacts(ProductId=product["ProductId"])[
            "ProvisioningArtifactDetails"
        ]
        active = [a for a in artifacts if a.get("Active", True)]
        chosen = next((a for a in active if a.get("Guidance") == "DEFAULT"), None) or (
            active[-1] if active else None
        )
        if chosen is None:
            raise final(f"{product_name} has no active provisioning artifact", "ProductNotFound")
        return str(product["ProductId"]), str(chosen["Id"])

    def _wait_for_record(self, record_id: str, what: str) -> None:
        beat(record_id)  # a retry resumes the wait for this record
        detail = until(
            lambda: self.servicecatalog.describe_record(Id=record_id)["RecordDetail"],
            lambda d: d["Status"] in ("SUCCEEDED", "FAILED", "IN_PROGRESS_IN_ERROR"),
            self.poll_interval_seconds,
            waiting_for=f"Account Factory record {record_id}",
        )
        status = detail["Status"]
        if status != "SUCCEEDED":
            errors = "; ".join(
                f"{e.get('Code', '')}: {e.get('Description', '')}"
                for e in detail.get("RecordErrors", [])
            )
            codes = {str(e.get("Code", "")) for e in detail.get("RecordErrors", [])}
            quota = bool(codes & QUOTA_CODES)
            raise ApplicationError(
                f"{what} {status}: {errors or 'no reason given'}",
                type="ServiceQuotaExceededException" if quota else "AccountFactoryFailed",
                non_retryable=not quota,
            )
