"""What moto lacks for the account settings, emulated with AWS's shapes, asynchrony and errors:

- IAM Identity Center assignments (moto makes them at once and accepts any permission set or
  principal): ``CreateAccountAssignment`` answers IN_PROGRESS and the assignment exists only
  once its time has come (``assignment_seconds``); an unknown permission set or principal ends
  FAILED with AWS's reason; the same assignment twice is one assignment. Holdable and failable
  by the fault plan (service ``sso``, action ``CreateAccountAssignment``).
- The Account API's regions (moto has none): ``EnableRegion``/``DisableRegion`` are
  asynchronous (ENABLING/DISABLING for ``region_seconds``, holdable), ``GetRegionOptStatus``,
  ``ListRegions``; a default region cannot be enabled or disabled (ValidationException), one
  that is being disabled cannot be enabled (ConflictException).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.iam.exceptions import EntityAlreadyExists
from moto.iam.models import IAMBackend, iam_backends
from moto.identitystore.models import identitystore_backends
from moto.ssoadmin.models import ssoadmin_backends

from common.account_settings import OPT_IN_REGIONS
from sandbox.aws.faults import FaultPlan

# The regions every account has from the start.
DEFAULT_REGIONS: tuple[str, ...] = (
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)


class SettingsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class PendingAssignment:
    request_id: str
    params: dict[str, str]
    ready_at: float
    failure: str | None
    held: bool
    applied: bool = False


@dataclass
class RegionChange:
    status: str  # ENABLING | DISABLING
    ready_at: float
    held: bool


@dataclass
class AccountSettingsEmulator:
    faults: FaultPlan
    assignment_seconds: float = 1.0
    region_seconds: float = 2.0
    assignments: dict[str, PendingAssignment] = field(default_factory=dict)
    # account -> region -> DISABLED | ENABLED, with changes in flight apart
    opted: dict[str, dict[str, str]] = field(default_factory=dict)
    changes: dict[tuple[str, str], RegionChange] = field(default_factory=dict)
    enable_calls: dict[str, int] = field(default_factory=dict)  # account -> EnableRegion calls

    def __post_init__(self) -> None:
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ Identity Center
    @staticmethod
    def _sso_backend(instance_arn: str) -> Any:
        for by_region in ssoadmin_backends.values():
            for backend in by_region.values():
                if any(i.instance_arn == instance_arn for i in backend.list_instances()):
                    return backend
        raise SettingsError(400, "ValidationException", f"no instance {instance_arn}")

    @staticmethod
    def _principal_exists(store_id: str, kind: str, principal_id: str) -> bool:
        for by_region in identitystore_backends.values():
            for backend in by_region.values():
                store = backend.identity_stores.get(store_id)
                if store is None:
                    continue
                found = store.groups if kind == "GROUP" else store.users
                return principal_id in found
        return False

    def create_assignment(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            backend = self._sso_backend(str(req.get("InstanceArn")))
            instance = next(
                i for i in backend.list_instances() if i.instance_arn == req["InstanceArn"]
            )
            params = {
                k: str(req.get(k, ""))
                for k in (
                    "InstanceArn",
                    "TargetId",
                    "TargetType",
                    "PermissionSetArn",
                    "PrincipalType",
                    "PrincipalId",
                )
            }
            failure = None
            try:
                backend._find_permission_set(params["InstanceArn"], params["PermissionSetArn"])
            except Exception:
                failure = f"Permission set {params['PermissionSetArn']} does not exist"
            if failure is None and not self._principal_exists(
                instance.identity_store_id, params["PrincipalType"], params["PrincipalId"]
            ):
                failure = f"{params['PrincipalType']} {params['PrincipalId']} does not exist"
            body = " ".join(params.values())
            rule = self.faults.take("sso", "CreateAccountAssignment", body, "failure_reason")
            failure = failure or (rule.failure_reason if rule else None)
            held = self.faults.take("sso", "CreateAccountAssignment", body, "hold") is not None
            pending = PendingAssignment(
                request_id=str(uuid.uuid4()),
                params=params,
                ready_at=time.time() + self.assignment_seconds,
                failure=failure,
                held=held,
            )
            self.assignments[pending.request_id] = pending
            return {"AccountAssignmentCreationStatus": self._status(pending)}

    def describe_assignment(self, req: dict[str, Any]) -> dict[str, Any]:
        self.tick()
        with self._lock:
            pending = self.assignments.get(str(req.get("AccountAssignmentCreationRequestId")))
            if pending is None:
                raise SettingsError(
                    400, "ResourceNotFoundException", "no such assignment creation request"
                )
            return {"AccountAssignmentCreationStatus": self._status(pending)}

    def list_assignment_creations(self, req: dict[str, Any]) -> dict[str, Any]:
        self.tick()
        with self._lock:
            wanted = (req.get("Filter") or {}).get("Status")
            items = []
            for pending in self.assignments.values():
                if pending.params["InstanceArn"] != req.get("InstanceArn"):
                    continue
                status = self._status(pending)
                if wanted and status["Status"] != wanted:
                    continue
                items.append({"RequestId": pending.request_id, "Status": status["Status"]})
            return {"AccountAssignmentsCreationStatus": items}

    def tick(self) -> None:
        """Assignments whose time has come exist (AWS makes them whether or not anyone polls)."""
        with self._lock:
            now = time.time()
            for pending in self.assignments.values():
                if pending.applied or pending.held or now < pending.ready_at or pending.failure:
                    continue
                p = pending.params
                backend = self._sso_backend(p["InstanceArn"])
                pending.applied = True
                there = [
                    a
                    for a in backend.account_assignments
                    if (a.instance_arn, a.target_id, a.permission_set_arn, a.principal_id)
                    == (p["InstanceArn"], p["TargetId"], p["PermissionSetArn"], p["PrincipalId"])
                ]
                if there:
                    continue  # the same assignment twice is one
                backend.create_account_assignment(
                    instance_arn=p["InstanceArn"],
                    target_id=p["TargetId"],
                    target_type=p["TargetType"],
                    permission_set_arn=p["PermissionSetArn"],
                    principal_type=p["PrincipalType"],
                    principal_id=p["PrincipalId"],
                )
                name = backend._find_permission_set(p["InstanceArn"], p["PermissionSetArn"]).name
                provision_permission_set_role(p["TargetId"], name)

    def _status(self, pending: PendingAssignment) -> dict[str, Any]:
        p = pending.params
        out: dict[str, Any] = {
            "RequestId": pending.request_id,
            "TargetId": p["TargetId"],
            "TargetType": p["TargetType"],
            "PermissionSetArn": p["PermissionSetArn"],
            "PrincipalType": p["PrincipalType"],
            "PrincipalId": p["PrincipalId"],
            "Status": "IN_PROGRESS",
        }
        if time.time() >= pending.ready_at and not pending.held:
            if pending.failure:
                out.update(Status="FAILED", FailureReason=pending.failure)
            else:
                out["Status"] = "SUCCEEDED"
        return out

    # ------------------------------------------------------------------ Account API regions
    def region_status(self, account_id: str, region: str) -> str:
        if region in DEFAULT_REGIONS:
            return "ENABLED_BY_DEFAULT"
        if region not in OPT_IN_REGIONS:
            raise SettingsError(400, "ValidationException", f"unknown region {region}")
        change = self.changes.get((account_id, region))
        if change is not None:
            if change.held or time.time() < change.ready_at:
                return change.status
            done = "ENABLED" if change.status == "ENABLING" else "DISABLED"
            self.opted.setdefault(account_id, {})[region] = done
            del self.changes[(account_id, region)]
        return self.opted.get(account_id, {}).get(region, "DISABLED")

    def region_call(self, action: str, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            account_id = str(req.get("AccountId", ""))
            if action == "ListRegions":
                wanted = set(req.get("RegionOptStatusContains") or [])
                regions = [
                    {"RegionName": r, "RegionOptStatus": self.region_status(account_id, r)}
                    for r in (*DEFAULT_REGIONS, *OPT_IN_REGIONS)
                ]
                return {
                    "Regions": [r for r in regions if not wanted or r["RegionOptStatus"] in wanted]
                }
            region = str(req.get("RegionName", ""))
            status = self.region_status(account_id, region)
            if action == "GetRegionOptStatus":
                return {"RegionName": region, "RegionOptStatus": status}
            if status == "ENABLED_BY_DEFAULT":
                raise SettingsError(400, "ValidationException", f"{region} is enabled by default")
            enable = action == "EnableRegion"
            if enable:
                self.enable_calls[account_id] = self.enable_calls.get(account_id, 0) + 1
            if (enable and status == "DISABLING") or (not enable and status == "ENABLING"):
                raise SettingsError(
                    409, "ConflictException", f"{region} is {status.lower()} already"
                )
            if status in (("ENABLED", "ENABLING") if enable else ("DISABLED", "DISABLING")):
                return {}
            body = f"{account_id} {region}"
            self.changes[(account_id, region)] = RegionChange(
                status="ENABLING" if enable else "DISABLING",
                ready_at=time.time() + self.region_seconds,
                held=self.faults.take("account", action, body, "hold") is not None,
            )
            return {}

    def release_holds(self) -> int:
        with self._lock:
            now = time.time()
            released = 0
            for pending in self.assignments.values():
                if pending.held:
                    pending.held, pending.ready_at = False, min(pending.ready_at, now)
                    released += 1
            for change in self.changes.values():
                if change.held:
                    change.held, change.ready_at = False, min(change.ready_at, now)
                    released += 1
        self.tick()
        return released

    def held(self) -> int:
        return sum(p.held for p in self.assignments.values()) + sum(
            c.held for c in self.changes.values()
        )

    def record(self) -> dict[str, Any]:
        with self._lock:
            return {
                "enable_region_calls": dict(self.enable_calls),
                "assignment_requests": len(self.assignments),
                "assignments": [
                    {
                        "request_id": p.request_id,
                        "account": p.params["TargetId"],
                        "permission_set": p.params["PermissionSetArn"],
                        "principal": p.params["PrincipalId"],
                        "status": self._status(p)["Status"],
                    }
                    for p in self.assignments.values()
                ],
                "opted": {a: dict(r) for a, r in self.opted.items()},
            }


_ORIGINAL_CREATE_ALIAS = IAMBackend.create_account_alias


def install_alias_uniqueness() -> None:
    """As IAM: an account alias is unique across AWS (moto lets two accounts share one)."""

    def create_account_alias(self: IAMBackend, alias: str) -> None:
        for account_id, by_partition in list(iam_backends.items()):
            other = by_partition.get("global")
            if account_id != self.account_id and other and alias in other.account_aliases:
                raise EntityAlreadyExists(f"The account alias {alias} already exists.")
        _ORIGINAL_CREATE_ALIAS(self, alias)

    IAMBackend.create_account_alias = create_account_alias  # type: ignore[method-assign]


SSO_ROLE_PATH = "/aws-reserved/sso.amazonaws.com/"
_SSO_TRUST = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":'
    '"arn:aws:iam::{account}:saml-provider/AWSSSO_DO_NOT_DELETE"},'
    '"Action":["sts:AssumeRoleWithSAML","sts:TagSession"]}]}'
)


def sso_role_name(permission_set: str) -> str:
    """The role Identity Center provisions for a permission set in an account it is assigned in
    (``AWSReservedSSO_<name>_<16 hex>``, the hex fixed per name here)."""
    digest = uuid.uuid5(uuid.NAMESPACE_URL, permission_set).hex[:16]
    return f"AWSReservedSSO_{permission_set}_{digest}"


def provision_permission_set_role(account_id: str, permission_set: str) -> None:
    """As Identity Center does on a first assignment: the permission set's role in the account,
    which the people assigned sign in through (and which SCPs, unlike the engine's, stop)."""
    iam: IAMBackend = iam_backends[account_id]["global"]
    with contextlib.suppress(EntityAlreadyExists):
        iam.create_role(
            role_name=sso_role_name(permission_set),
            assume_role_policy_document=_SSO_TRUST.replace("{account}", account_id),
            path=SSO_ROLE_PATH,
            permissions_boundary=None,
            description=f"Identity Center: {permission_set}",
            tags=[],
            max_session_duration="3600",
        )
