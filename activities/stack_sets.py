"""Baseline StackSets: deploy a StackSet's instances to one new account.

Idempotent: instances that exist and are CURRENT are left alone, a running operation of ours is
adopted, and OperationInProgressException (someone else's operation on the same StackSet) is a
retry with backoff, not a failure.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.aws_errors import error_code, is_transient, to_application_error
from activities.execution_roles import StackSetExecutionRoles
from activities.heartbeats import beat
from activities.stack_set_operations import recent_operations
from activities.waiting import Backoff, patiently, until
from common.landing_zone import PermissionModel, StackSetBaseline, StackSetPreferences

T = TypeVar("T")
OPERATION_IDS = 50  # the ids one request may use on one StackSet (attempts, operator retries)
_NAMESPACE = uuid.UUID("5c0b0b8e-9d52-4e0c-8f0e-2b4d1d7c3a90")


class DeployBaselineInput(BaseModel):
    request_id: str
    account_id: str
    ou_id: str
    baseline: StackSetBaseline
    preferences: StackSetPreferences


class DeployBaselineResult(BaseModel):
    stack_set_name: str
    operation_id: str | None
    regions_deployed: list[str]
    already_current: bool
    attempt: int = 1
    shared_with: int = 0  # other accounts in the same operation (the StackSet batcher's)

    @classmethod
    def nothing_to_do(cls, stack_set_name: str, attempt: int) -> DeployBaselineResult:
        """The account's instances are already as wanted (deployed, or absent for a removal)."""
        return cls(
            stack_set_name=stack_set_name,
            operation_id=None,
            regions_deployed=[],
            already_current=True,
            attempt=attempt,
        )


