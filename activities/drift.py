"""Drift checks: what each managed account looks like now, against what its record says.

Read-only: nothing here changes an account (a repair is an update request). Each check asks the
system that owns the part (Organizations for the OU, Control Tower for the enrollment,
CloudFormation for the stack instances, Workload Security for the connector and the member
account's SSM for the agent association, Sunny Pay for the registration), so a change made by
hand in any console shows. Throttling is waited out; an account the checks cannot look at (its
role gone, say) is reported as unchecked, not as drifted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from botocore.exceptions import ClientError
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.account_settings import ENABLED, AccountSettingsActivities
from activities.aws_errors import error_code
from activities.billing import SERVICE as BILLING
from activities.budgets import BudgetActivities, budget_name
from activities.control_tower import ControlTowerActivities
from activities.drift_survey import FleetSurvey, OuSurvey
from activities.heartbeats import beat
from activities.http_calls import call, path
from activities.member_accounts import MemberAccountAccess
from activities.stack_set_operations import recent_operations
from activities.waiting import Backoff, patiently, until
from activities.workload_security import WorkloadSecurityClient
from common import account_contract as contract
from common.drift import (
    AccountDrift,
    DetectDriftInput,
    DriftTarget,
    DriftTargets,
    DriftTargetsInput,
    InspectInput,
    InspectResult,
    StackSetDetection,
    detection_id,
    fingerprint,
)
from common.landing_zone import LandingZone
from common.models import AccountStatus, DriftFinding, ManagedAccount
from common.settings import WorkloadSecuritySettings

T = TypeVar("T")
MISSING = "missing"


@dataclass
class DriftTargetActivities:
    """The accounts to check, from visibility and the records' memos (no query per account)."""

    client: Client
    landing_zone: LandingZone

    @activity.defn(no_thread_cancel_exception=True)
    async def drift_targets(self, inp: DriftTargetsInput) -> DriftTargets:
        """Every managed account from visibility, a page at a time; named ones from their own
        workflows (read there, not from visibility, which may lag just after a change)."""
        out = DriftTargets()
        timeout = timedelta(seconds=30)
        if inp.account_ids:
            for account_id in inp.account_ids:
                handle = self.client.get_workflow_handle(contract.account_workflow_id(account_id))
                try:
                    described = await handle.describe(rpc_timeout=timeout)
                except RPCError as err:
                    if err.status != RPCStatusCode.NOT_FOUND:
                        raise
                    continue
                self._add(
                    out,
                    account_id,
                    await described.memo_value(contract.STATE_MEMO, None, type_hint=ManagedAccount),
                )
            return out
        query = f"WorkflowType = '{contract.WORKFLOW}' AND ExecutionStatus = 'Running'"
        listing = self.client.list_workflows(
            query, page_size=inp.page_size, next_page_token=inp.page_token, rpc_timeout=timeout
        )
        await listing.fetch_next_page()
        for wf in listing.current_page or []:
            account: ManagedAccount | None = await wf.memo_value(
                contract.STATE_MEMO, None, type_hint=ManagedAccount
            )
            self._add(out, wf.id.removeprefix(contract.ID_PREFIX), account)
        out.next_page_token = listing.next_page_token or None
        return out

    def _add(self, out: DriftTargets, account_id: str, account: ManagedAccount | None) -> None:
        if account is None or account.status == AccountStatus.closed:
            return
        if account.status != AccountStatus.active:
            out.busy.append(account_id)  # a change is moving it: not drift
            return
        out.targets.append(self._target(account))

    def _target(self, account: ManagedAccount) -> DriftTarget:
        ou = self.landing_zone.find(account.request.organizational_unit)
        recorded = {b.stack_set for b in account.baselines}
        expected = self.landing_zone.baselines_for(ou) if ou else []
        baselines = [b for b in expected if b.stack_set_name in recorded]
        return DriftTarget(
            account_id=account.account_id,
            organizational_unit=account.request.organizational_unit,
            organizational_unit_id=account.organizational_unit_id,
            control_tower=account.control_tower.startswith("enrolled"),
            baselines=baselines,
            workload_security_connector_id=account.workload_security_connector_id,
            billing_registration_id=account.billing_registration_id,
            settings=account.settings,
            recorded=[fingerprint(item) for item in account.drift],
        )


