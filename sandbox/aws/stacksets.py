"""StackSet operations that take time, overlap like AWS's, and can fail per instance.

moto finishes every StackSet operation at once and never refuses an overlapping one; AWS runs
them for minutes, answers OperationInProgressException to a second operation on the same
StackSet, and can leave individual instances OUTDATED with a reason. moto also ignores the
caller's ``OperationId`` (AWS keeps it, and refuses it a second time with
OperationIdAlreadyExistsException: what makes a retried call safe) and updates a StackSet's
template without leaving the instances it did not touch OUTDATED, as AWS does.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import responses as cfn_responses
from moto.cloudformation.exceptions import CloudFormationError
from moto.core.responses import ActionResult

from sandbox.aws import stack_drift
from sandbox.aws.faults import FaultPlan, release


class OperationInProgressException(CloudFormationError):
    code = "OperationInProgressException"


class OperationIdAlreadyExistsException(CloudFormationError):
    code = "OperationIdAlreadyExistsException"


class InvalidOperationException(CloudFormationError):
    code = "InvalidOperationException"


PAGE = 100  # ListStackInstances' largest page (MaxResults)


# An operation's status as its instance results say it (StackSetOperationResultStatus).
_RESULT_STATUS = {"STOPPED": "CANCELLED", "STOPPING": "RUNNING", "QUEUED": "PENDING"}


@dataclass
class Pending:
    stack_set: Any
    operation_id: str
    ready_at: float
    failure: str | None
    instances: list[tuple[str, str]]
    held: bool = False  # paused by the fault plan until /_sandbox/release
    version: int = 0  # the StackSet's template version the instances reach on success
    on_success: Callable[[], None] | None = None  # what the operation does when it ends well
    action: str = ""
    stopped: bool = False  # StopStackSetOperation asked: ends STOPPED, its instances as they were
    # Instances AWS could not act on (no execution role in the account, an SCP): their reasons.
    refused: dict[tuple[str, str], str] = field(default_factory=dict)
    tolerance: int = 0  # failed accounts the operation tolerates (FailureTolerance...)


@dataclass
class StackSetRealism:
    faults: FaultPlan
    operation_seconds: float = 1.0
    pending: dict[str, Pending] = field(default_factory=dict)
    # (stack set id, account, region) -> (status, detailed status, reason) while not CURRENT
    instance_status: dict[tuple[str, str, str], tuple[str, str, str | None]] = field(
        default_factory=dict
    )
    reasons: dict[str, str] = field(default_factory=dict)  # operation id -> failure reason
    # The template version of each StackSet and of each instance: an instance behind its
    # StackSet is OUTDATED until an operation brings it up.
    versions: dict[str, int] = field(default_factory=dict)
    instance_versions: dict[tuple[str, str, str], int] = field(default_factory=dict)
    requested_id: str | None = None  # the OperationId of the call being served
    # How long an operation takes beyond ``operation_seconds``: AWS deploys each region's
    # instances ``concurrency`` at a time (OperationPreferences; one at a time by default), and
    # the regions one after another unless RegionConcurrencyType is PARALLEL. 0: a flat time.
    instance_seconds: float = 0.0
    requested_preferences: dict[str, str] = field(default_factory=dict)
    # What each instance's stack deployed (recorded when an operation leaves it deployed), and
    # what the last DetectStackSetDrift found for it: (IN_SYNC | DRIFTED, when).
    deployed: dict[tuple[str, str, str], stack_drift.Snapshot] = field(default_factory=dict)
    drift: dict[tuple[str, str, str], tuple[str, datetime]] = field(default_factory=dict)
    # Why AWS could not act on one instance (stack set, account, action) -> reason or None;
    # the server sets it (execution roles and SCPs live in IAM and Organizations).
    refuse_instance: Callable[[Any, str, str], str | None] | None = None
    # operation id -> {(account, region): reason} for the instances it could not act on
    instance_reasons: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()

    def tick(self) -> None:
        with self._lock:
            now = time.time()
            for op_id, p in list(self.pending.items()):
                if p.held or now < p.ready_at:
                    continue
                operation = p.stack_set.get_operation(op_id)
                operation["EndTimestamp"] = datetime.now(UTC)  # moto's is made up at creation
                if p.stopped:
                    operation["Status"] = "STOPPED"
                    for account, region in p.instances:
                        key = (p.stack_set.id, account, region)
                        self.instance_status[key] = ("OUTDATED", "CANCELLED", "User stopped")
                    del self.pending[op_id]
                    continue
                failed_accounts = {a for a, _ in p.refused}
                refused_too_many = len(failed_accounts) > p.tolerance
                operation["Status"] = "FAILED" if p.failure or refused_too_many else "SUCCEEDED"
                for account, region in p.instances:
                    key = (p.stack_set.id, account, region)
                    failure = p.failure or p.refused.get((account, region))
                    if failure:
                        self.instance_status[key] = ("OUTDATED", "FAILED", failure)
                    else:
                        self.instance_status.pop(key, None)
                        self.instance_versions[key] = p.version
                if p.on_success is not None and not p.failure:
                    if p.refused:
                        # A deletion removes the instances it could act on; the rest stay.
                        for account, region in p.instances:
                            if (account, region) not in p.refused:
                                p.stack_set.instances.delete([account], [region])
                    else:
                        p.on_success()
                if not p.failure and p.action != "DetectStackSetDrift":
                    self._record_deployed(p)
                del self.pending[op_id]

    def _record_deployed(self, p: Pending) -> None:
        """An operation that deployed (or deleted) instances: what they hold now is what drift
        is measured against, and the last detection no longer says anything about them."""
        live = {(i.account_id, i.region_name): i for i in p.stack_set.stack_instances}
        for account, region in p.instances:
            key = (p.stack_set.id, account, region)
            self.drift.pop(key, None)
            instance = live.get((account, region))
            if instance is None:
                self.deployed.pop(key, None)
            else:
                self.deployed[key] = stack_drift.snapshot(instance)

    def detect_drift(self, stack_set: Any) -> str:
        """DetectStackSetDrift: an operation like the others (one per StackSet at a time, the
        caller's id kept), which on its end records each instance's drift status."""
        instances = list(stack_set.stack_instances)
        return self._operation(
            stack_set,
            ("DETECT_DRIFT", "DetectStackSetDrift"),
            sorted({i.account_id for i in instances}),
            sorted({i.region_name for i in instances}),
            lambda: self._detect(stack_set),
        )

    def _operation(
        self,
        stack_set: Any,
        action: tuple[str, str],
        accounts: list[str],
        regions: list[str],
        on_success: Callable[[], None],
    ) -> str:
        """An operation moto has no asynchronous life for: made here, under the caller's id,
        tracked like the others, doing ``on_success`` when it ends well. ``action``: its name
        in the operation, and the API's (what the fault plan matches)."""
        with self._lock:
            self._refuse_overlap(stack_set)
            op_id = self.requested_id or str(uuid.uuid4())
            stack_set._create_operation(
                operation_id=op_id,
                action=action[0],
                status="RUNNING",
                accounts=accounts,
                regions=regions,
            )
            self._track(stack_set, op_id, accounts, regions, action[1])
            self.pending[op_id].on_success = on_success
            return op_id

    def stop(self, stack_set: Any, operation_id: str) -> None:
        """StopStackSetOperation: AWS lets the instances in flight finish and starts no more,
        then the operation is STOPPED; the instances it did not reach stay as they were
        (here: none is reached, the operation ends STOPPED a moment later)."""
        with self._lock:
            self.tick()
            p = self.pending.get(operation_id)
            if p is None or p.stack_set is not stack_set:
                stack_set.get_operation(operation_id)  # ValidationError when unknown
                raise InvalidOperationException(f"Operation {operation_id} is not running")
            p.stopped = True
            p.held = False
            p.ready_at = min(p.ready_at, time.time() + 0.2)
            stack_set.get_operation(operation_id)["Status"] = "STOPPING"

    def _detect(self, stack_set: Any) -> None:
        now = datetime.now(UTC)
        for instance in stack_set.stack_instances:
            key = (stack_set.id, instance.account_id, instance.region_name)
            # An instance this sandbox never saw deployed (made before it recorded any):
            # what it holds now is taken as what was deployed.
            deployed = self.deployed.setdefault(key, stack_drift.snapshot(instance))
            status = "DRIFTED" if stack_drift.drifted(instance, deployed) else "IN_SYNC"
            self.drift[key] = (status, now)

    def update_instances(self, original: Any, stack_set: Any, *args: Any, **kw: Any) -> Any:
        """UpdateStackInstances: the same asynchronous life as a create."""
        accounts, regions = (
            (list(args[0]), list(args[1])) if args else (kw["accounts"], kw["regions"])
        )
        with self._lock:
            self._refuse_overlap(stack_set)
            operation: dict[str, Any] = original(stack_set, *args, **kw)
            operation["OperationId"] = self._rename(stack_set, operation["OperationId"])
            self._track(
                stack_set, operation["OperationId"], accounts, regions, "UpdateStackInstances"
            )
            return operation

    def _refuse_overlap(self, stack_set: Any) -> None:
        self.tick()
        wanted = self.requested_id
        if wanted and any(op["OperationId"] == wanted for op in stack_set.operations):
            raise OperationIdAlreadyExistsException(
                f"The operation id {wanted} already exists for StackSet {stack_set.name}"
            )
        if any(p.stack_set is stack_set for p in self.pending.values()):
            raise OperationInProgressException(
                f"Another Operation on StackSet {stack_set.id} is in progress"
            )

    def _rename(self, stack_set: Any, generated: str) -> str:
        """Give the operation moto just made the id the caller asked for, as AWS does."""
        wanted = self.requested_id
        if not wanted:
            return generated
        stack_set.get_operation(generated)["OperationId"] = wanted
        return wanted

    def update_stack_set(self, original: Any, stack_set: Any, **kw: Any) -> dict[str, Any]:
        """UpdateStackSet: a new template version; the listed accounts and regions (all the
        instances when none are listed) are brought to it by the operation, the rest stay
        behind, OUTDATED, until an UpdateStackInstances reaches them."""
        with self._lock:
            self._refuse_overlap(stack_set)
            accounts, regions = list(kw.get("accounts") or []), list(kw.get("regions") or [])
            if not (accounts and regions):
                pairs = [(i.account_id, i.region_name) for i in stack_set.stack_instances]
                accounts = sorted({a for a, _ in pairs})
                regions = sorted({r for _, r in pairs})
            kw["accounts"], kw["regions"] = [], []  # moto would update them at once
            kw["operation_id"] = kw.get("operation_id") or str(uuid.uuid4())
            operation: dict[str, Any] = original(stack_set, **kw)
            self.versions[stack_set.id] = self._version(stack_set) + 1
            self._track(stack_set, operation["OperationId"], accounts, regions, "UpdateStackSet")
            return operation

    def _version(self, stack_set: Any) -> int:
        return self.versions.get(stack_set.id, 0)

    def _track(
        self, stack_set: Any, op_id: str, accounts: list[str], regions: list[str], action: str
    ) -> None:
        body = f"{stack_set.name} {' '.join(accounts)}"
        rule = self.faults.take("cloudformation", action, body, "failure_reason")
        stack_set.get_operation(op_id)["Status"] = "RUNNING"
        detection = action == "DetectStackSetDrift"
        instances = [] if detection else [(a, r) for a in accounts for r in regions]
        for account, region in instances:
            self.instance_status[(stack_set.id, account, region)] = ("OUTDATED", "RUNNING", None)
        failure = rule.failure_reason if rule else None
        if failure:
            self.reasons[op_id] = failure
        held = self.faults.take("cloudformation", action, body, "hold") is not None
        existing = {(i.account_id, i.region_name) for i in stack_set.stack_instances}
        instances = [pair for pair in instances if pair in existing or action.startswith("Create")]
        refused = self._refused(stack_set, instances, action)
        if refused:
            self.instance_reasons[op_id] = refused
        self.pending[op_id] = Pending(
            stack_set,
            op_id,
            time.time() + self.operation_seconds + self._deploy_seconds(accounts, regions),
            failure,
            instances,
            held,
            version=self._version(stack_set),
            action=action,
            refused=refused,
            tolerance=self._tolerance(accounts),
        )

    def _refused(
        self, stack_set: Any, instances: list[tuple[str, str]], action: str
    ) -> dict[tuple[str, str], str]:
        if self.refuse_instance is None or action == "DetectStackSetDrift":
            return {}
        by_account: dict[str, str | None] = {}
        for account, _ in instances:
            if account not in by_account:
                by_account[account] = self.refuse_instance(stack_set, account, action)
        return {
            (account, region): why
            for account, region in instances
            if (why := by_account[account]) is not None
        }

    def _tolerance(self, accounts: list[str]) -> int:
        prefs = self.requested_preferences
        if prefs.get("FailureToleranceCount"):
            return int(prefs["FailureToleranceCount"])
        if prefs.get("FailureTolerancePercentage"):
            return len(accounts) * int(prefs["FailureTolerancePercentage"]) // 100
        return 0

    def _deploy_seconds(self, accounts: list[str], regions: list[str]) -> float:
        if not self.instance_seconds or not accounts:
            return 0.0
        prefs = self.requested_preferences
        if prefs.get("MaxConcurrentCount"):
            concurrency = int(prefs["MaxConcurrentCount"])
        elif prefs.get("MaxConcurrentPercentage"):
            concurrency = len(accounts) * int(prefs["MaxConcurrentPercentage"]) // 100
        else:
            concurrency = 1
        rounds = math.ceil(len(accounts) / max(1, concurrency))
        if prefs.get("RegionConcurrencyType") != "PARALLEL":
            rounds *= max(1, len(regions))
        return rounds * self.instance_seconds

    def release_holds(self) -> int:
        with self._lock:
            released = release(self.pending.values())
        self.tick()
        return released

    def create_stack_instances(self, original: Any, stack_set: Any, **kw: Any) -> str:
        with self._lock:
            self._refuse_overlap(stack_set)
            op_id: str = self._rename(stack_set, original(stack_set, **kw))
            accounts, regions = list(kw.get("accounts") or []), list(kw.get("regions") or [])
            self._track(stack_set, op_id, accounts, regions, "CreateStackInstances")
            return op_id

    def delete_stack_instances(
        self, stack_set: Any, accounts: list[str], regions: list[str]
    ) -> None:
        """DeleteStackInstances as AWS runs it: an operation that takes a while (and may be held
        or fail by the fault plan), the instances gone only once it has succeeded."""
        self._operation(
            stack_set,
            ("DELETE", "DeleteStackInstances"),
            accounts,
            regions,
            lambda: stack_set.instances.delete(accounts, regions),
        )

    def instance_dict(self, original: Any, instance: Any) -> dict[str, Any]:
        self.tick()
        out: dict[str, Any] = original(instance)
        key = (instance.stackset_id, instance.account_id, instance.region_name)
        override = self.instance_status.get(key)
        if override is None and self.instance_versions.get(key, 0) < self.versions.get(
            instance.stackset_id, 0
        ):
            override = ("OUTDATED", "PENDING", None)  # its StackSet moved on without it
        if override:
            status, detailed, reason = override
            out["Status"] = status
            out["StackInstanceStatus"] = {"DetailedStatus": detailed}
            if reason:
                out["StatusReason"] = reason
        drift = self.drift.get(key)
        out["DriftStatus"] = drift[0] if drift else "NOT_CHECKED"
        if drift:
            out["LastDriftCheckTimestamp"] = drift[1]
        return out


def install(realism: StackSetRealism) -> None:
    original_create = cfn_models.StackSet.create_stack_instances
    original_update = cfn_models.StackSet.update_instances
    original_to_dict = cfn_models.StackInstance.to_dict
    original_results = cfn_responses.CloudFormationResponse.list_stack_set_operation_results
    original_describe = cfn_models.CloudFormationBackend.describe_stack_set_operation
    original_update_set = cfn_models.StackSet.update

    def update_set(self: Any, **kw: Any) -> Any:
        return realism.update_stack_set(original_update_set, self, **kw)

    def create(self: Any, **kw: Any) -> str:
        return realism.create_stack_instances(original_create, self, **kw)

    def update(self: Any, *args: Any, **kw: Any) -> Any:
        return realism.update_instances(original_update, self, *args, **kw)

    def delete(self: Any, accounts: list[str], regions: list[str]) -> None:
        realism.delete_stack_instances(self, list(accounts), list(regions))

    def to_dict(self: Any) -> dict[str, Any]:
        return realism.instance_dict(original_to_dict, self)

    def describe(self: Any, *args: Any, **kw: Any) -> Any:
        realism.tick()
        return original_describe(self, *args, **kw)

    def results(self: Any) -> Any:
        realism.tick()
        result = original_results(self)
        reason = realism.reasons.get(self._get_param("OperationId"))
        refused = realism.instance_reasons.get(self._get_param("OperationId"), {})
        summaries: list[dict[str, Any]] = result.result["Summaries"]  # type: ignore[index]
        for summary in summaries:
            # moto copies the operation's status; a result has statuses of its own (a stopped
            # operation's instances were CANCELLED, one AWS could not act on FAILED).
            summary["Status"] = _RESULT_STATUS.get(summary.get("Status", ""), summary.get("Status"))
            why = refused.get((summary.get("Account", ""), summary.get("Region", "")))
            if why and summary["Status"] in ("SUCCEEDED", "FAILED"):
                summary["Status"] = "FAILED"
                summary["StatusReason"] = why
            elif why is None and summary["Status"] == "FAILED" and not reason:
                summary["Status"] = "SUCCEEDED"  # the operation failed for the others
            if reason:
                summary["StatusReason"] = reason
        return result

    def list_instances(self: Any) -> ActionResult:
        """ListStackInstances as AWS answers it: the StackInstanceAccount and StackInstanceRegion
        filters honoured, and pages (MaxResults, at most 100, and NextToken), where moto returns
        every instance of the StackSet at once. Only the page's instances are rendered."""
        realism.tick()
        stack_set = self.cloudformation_backend.describe_stack_set(self._get_param("StackSetName"))
        account = self._get_param("StackInstanceAccount")
        region = self._get_param("StackInstanceRegion")
        chosen = [
            i
            for i in stack_set.instances.stack_instances
            if (not account or i.account_id == account) and (not region or i.region_name == region)
        ]
        size = min(int(self._get_param("MaxResults") or PAGE), PAGE)
        start = int(self._get_param("NextToken") or 0)
        result: dict[str, Any] = {"Summaries": [i.to_dict() for i in chosen[start : start + size]]}
        if start + size < len(chosen):
            result["NextToken"] = str(start + size)
        return ActionResult(result)

    def list_operations(self: Any) -> ActionResult:
        """ListStackSetOperations in pages (MaxResults, at most 100, and NextToken), newest
        first, as AWS answers; moto returns every operation at once."""
        realism.tick()
        found = self.cloudformation_backend.list_stack_set_operations(
            self._get_param("StackSetName")
        )
        newest = sorted(found, key=lambda o: str(o.get("CreationTimestamp", "")), reverse=True)
        size = min(int(self._get_param("MaxResults") or PAGE), PAGE)
        start = int(self._get_param("NextToken") or 0)
        result: dict[str, Any] = {"Summaries": newest[start : start + size]}
        if start + size < len(newest):
            result["NextToken"] = str(start + size)
        return ActionResult(result)

    def detect_stack_set_drift(self: Any) -> ActionResult:
        stack_set = self.cloudformation_backend.describe_stack_set(self._get_param("StackSetName"))
        return ActionResult({"OperationId": realism.detect_drift(stack_set)})

    def stop(self: Any, stackset_name: str, operation_id: str) -> None:
        realism.stop(self.describe_stack_set(stackset_name), operation_id)

    setattr(  # noqa: B010
        cfn_responses.CloudFormationResponse, "detect_stack_set_drift", detect_stack_set_drift
    )
    setattr(cfn_models.CloudFormationBackend, "stop_stack_set_operation", stop)  # noqa: B010
    setattr(cfn_responses.CloudFormationResponse, "list_stack_instances", list_instances)  # noqa: B010
    setattr(cfn_responses.CloudFormationResponse, "list_stack_set_operations", list_operations)  # noqa: B010
    for action in (
        "detect_stack_set_drift",
        "create_stack_instances",
        "update_stack_instances",
        "update_stack_set",
        "delete_stack_instances",
    ):
        _with_operation_id(realism, action)
    setattr(cfn_models.StackSet, "update", update_set)  # noqa: B010
    setattr(cfn_models.StackSet, "create_stack_instances", create)  # noqa: B010
    setattr(cfn_models.StackSet, "update_instances", update)  # noqa: B010
    setattr(cfn_models.StackSet, "delete_stack_instances", delete)  # noqa: B010
    setattr(cfn_models.StackInstance, "to_dict", to_dict)  # noqa: B010
    setattr(cfn_models.CloudFormationBackend, "describe_stack_set_operation", describe)  # noqa: B010
    setattr(  # noqa: B010
        cfn_responses.CloudFormationResponse, "list_stack_set_operation_results", results
    )


def _with_operation_id(realism: StackSetRealism, action: str) -> None:
    """Serve the action with the caller's OperationId in view of the model's hooks."""
    original = getattr(cfn_responses.CloudFormationResponse, action)

    def serve(self: Any) -> Any:
        with realism._lock:
            realism.requested_id = self._get_param("OperationId") or None
            realism.requested_preferences = {
                key: str(value)
                for key in (
                    "MaxConcurrentCount",
                    "MaxConcurrentPercentage",
                    "RegionConcurrencyType",
                    "FailureToleranceCount",
                    "FailureTolerancePercentage",
                )
                if (value := self._get_param(f"OperationPreferences.{key}"))
            }
            try:
                return original(self)
            finally:
                realism.requested_id = None
                realism.requested_preferences = {}

    setattr(cfn_responses.CloudFormationResponse, action, serve)