@dataclass
class StackSetActivities:
    cloudformation: Any
    # Makes the StackSet's execution role in the account before its instances (None: the
    # accounts are known to have it, as in tests of this class alone).
    execution_roles: StackSetExecutionRoles | None = None
    poll_interval_seconds: float = 15.0

    @activity.defn(no_thread_cancel_exception=True)
    def deploy_baseline(self, inp: DeployBaselineInput) -> DeployBaselineResult:
        """Bring the account's instances to CURRENT: create the missing, update the stale, and
        replace those whose resources were changed by hand (DriftStatus DRIFTED: an update with
        the same template would leave the change in place, so they are deleted and made again).
        Each round is one StackSet operation; a retry waits for the one it had started."""
        info = activity.info()
        name = inp.baseline.stack_set_name
        operation_id: str | None = None
        deployed: set[str] = set()
        try:
            if info.heartbeat_details:
                operation_id = str(info.heartbeat_details[0])
                self._wait(inp, operation_id)
                deployed.update(inp.baseline.regions)
            for _ in range(3):  # replace the drifted, then create or update: never more
                instances = self._patient(lambda: self._instances(inp), name)
                regions = inp.baseline.regions
                missing = [r for r in regions if r not in instances]
                stale = [r for r in regions if _status(instances.get(r)) not in ("CURRENT", "")]
                drifted = [
                    r
                    for r in regions
                    if r in instances
                    and _status(instances[r]) == "CURRENT"
                    and instances[r].get("DriftStatus") == "DRIFTED"
                ]
                if not (missing or stale or drifted):
                    break
                if missing and self.execution_roles is not None:
                    self.execution_roles.ensure(inp.baseline, inp.account_id)
                running = self._patient(lambda: self._running_operation(inp), name)
                if running is not None:
                    operation_id = running
                elif drifted:
                    operation_id = self._replace(inp, drifted, info.attempt)
                else:
                    operation_id = self._deploy(inp, missing, stale, info.attempt)
                deployed.update(missing + stale + drifted)
                self._wait(inp, operation_id)
        except ClientError as err:
            raise to_application_error(err, action=f"StackSet {name}") from err
        if operation_id is None:
            return DeployBaselineResult.nothing_to_do(name, info.attempt)
        return DeployBaselineResult(
            stack_set_name=name,
            operation_id=operation_id,
            regions_deployed=sorted(deployed),
            already_current=False,
            attempt=info.attempt,
        )

    def _patient(self, call: Callable[[], T], stack_set: str) -> T:
        return patiently(call, self.poll_interval_seconds, waiting_for=f"StackSet {stack_set}")

    def _call_as(self, inp: DeployBaselineInput) -> dict[str, str]:
        return {"CallAs": inp.baseline.call_as} if inp.baseline.call_as != "SELF" else {}

    def _instances(self, inp: DeployBaselineInput) -> dict[str, dict[str, Any]]:
        """This account's instances by region (filtered here too: not every API honours the
        account filter)."""
        out: dict[str, dict[str, Any]] = {}
        paginator = self.cloudformation.get_paginator("list_stack_instances")
        pages = paginator.paginate(
            StackSetName=inp.baseline.stack_set_name,
            StackInstanceAccount=inp.account_id,
            **self._call_as(inp),
        )
        for page in pages:
            for summary in page["Summaries"]:
                if summary["Account"] == inp.account_id:
                    out[summary["Region"]] = summary
        return out

    def _running_operation(self, inp: DeployBaselineInput) -> str | None:
        """An operation this request started earlier and that is still running (after a crash
        that lost the heartbeat), found by its deterministic id prefix."""
        ops = recent_operations(
            self.cloudformation, inp.baseline.stack_set_name, self._call_as(inp)
        )
        mine = {
            make(inp, n)
            for make in (self._operation_id, self._replace_id)
            for n in range(1, OPERATION_IDS + 1)
        }
        for op in ops:
            if op["OperationId"] in mine and op["Status"] in ("RUNNING", "QUEUED"):
                return str(op["OperationId"])
        return None

    @staticmethod
    def _operation_id(inp: DeployBaselineInput, attempt: int) -> str:
        key = f"{inp.request_id}/{inp.baseline.stack_set_name}/{attempt}"
        return str(uuid.uuid5(_NAMESPACE, key))

    @staticmethod
    def _remove_id(inp: DeployBaselineInput, round_: int) -> str:
        key = f"{inp.request_id}/{inp.baseline.stack_set_name}/remove/{round_}"
        return str(uuid.uuid5(_NAMESPACE, key))

    @staticmethod
    def _replace_id(inp: DeployBaselineInput, attempt: int) -> str:
        key = f"{inp.request_id}/{inp.baseline.stack_set_name}/replace/{attempt}"
        return str(uuid.uuid5(_NAMESPACE, key))

    def _targets(self, inp: DeployBaselineInput) -> dict[str, Any]:
        if inp.baseline.permission_model == PermissionModel.SERVICE_MANAGED:
            return {
                "DeploymentTargets": {
                    "OrganizationalUnitIds": [inp.ou_id],
                    "Accounts": [inp.account_id],
                    "AccountFilterType": "INTERSECTION",
                }
            }
        return {"Accounts": [inp.account_id]}

    def _replace(self, inp: DeployBaselineInput, regions: list[str], attempt: int) -> str:
        """Delete the drifted instances (their stacks too), under this request's next unused
        replacement id; the next round creates them again from the StackSet's template."""
        name = inp.baseline.stack_set_name
        backoff = Backoff(self.poll_interval_seconds, self.poll_interval_seconds * 2)
        while True:
            op_id = self._replace_id(inp, attempt)
            try:
                self.cloudformation.delete_stack_instances(
                    StackSetName=name,
                    Regions=regions,
                    RetainStacks=False,
                    OperationId=op_id,
                    **self._targets(inp),
                    **self._call_as(inp),
                )
                beat(op_id)
                return op_id
            except ClientError as err:
                code = error_code(err)
                if code == "OperationIdAlreadyExistsException" and attempt < OPERATION_IDS:
                    attempt += 1  # used by an earlier, ended round of this request
                    continue
                if code != "OperationInProgressException" and not is_transient(err):
                    raise
            backoff.wait(f"StackSet {name}")
            # Throttled, the delete may have started after all (it carries our id): look.
            if running := self._patient(lambda: self._running_operation(inp), name):
                return running

    def _deploy(
        self, inp: DeployBaselineInput, missing: list[str], stale: list[str], attempt: int
    ) -> str:
        prefs = inp.preferences
        common: dict[str, Any] = {
            "StackSetName": inp.baseline.stack_set_name,
            "ParameterOverrides": [
                {"ParameterKey": k, "ParameterValue": v} for k, v in inp.baseline.parameters.items()
            ],
            "OperationPreferences": {
                "FailureToleranceCount": prefs.failure_tolerance_count,
                "MaxConcurrentCount": prefs.max_concurrent_count,
                "RegionConcurrencyType": prefs.region_concurrency_type,
            },
            "OperationId": self._operation_id(inp, attempt),
            **self._call_as(inp),
        }
        common.update(self._targets(inp))
        name = inp.baseline.stack_set_name
        backoff = Backoff(self.poll_interval_seconds, self.poll_interval_seconds * 2)
        while True:
            try:
                if missing:
                    created = self.cloudformation.create_stack_instances(Regions=missing, **common)
                else:
                    created = self.cloudformation.update_stack_instances(Regions=stale, **common)
                return str(created["OperationId"])
            except ClientError as err:
                if error_code(err) == "OperationIdAlreadyExistsException":
                    # AWS keeps every id: this attempt's was used by an operation of this request
                    # (the step retried by an operator restarts at attempt 1). Running, it is
                    # ours to wait for; ended, the next id is.
                    used = common["OperationId"]
                    if self._patient(lambda: self._running_operation(inp), name) == used:
                        return str(used)
                    attempt += 1
                    if attempt > OPERATION_IDS:
                        raise
                    common["OperationId"] = self._operation_id(inp, attempt)
                    continue
                if error_code(err) != "OperationInProgressException" and not is_transient(err):
                    raise
                # Throttled: the create may still have started (it carries our operation id),
                # so look before asking again.
                throttled = error_code(err) != "OperationInProgressException"
                if throttled and (
                    running := self._patient(lambda: self._running_operation(inp), name)
                ):
                    return running
            # Another request's operation holds the StackSet (AWS runs one at a time): wait for
            # it here, heartbeating, rather than spend the step's retry budget on a busy signal.
            # Backing off matters: many requests on one StackSet would otherwise poll it hard
            # enough to be throttled.
            backoff.wait(f"StackSet {name}")

    def _wait(self, inp: DeployBaselineInput, operation_id: str) -> None:
        name = inp.baseline.stack_set_name
        beat(operation_id)
        op = until(
            lambda: self.cloudformation.describe_stack_set_operation(
                StackSetName=name, OperationId=operation_id, **self._call_as(inp)
            )["StackSetOperation"],
            lambda found: found["Status"] in ("SUCCEEDED", "FAILED", "STOPPED"),
            self.poll_interval_seconds,
            waiting_for=f"StackSet {name}",
        )
        if op["Status"] == "SUCCEEDED":
            return
        results = self.cloudformation.list_stack_set_operation_results(
            StackSetName=name, OperationId=operation_id, **self._call_as(inp)
        )["Summaries"]
        reasons = "; ".join(
            f"{r['Account']}/{r['Region']}: {r.get('StatusReason') or r['Status']}"
            for r in results
            if r["Status"] != "SUCCEEDED"
        )
        raise ApplicationError(
            f"StackSet {name} operation {op['Status']}: {reasons or 'no reason given'}",
            type="StackSetOperationFailed",
            non_retryable=True,
        )

    @activity.defn(no_thread_cancel_exception=True)
    def remove_baseline(self, inp: DeployBaselineInput) -> DeployBaselineResult:
        """Delete this account's instances of a baseline StackSet (compensation)."""
        info = activity.info()
        name = inp.baseline.stack_set_name
        try:
            if info.heartbeat_details:
                # An earlier attempt started a deletion (and said so at once): let it finish
                # rather than ask for another while it runs.
                self._wait(inp, str(info.heartbeat_details[0]))
            regions = sorted(self._instances(inp))
            if not regions:
                return DeployBaselineResult.nothing_to_do(name, info.attempt)
            targets, round_ = self._targets(inp), 1
            while True:
                # The request's own id for its n-th deletion: an attempt whose heartbeat was
                # lost asks again under the same id and learns the deletion exists, instead of
                # starting a second one once the first has ended (a list, then a delete, races
                # the first deletion's end).
                op = self._remove_id(inp, round_)
                try:
                    self.cloudformation.delete_stack_instances(
                        StackSetName=name,
                        Regions=regions,
                        RetainStacks=False,
                        OperationId=op,
                        **targets,
                        **self._call_as(inp),
                    )
                    beat(op)
                    break
                except ClientError as err:
                    code = error_code(err)
                    if code == "OperationIdAlreadyExistsException" and round_ < OPERATION_IDS:
                        self._wait(inp, op)  # ours, from an earlier attempt: let it end
                        round_ += 1
                    elif code != "OperationInProgressException":
                        raise
                    else:
                        Backoff(self.poll_interval_seconds, self.poll_interval_seconds).wait(
                            f"StackSet {name}"
                        )
                regions = sorted(self._instances(inp))
                if not regions:
                    return DeployBaselineResult.nothing_to_do(name, info.attempt)
            self._wait(inp, op)
        except ClientError as err:
            raise to_application_error(err, action=f"DeleteStackInstances {name}") from err
        return DeployBaselineResult(
            stack_set_name=name,
            operation_id=str(op),
            regions_deployed=regions,
            already_current=False,
            attempt=info.attempt,
        )


def _status(summary: dict[str, Any] | None) -> str:
    return "" if summary is None else str(summary["Status"])
