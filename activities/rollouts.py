"""Rollouts: survey a baseline StackSet across the fleet, and run one batched operation on it.

One operation takes a whole wave (every account and region of it), which is what makes a rollout
fast: AWS runs one operation per StackSet at a time, and an operation's cost is barely more for
a hundred accounts than for one. Each operation carries an id made from the rollout and the
wave, so a retry after a crash finds the operation it started (AWS keeps the id and refuses it a
second time) instead of starting another for the same accounts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from botocore.exceptions import ClientError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.aws_errors import error_code, to_application_error
from activities.execution_roles import StackSetExecutionRoles
from activities.heartbeats import beat
from activities.organizations import OrganizationsActivities
from activities.waiting import Backoff, patiently, until
from common.landing_zone import PermissionModel
from common.rollouts import (
    InstanceSurvey,
    Operation,
    RolloutInput,
    RunOperationInput,
    StopOperationInput,
    WaveSurveyInput,
    sha256_of,
    template_diff,
    template_parameters,
)
from common.stack_set_batches import BatchDeployInput, BatchDeployResult

T = TypeVar("T")
_BUSY = ("OperationInProgressException", "StaleRequestException")
PAGE = 100  # instances in a page of ListStackInstances


@dataclass
class RolloutActivities:
    cloudformation: Any
    organizations: OrganizationsActivities
    # New instances need the StackSet's execution role in their accounts (None: known there).
    execution_roles: StackSetExecutionRoles | None = None
    poll_interval_seconds: float = 15.0

    def _patient(self, call: Callable[[], T], stack_set: str) -> T:
        return patiently(call, self.poll_interval_seconds, waiting_for=f"StackSet {stack_set}")

    @staticmethod
    def _call_as(call_as: str) -> dict[str, str]:
        return {"CallAs": call_as} if call_as != "SELF" else {}

    @activity.defn(no_thread_cancel_exception=True)
    def survey_rollout(self, inp: RolloutInput) -> InstanceSurvey:
        """Which accounts of the OUs have the StackSet, and which of them are already where the
        change would take them (those get no operation)."""
        baseline = inp.baseline
        if baseline is None:
            raise ApplicationError("a StackSet rollout names its baseline", non_retryable=True)
        name = baseline.stack_set_name
        call_as = self._call_as(baseline.call_as)
        try:
            ou_ids = {
                ou.path: self.organizations.resolve_ou(ou.path) for ou in inp.organizational_units
            }
            where = self._accounts_in(ou_ids)
            stack_set = self._patient(
                lambda: self.cloudformation.describe_stack_set(StackSetName=name, **call_as), name
            )["StackSet"]
            statuses = self._statuses(name, call_as)
        except ClientError as err:
            raise to_application_error(err, action=f"survey of StackSet {name}") from err
        wanted = set(inp.account_ids)
        concerned = {a: ou for a, ou in where.items() if not wanted or a in wanted}
        if inp.tags:
            try:
                concerned = {a: ou for a, ou in concerned.items() if self._tagged(a, inp.tags)}
            except ClientError as err:
                raise to_application_error(err, action="ListTagsForResource") from err
        accounts = {a: ou for a, ou in concerned.items() if a in statuses}
        without = {a: ou for a, ou in concerned.items() if a not in statuses}
        before = str(stack_set.get("TemplateBody") or "")
        changes = inp.template_body is not None and inp.template_body != before
        self._check_parameters(inp, stack_set, changes)
        current = [
            a
            for a in accounts
            if not changes and not inp.parameters and all(s == "CURRENT" for s in statuses[a])
        ]
        return InstanceSurvey(
            template_changes=changes,
            template_sha256=sha256_of(inp.template_body) if inp.template_body else None,
            current_template_sha256=sha256_of(before) if before else None,
            template_diff=template_diff(before, inp.template_body)
            if changes and inp.template_body
            else None,
            regions=list(baseline.regions),
            accounts=accounts,
            ou_ids=ou_ids,
            current=sorted(current),
            without=without,
        )

    @staticmethod
    def _check_parameters(inp: RolloutInput, stack_set: dict[str, Any], changes: bool) -> None:
        """Every override must name a parameter the StackSet (or the new template) declares:
        AWS would refuse the operation midway, after the canary."""
        if not inp.parameters:
            return
        declared = {str(p["ParameterKey"]) for p in stack_set.get("Parameters", [])}
        if changes and inp.template_body is not None:
            declared = template_parameters(inp.template_body) or declared
        unknown = sorted(set(inp.parameters) - declared)
        if unknown:
            raise ApplicationError(
                f"parameters {unknown} are not parameters of StackSet "
                f"{stack_set.get('StackSetName')} (it has {sorted(declared) or 'none'})",
                type="InvalidParameters",
                non_retryable=True,
            )

    @activity.defn(no_thread_cancel_exception=True)
    def current_accounts(self, inp: WaveSurveyInput) -> list[str]:
        """Of the wave's accounts, those whose every instance is CURRENT at the target now."""
        name = inp.baseline.stack_set_name
        call_as = self._call_as(inp.baseline.call_as)
        try:
            template = self._patient(
                lambda: self.cloudformation.describe_stack_set(StackSetName=name, **call_as), name
            )["StackSet"].get("TemplateBody")
            if len(inp.accounts) < math.ceil(inp.instances_total / PAGE):
                looked = {a: self._statuses(name, call_as, a) for a in inp.accounts}
                statuses = {a: found for a, found in looked.items() if found}
            else:
                statuses = self._statuses(name, call_as)
        except ClientError as err:
            raise to_application_error(err, action=f"survey of StackSet {name}") from err
        if inp.parameters or (inp.template_body is not None and inp.template_body != template):
            return []  # the StackSet itself is not there yet: nobody is
        wanted = set(inp.accounts)
        return sorted(
            a for a, s in statuses.items() if a in wanted and all(x == "CURRENT" for x in s)
        )

    @overload
    def _statuses(self, name: str, call_as: dict[str, str]) -> dict[str, list[str]]: ...
    @overload
    def _statuses(self, name: str, call_as: dict[str, str], account: str) -> list[str]: ...
    def _statuses(
        self, name: str, call_as: dict[str, str], account: str | None = None
    ) -> dict[str, list[str]] | list[str]:
        """Each account's instance statuses (or one account's, with AWS's account filter)."""
        statuses: dict[str, list[str]] = defaultdict(list)
        only = {"StackInstanceAccount": account} if account else {}
        pages = self.cloudformation.get_paginator("list_stack_instances").paginate(
            StackSetName=name, **only, **call_as
        )
        for page in self._patient(lambda: list(pages), name):
            for summary in page["Summaries"]:
                statuses[summary["Account"]].append(summary["Status"])
        return statuses if account is None else statuses.get(account, [])

    def _tagged(self, account_id: str, wanted: dict[str, str]) -> bool:
        tags: dict[str, str] = {}
        pages = self.organizations.client.get_paginator("list_tags_for_resource").paginate(
            ResourceId=account_id
        )
        for page in self._patient(lambda: list(pages), f"tags of {account_id}"):
            tags.update({t["Key"]: t["Value"] for t in page["Tags"]})
        beat(account_id)
        return all(tags.get(k) == v for k, v in wanted.items())

    def _accounts_in(self, ou_ids: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for path, ou_id in ou_ids.items():
            pages = self.organizations.client.get_paginator("list_accounts_for_parent").paginate(
                ParentId=ou_id
            )
            for page in self._patient(lambda p=pages: list(p), path):  # type: ignore[misc]
                for account in page["Accounts"]:
                    out[account["Id"]] = path
            beat()
        return out

    @activity.defn(no_thread_cancel_exception=True)
    def run_stack_set_operation(self, inp: RunOperationInput) -> Operation:
        """Start the wave's operation unless it was started already, and wait for its end."""
        op = inp.operation.model_copy(deep=True)
        name = inp.baseline.stack_set_name
        try:
            # A first attempt has started nothing to look for (and AWS refuses the id a second
            # time, should it have): the call goes out without a look first.
            if activity.info().attempt == 1 or self._describe(inp, op.operation_id) is None:
                self._start(inp, op)
            return self._wait(inp, op)
        except ClientError as err:
            raise to_application_error(err, action=f"{op.action} {name}") from err

    @activity.defn(no_thread_cancel_exception=True)
    def stop_stack_set_operation(self, inp: StopOperationInput) -> bool:
        """Ask AWS to stop a cancelled rollout's operation: the instances in flight finish, no
        more start. False when it had ended already (nothing to stop)."""
        name = inp.baseline.stack_set_name
        try:
            self._patient(
                lambda: self.cloudformation.stop_stack_set_operation(
                    StackSetName=name,
                    OperationId=inp.operation_id,
                    **self._call_as(inp.baseline.call_as),
                ),
                name,
            )
        except ClientError as err:
            if error_code(err) in ("InvalidOperationException", "OperationNotFoundException"):
                return False
            raise to_application_error(err, action=f"StopStackSetOperation {name}") from err
        return True

    def _describe(self, inp: RunOperationInput, operation_id: str) -> dict[str, Any] | None:
        name = inp.baseline.stack_set_name
        try:
            return dict(
                self._patient(
                    lambda: self.cloudformation.describe_stack_set_operation(
                        StackSetName=name,
                        OperationId=operation_id,
                        **self._call_as(inp.baseline.call_as),
                    ),
                    name,
                )["StackSetOperation"]
            )
        except ClientError as err:
            if error_code(err) in ("OperationNotFoundException", "ValidationError"):
                return None
            raise

    @staticmethod
    def _tolerance(inp: RunOperationInput, op: Operation) -> int:
        return min(inp.max_failed_accounts, max(0, len(op.accounts) - 1))

    def _arguments(self, inp: RunOperationInput, op: Operation) -> dict[str, Any]:
        failures = self._tolerance(inp, op)
        args: dict[str, Any] = {
            "StackSetName": inp.baseline.stack_set_name,
            "Regions": op.regions,
            "OperationId": op.operation_id,
            "OperationPreferences": {
                "FailureToleranceCount": failures,
                "MaxConcurrentPercentage": inp.max_concurrent_percentage,
                "RegionConcurrencyType": "PARALLEL",
            },
            **self._call_as(inp.baseline.call_as),
        }
        if inp.baseline.permission_model == PermissionModel.SERVICE_MANAGED:
            args["DeploymentTargets"] = {
                "OrganizationalUnitIds": op.organizational_unit_ids,
                "Accounts": op.accounts,
                "AccountFilterType": "INTERSECTION",
            }
        else:
            args["Accounts"] = op.accounts
        return args

    def _start(self, inp: RunOperationInput, op: Operation) -> None:
        name = inp.baseline.stack_set_name
        args = self._arguments(inp, op)
        if op.action == "UpdateStackSet":
            current = self.cloudformation.describe_stack_set(
                StackSetName=name, **self._call_as(inp.baseline.call_as)
            )["StackSet"]
            args["TemplateBody"] = inp.template_body
            # The baselines make (named) IAM roles: AWS refuses a template that does unless the
            # call acknowledges it. The approvers approved this template, diff and all.
            args["Capabilities"] = sorted(
                {*current.get("Capabilities", []), "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"}
            )
            args["Parameters"] = [
                {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
                for p in current.get("Parameters", [])
            ]
        else:
            # A new instance takes the landing zone's values for the baseline, as a vend's does.
            values = inp.parameters
            if op.action == "CreateStackInstances":
                values = {**inp.baseline.parameters, **inp.parameters}
            if values:
                args["ParameterOverrides"] = [
                    {"ParameterKey": k, "ParameterValue": v} for k, v in values.items()
                ]
        if op.action == "CreateStackInstances" and self.execution_roles is not None:
            for account in op.accounts:
                self.execution_roles.ensure(inp.baseline, account)
        backoff = Backoff(self.poll_interval_seconds, self.poll_interval_seconds * 4)
        while True:
            try:
                # Each call spelt out: tools/iam_policy.py reads the actions from them.
                if op.action == "UpdateStackSet":
                    self._patient(lambda: self.cloudformation.update_stack_set(**args), name)
                elif op.action == "CreateStackInstances":
                    self._patient(lambda: self.cloudformation.create_stack_instances(**args), name)
                else:
                    self._patient(lambda: self.cloudformation.update_stack_instances(**args), name)
                return
            except ClientError as err:
                code = error_code(err)
                if code == "OperationIdAlreadyExistsException":
                    return  # an earlier attempt's call went through after all
                if code not in _BUSY:
                    raise
            # Another operation holds the StackSet (a vend's, or another rollout's): AWS runs
            # one at a time, so wait for it rather than count it a failure.
            backoff.wait(f"StackSet {name}")

    def _wait(self, inp: RunOperationInput, op: Operation) -> Operation:
        op.status = status = self._ended(inp, op.operation_id)
        if status == "SUCCEEDED" and self._tolerance(inp, op) == 0:
            return op  # no failure tolerated, so none happened: no results to read
        failed = {
            account: reason
            for account, results in self._results(inp, op.operation_id).items()
            if (reason := _failure(results))
        }
        if status != "SUCCEEDED" and not failed:
            failed = {a: status for a in op.accounts}
        op.failed_accounts = sorted(failed)
        op.reason = "; ".join(f"{a}: {r}" for a, r in sorted(failed.items())) or None
        return op

    def _ended(self, inp: RunOperationInput, operation_id: str) -> str:
        """Wait for the operation's end (heartbeating its id) and answer its status."""
        beat(operation_id)
        found = until(
            lambda: str((self._describe(inp, operation_id) or {}).get("Status", "RUNNING")),
            lambda status: status in ("SUCCEEDED", "FAILED", "STOPPED"),
            self.poll_interval_seconds,
            waiting_for=f"StackSet {inp.baseline.stack_set_name}",
        )
        return found

    def _results(self, inp: RunOperationInput, operation_id: str) -> dict[str, list[_Result]]:
        """Each account's instance results in the operation: (region, status, reason)."""
        name = inp.baseline.stack_set_name
        pages = self.cloudformation.get_paginator("list_stack_set_operation_results").paginate(
            StackSetName=name, OperationId=operation_id, **self._call_as(inp.baseline.call_as)
        )
        out: dict[str, list[_Result]] = defaultdict(list)
        for page in self._patient(lambda: list(pages), name):
            for result in page["Summaries"]:
                out[result["Account"]].append(
                    (result.get("Region", ""), result["Status"], result.get("StatusReason") or "")
                )
        return out

    @activity.defn(no_thread_cancel_exception=True)
    def deploy_stack_set_batch(self, inp: BatchDeployInput) -> BatchDeployResult:
        """New accounts' instances of one baseline, every account of the batch in one
        CreateStackInstances (workflows/stack_set_batcher.py).

        An account that has an instance already is left to its request's own step, which judges
        whether it needs an update or a replacement. A retry finds the operation its first
        attempt started by the id, waits for it and reads whom it covered from its results, so
        no account's instances are made by two operations."""
        baseline = inp.baseline
        attempt = activity.info().attempt
        run = RunOperationInput(
            rollout_id=inp.operation_id,
            baseline=baseline,
            operation=Operation(
                action="CreateStackInstances",
                accounts=inp.accounts,
                regions=list(baseline.regions),
                operation_id=inp.operation_id,
                organizational_unit_ids=inp.organizational_unit_ids,
            ),
            max_failed_accounts=len(inp.accounts),  # one account's failure is its own
            max_concurrent_percentage=100,
        )
        try:
            if self._describe(run, inp.operation_id) is None:
                call_as = self._call_as(baseline.call_as)
                name = baseline.stack_set_name
                new = [a for a in inp.accounts if not self._statuses(name, call_as, a)]
                if not new:
                    return BatchDeployResult(operation_id=None, attempt=attempt)
                run.operation.accounts = new
                run.max_failed_accounts = len(new)
                self._start(run, run.operation)
            status = self._ended(run, inp.operation_id)
            results = self._results(run, inp.operation_id)
        except ClientError as err:
            action = f"CreateStackInstances {baseline.stack_set_name}"
            raise to_application_error(err, action=action) from err
        regions = set(baseline.regions)
        failed = {a: reason for a, rs in results.items() if (reason := _failure(rs))}
        deployed = [
            a
            for a, rs in results.items()
            if a not in failed
            and {r for r, s, _ in rs if s == "SUCCEEDED"} >= regions
            and status == "SUCCEEDED"
        ]
        return BatchDeployResult(
            operation_id=inp.operation_id,
            status=status,
            deployed=sorted(deployed),
            failed=failed,
            attempt=attempt,
        )


_Result = tuple[str, str, str]  # region, status, reason


def _failure(results: list[_Result]) -> str | None:
    """An account's failed instances as "region: reason; ...", or None when none failed
    (CANCELLED instances were never tried: not a failure of the account's)."""
    bad = [f"{r}: {why or s}" for r, s, why in results if s not in ("SUCCEEDED", "CANCELLED")]
    return "; ".join(bad) or None