@dataclass
class DriftActivities:
    organizations: Any
    cloudformation: Any
    control_tower: ControlTowerActivities
    ws: WorkloadSecurityClient
    ws_settings: WorkloadSecuritySettings
    members: MemberAccountAccess
    billing: httpx.Client
    budgets: BudgetActivities
    account_settings: AccountSettingsActivities
    survey: FleetSurvey
    poll_interval_seconds: float = 5.0

    def _patient(self, fn: Callable[[], T], what: str) -> T:
        return patiently(fn, self.poll_interval_seconds, waiting_for=what)

    @activity.defn(no_thread_cancel_exception=True)
    def inspect_accounts(self, inp: InspectInput) -> InspectResult:
        out = []
        for surveyed, control_tower in inp.surveys.items():  # all at once, both APIs each
            self.survey.start(inp.survey_id, surveyed, control_tower)
        for target in inp.targets:
            beat(target.account_id)
            survey = None
            if (ou := target.organizational_unit_id) and ou in inp.surveys:
                survey = self.survey.get(inp.survey_id, ou, inp.surveys[ou])
            try:
                findings = self._inspect(target, survey)
            except ClientError as err:
                if error_code(err) not in ("AccessDenied", "AccessDeniedException"):
                    raise  # the activity's retry asks again
                out.append(AccountDrift(account_id=target.account_id, error=str(err)))
                continue
            out.append(AccountDrift(account_id=target.account_id, findings=findings))
        return InspectResult(accounts=out)

    def _inspect(self, target: DriftTarget, survey: OuSurvey | None) -> list[DriftFinding]:
        return [
            *self._organizational_unit(target, survey),
            *self._control_tower(target, survey),
            *self._stack_instances(target),
            *self._workload_security(target),
            *self._billing(target),
            *self._settings(target),
        ]

    @activity.defn(no_thread_cancel_exception=True)
    def detect_stack_set_drift(self, inp: DetectDriftInput) -> StackSetDetection:
        """Run DetectStackSetDrift on a baseline StackSet and wait for it, so that the stack
        instances' DriftStatus says whether their resources were changed by hand. AWS runs it as
        a StackSet operation, one at a time with the others: a busy StackSet is waited for up to
        ``busy_wait_seconds``, then the check goes on with what the last detection found."""
        name = inp.baseline.stack_set_name
        extra = {"CallAs": inp.baseline.call_as} if inp.baseline.call_as != "SELF" else {}
        op_id = detection_id(inp.check_id, name)
        deadline = time.monotonic() + inp.busy_wait_seconds
        backoff = Backoff(self.poll_interval_seconds, self.poll_interval_seconds * 6)
        try:
            while True:
                shared = self._shared_detection(name, extra, op_id, inp.fresh_seconds)
                if isinstance(shared, StackSetDetection):
                    return shared
                if shared is not None:  # another check's detection is running: share it
                    return self._detection_end(name, extra, shared)
                try:
                    self._patient(
                        lambda: self.cloudformation.detect_stack_set_drift(
                            StackSetName=name,
                            OperationId=op_id,
                            OperationPreferences={
                                "FailureTolerancePercentage": 100,
                                "MaxConcurrentPercentage": 100,
                                "RegionConcurrencyType": "PARALLEL",
                            },
                            **extra,
                        ),
                        f"StackSet {name}",
                    )
                    break
                except ClientError as err:
                    code = error_code(err)
                    if code == "OperationIdAlreadyExistsException":
                        break  # an earlier attempt started it: wait for that one
                    if code not in ("OperationInProgressException", "StaleRequestException"):
                        raise
                if time.monotonic() >= deadline:
                    return StackSetDetection(stack_set=name, status="busy")
                backoff.wait(f"StackSet {name}")
            return self._detection_end(name, extra, op_id)
        except ClientError as err:
            if error_code(err) in ("StackSetNotFoundException", "AccessDenied", "ValidationError"):
                return StackSetDetection(stack_set=name, status="error", reason=str(err))
            raise

    def _detection_end(self, name: str, extra: dict[str, str], op_id: str) -> StackSetDetection:
        beat(op_id)
        found = until(
            lambda: self.cloudformation.describe_stack_set_operation(
                StackSetName=name, OperationId=op_id, **extra
            )["StackSetOperation"],
            lambda op: op["Status"] in ("SUCCEEDED", "FAILED", "STOPPED"),
            self.poll_interval_seconds,
            waiting_for=f"StackSet {name}",
        )
        return StackSetDetection(
            stack_set=name,
            status=str(found["Status"]),
            operation_id=op_id,
            reason=found.get("StatusReason"),
        )

    def _shared_detection(
        self, name: str, extra: dict[str, str], mine: str, fresh_seconds: float
    ) -> StackSetDetection | str | None:
        """Another check's detection on this StackSet: the id of one running, or the outcome of
        one that ended within ``fresh_seconds``; None when a detection of our own is needed."""
        ops = self._patient(
            lambda: list(recent_operations(self.cloudformation, name, extra)),
            f"StackSet {name}",
        )
        now = datetime.now(UTC)
        for op in ops:
            if op.get("Action") != "DETECT_DRIFT" or op["OperationId"] == mine:
                continue
            if op["Status"] in ("RUNNING", "QUEUED", "STOPPING"):
                return str(op["OperationId"])
            ended = op.get("EndTimestamp")
            recent = ended is not None and (now - ended).total_seconds() <= fresh_seconds
            if op["Status"] == "SUCCEEDED" and recent:
                return StackSetDetection(
                    stack_set=name,
                    status="SUCCEEDED",
                    operation_id=str(op["OperationId"]),
                    reason=f"a detection that ended {ended:%H:%M:%S} UTC was read",
                )
        return None

    # ------------------------------------------------------------------ the checks
    def _organizational_unit(
        self, target: DriftTarget, survey: OuSurvey | None
    ) -> list[DriftFinding]:
        if not target.organizational_unit_id:
            return []
        if survey is not None and target.account_id in survey.members:
            return []  # where its record says; else asked of on its own (it moved, say)
        parents = self._patient(
            lambda: self.organizations.list_parents(ChildId=target.account_id), "ListParents"
        )["Parents"]
        found = parents[0]["Id"] if parents else MISSING
        if found == target.organizational_unit_id:
            return []
        return [
            DriftFinding(
                what="organizational_unit",
                expected=f"{target.organizational_unit} ({target.organizational_unit_id})",
                found=found,
            )
        ]

    def _control_tower(self, target: DriftTarget, survey: OuSurvey | None) -> list[DriftFinding]:
        if not target.control_tower:
            return []
        arn = survey.arn_of(target.account_id) if survey is not None else None
        known = (survey.enrollments if survey is not None else None) or {}
        if arn in known:
            status = known[arn]
        else:  # not enrolled through its OU as far as a survey saw: asked of on its own
            status = self._patient(
                lambda: self._enrollment(target.account_id, arn), "ListEnabledBaselines"
            )
        if status == "SUCCEEDED":
            return []
        return [DriftFinding(what="control_tower", expected="SUCCEEDED", found=status)]

    def _enrollment(self, account_id: str, arn: str | None) -> str:
        """Its ARN known (from a survey), a call fewer."""
        ct = self.control_tower
        return (ct.enrollment_of_arn(arn) if arn else ct.enrollment_of(account_id)).status

    def _stack_instances(self, target: DriftTarget) -> list[DriftFinding]:
        findings = []
        for baseline in target.baselines:
            name = baseline.stack_set_name
            extra = {"CallAs": baseline.call_as} if baseline.call_as != "SELF" else {}
            summaries = self._patient(
                lambda name=name, extra=extra: [  # type: ignore[misc]
                    s
                    for page in self.cloudformation.get_paginator("list_stack_instances").paginate(
                        StackSetName=name, StackInstanceAccount=target.account_id, **extra
                    )
                    for s in page["Summaries"]
                ],
                f"StackSet {name}",
            )
            by_region = {s["Region"]: s for s in summaries if s["Account"] == target.account_id}
            for region in baseline.regions:
                found = _instance_state(by_region.get(region))
                if found != "CURRENT":
                    what = f"stack_instance:{name}/{region}"
                    findings.append(DriftFinding(what=what, expected="CURRENT", found=found))
        return findings

    def _workload_security(self, target: DriftTarget) -> list[DriftFinding]:
        connector = target.workload_security_connector_id
        if connector is None:
            return []
        search = {
            "maxItems": 1,
            "searchCriteria": [
                {"fieldName": "accountId", "stringValue": target.account_id, "stringTest": "equal"}
            ],
        }
        found = self.ws.request("POST", "awsconnectors/search", json=search)["awsConnectors"]
        findings = []
        if not found:
            findings.append(
                DriftFinding(
                    what="workload_security_connector",
                    expected=f"connector {connector}",
                    found=MISSING,
                )
            )
        name = self.ws_settings.association_name
        for region in self.ws_settings.regions:
            ssm = self.members.client(
                target.account_id, "ssm", "drift-check", region=region, role_wait_seconds=0
            )
            existing = self._patient(
                lambda ssm=ssm: ssm.list_associations(  # type: ignore[misc]
                    AssociationFilterList=[{"key": "AssociationName", "value": name}]
                )["Associations"],
                "SSM ListAssociations",
            )
            if not existing:
                findings.append(
                    DriftFinding(
                        what=f"workload_security_agents:{region}",
                        expected=f"SSM association {name}",
                        found=MISSING,
                    )
                )
        return findings

    def _billing(self, target: DriftTarget) -> list[DriftFinding]:
        registration = target.billing_registration_id
        if registration is None:
            return []
        resp = call(
            self.billing,
            "GET",
            path("/v1/registrations/{id}", id=registration),
            service=BILLING,
        )
        if resp.status_code == 404:
            found = MISSING
        else:
            resp.raise_for_status()
            found = str(resp.json()["status"])
        if found == "active":
            return []
        return [
            DriftFinding(
                what="billing", expected=f"registration {registration} active", found=found
            )
        ]

    def _settings(self, target: DriftTarget) -> list[DriftFinding]:
        """The vend-time settings the account was given, as AWS has them now."""
        wanted, account = target.settings, target.account_id
        findings: list[DriftFinding] = []
        if wanted.budget is not None:
            budget = self._patient(
                lambda: self.budgets.find(self.budgets.payer(), budget_name(account)),
                "DescribeBudget",
            )
            amount = f"{float(budget['BudgetLimit']['Amount']):g} USD" if budget else MISSING
            findings += _differs("budget", f"{wanted.budget.monthly_usd:g} USD", amount)
        for kind, contact in sorted(wanted.alternate_contacts.items()):
            found = self._patient(
                lambda kind=kind: self.account_settings.alternate_contact(account, kind),  # type: ignore[misc]
                "GetAlternateContact",
            )
            findings += _differs(f"alternate_contact:{kind}", str(contact.email), found or MISSING)
        if wanted.account_alias is not None:
            iam = self.members.client(account, "iam", "drift-check", role_wait_seconds=0)
            aliases = self._patient(lambda: iam.list_account_aliases(), "ListAccountAliases")
            found = ",".join(aliases.get("AccountAliases", [])) or MISSING
            findings += _differs("account_alias", wanted.account_alias, found)
        for region in wanted.opt_in_regions:
            status = self._patient(
                lambda region=region: self.account_settings.region_status(account, region),  # type: ignore[misc]
                "GetRegionOptStatus",
            )
            enabled = "ENABLED" if status in ENABLED else status
            findings += _differs(f"opt_in_region:{region}", "ENABLED", enabled)
        return findings


def _differs(what: str, expected: str, found: str) -> list[DriftFinding]:
    return [] if expected == found else [DriftFinding(what=what, expected=expected, found=found)]


def _instance_state(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return MISSING
    status = str(summary.get("Status", "CURRENT"))
    if status == "CURRENT" and summary.get("DriftStatus") == "DRIFTED":
        return "DRIFTED"  # its resources were changed by hand (DetectStackSetDrift said so)
    return status
