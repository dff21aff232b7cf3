"""IAM Identity Center: the OU's permission sets assigned to the request's group and users in
the new account (``sso-admin`` from the management or delegated administrator account).

``CreateAccountAssignment`` is asynchronous: it answers a request id whose status is polled
until SUCCEEDED or FAILED. Idempotent: an assignment already in place is not asked for again,
and a creation an earlier attempt started is resumed from its heartbeated request id rather
than asked twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel
from temporalio import activity

from activities.aws_errors import error_code, final, to_application_error
from activities.heartbeats import beat
from activities.setting_result import SettingResult
from activities.waiting import until
from common.account_settings import EffectiveAccess


class AccessInput(BaseModel):
    account_id: str
    access: EffectiveAccess


@dataclass(frozen=True)
class _Pair:
    permission_set_arn: str
    permission_set: str
    principal_type: str  # GROUP | USER
    principal_id: str
    principal: str

    @property
    def key(self) -> str:
        return f"{self.permission_set_arn}|{self.principal_id}"

    def assignment(self, instance: str, account_id: str) -> dict[str, str]:
        """The parameters that name this assignment (to create it or to delete it)."""
        return {
            "InstanceArn": instance,
            "TargetId": account_id,
            "TargetType": "AWS_ACCOUNT",
            "PermissionSetArn": self.permission_set_arn,
            "PrincipalType": self.principal_type,
            "PrincipalId": self.principal_id,
        }


@dataclass
class IdentityCenterActivities:
    sso_admin: Any
    identity_store: Any
    poll_interval_seconds: float = 5.0

    @activity.defn(no_thread_cancel_exception=True)
    def assign_access(self, inp: AccessInput) -> SettingResult:
        info = activity.info()
        started: dict[str, str] = dict(info.heartbeat_details[0]) if info.heartbeat_details else {}
        try:
            instance, store = self._instance()
            pairs = self._pairs(instance, store, inp.access)
            made = 0
            in_flight: dict[str, str] | None = None
            for pair in pairs:
                request_id = started.get(pair.key)
                if request_id is None:
                    if self._assigned(instance, inp.account_id, pair):
                        continue
                    if in_flight is None:  # heartbeats can be lost: AWS knows what it is doing
                        in_flight = self._in_flight(instance, inp.account_id)
                    request_id = in_flight.get(pair.key)
                if request_id is None:
                    status = self.sso_admin.create_account_assignment(
                        **pair.assignment(instance, inp.account_id)
                    )["AccountAssignmentCreationStatus"]
                    request_id = str(status["RequestId"])
                started[pair.key] = request_id
                beat(started)
            # Asked all at once, then waited for: Identity Center works on them together.
            for pair in pairs:
                if pair.key in started:
                    self._wait(instance, started[pair.key], pair)
                    made += 1
        except ClientError as err:
            raise to_application_error(err, action="CreateAccountAssignment") from err
        names = ", ".join(sorted({f"{p.permission_set} to {p.principal}" for p in pairs}))
        return SettingResult(
            detail=f"assigned {names}" + ("" if made else " (already in place)"),
            attempt=info.attempt,
        )

    @activity.defn(no_thread_cancel_exception=True)
    def remove_access(self, inp: AccessInput) -> SettingResult:
        """The cancel's undo: take the assignments away again (those still there)."""
        try:
            instance, store = self._instance()
            pairs = self._pairs(instance, store, inp.access, missing_ok=True)
            for pair in pairs:
                if not self._assigned(instance, inp.account_id, pair):
                    continue
                status = self.sso_admin.delete_account_assignment(
                    **pair.assignment(instance, inp.account_id)
                )["AccountAssignmentDeletionStatus"]
                self._wait(instance, str(status["RequestId"]), pair, deleting=True)
        except ClientError as err:
            raise to_application_error(err, action="DeleteAccountAssignment") from err
        return SettingResult(detail="assignments removed", attempt=activity.info().attempt)

    # ------------------------------------------------------------------ helpers
    def _instance(self) -> tuple[str, str]:
        found = self.sso_admin.list_instances().get("Instances", [])
        if not found:
            raise final("IAM Identity Center is not enabled in this organization", "NoSsoInstance")
        return str(found[0]["InstanceArn"]), str(found[0]["IdentityStoreId"])

    def _pairs(
        self, instance: str, store: str, access: EffectiveAccess, missing_ok: bool = False
    ) -> list[_Pair]:
        sets = self._permission_sets(instance)
        principals: list[tuple[str, str, str]] = []
        if access.group:
            gid = self._principal(store, "GROUP", access.group, missing_ok)
            if gid:
                principals.append(("GROUP", gid, f"group {access.group}"))
        for user in access.users:
            uid = self._principal(store, "USER", user, missing_ok)
            if uid:
                principals.append(("USER", uid, f"user {user}"))
        out = []
        for name in access.permission_sets:
            arn = sets.get(name)
            if arn is None:
                if missing_ok:
                    continue
                raise final(
                    f"permission set {name!r} does not exist in IAM Identity Center; create it "
                    "(or fix the landing zone), then retry",
                    "PermissionSetNotFound",
                )
            out += [_Pair(arn, name, kind, pid, label) for kind, pid, label in principals]
        return out

    def _permission_sets(self, instance: str) -> dict[str, str]:
        out = {}
        for page in self.sso_admin.get_paginator("list_permission_sets").paginate(
            InstanceArn=instance
        ):
            for arn in page.get("PermissionSets", []):
                described = self.sso_admin.describe_permission_set(
                    InstanceArn=instance, PermissionSetArn=arn
                )["PermissionSet"]
                out[str(described["Name"])] = arn
        return out

    def _principal(self, store: str, kind: str, name: str, missing_ok: bool) -> str | None:
        group = kind == "GROUP"
        unique = {"AttributePath": "displayName" if group else "userName", "AttributeValue": name}
        by = {"IdentityStoreId": store, "AlternateIdentifier": {"UniqueAttribute": unique}}
        try:
            if group:
                return str(self.identity_store.get_group_id(**by)["GroupId"])
            return str(self.identity_store.get_user_id(**by)["UserId"])
        except ClientError as err:
            if error_code(err) != "ResourceNotFoundException":
                raise
            if missing_ok:
                return None
            raise final(
                f"{kind.lower()} {name!r} is not in the identity store; create it, or correct "
                "the request, then retry",
                "PrincipalNotFound",
            ) from err

    def _in_flight(self, instance: str, account_id: str) -> dict[str, str]:
        """Creations still in progress for this account, by pair: an earlier attempt's."""
        out: dict[str, str] = {}
        pages = self.sso_admin.get_paginator("list_account_assignment_creation_status").paginate(
            InstanceArn=instance, Filter={"Status": "IN_PROGRESS"}
        )
        for page in pages:
            for meta in page.get("AccountAssignmentsCreationStatus", []):
                status = self.sso_admin.describe_account_assignment_creation_status(
                    InstanceArn=instance, AccountAssignmentCreationRequestId=meta["RequestId"]
                )["AccountAssignmentCreationStatus"]
                if status.get("TargetId") == account_id:
                    key = f"{status['PermissionSetArn']}|{status['PrincipalId']}"
                    out[key] = str(meta["RequestId"])
        return out

    def _assigned(self, instance: str, account_id: str, pair: _Pair) -> bool:
        pages = self.sso_admin.get_paginator("list_account_assignments").paginate(
            InstanceArn=instance, AccountId=account_id, PermissionSetArn=pair.permission_set_arn
        )
        return any(
            a.get("PrincipalId") == pair.principal_id
            for page in pages
            for a in page.get("AccountAssignments", [])
        )

    def _wait(self, instance: str, request_id: str, pair: _Pair, deleting: bool = False) -> None:
        waiting_for = f"assignment {'deletion' if deleting else 'creation'} {request_id}"

        def describe() -> dict[str, Any]:
            if deleting:
                return dict(
                    self.sso_admin.describe_account_assignment_deletion_status(
                        InstanceArn=instance, AccountAssignmentDeletionRequestId=request_id
                    )["AccountAssignmentDeletionStatus"]
                )
            return dict(
                self.sso_admin.describe_account_assignment_creation_status(
                    InstanceArn=instance, AccountAssignmentCreationRequestId=request_id
                )["AccountAssignmentCreationStatus"]
            )

        status = until(
            describe,
            lambda s: s["Status"] in ("SUCCEEDED", "FAILED"),
            self.poll_interval_seconds,
            waiting_for=waiting_for,
        )
        if status["Status"] == "FAILED":
            raise final(
                f"assigning {pair.permission_set} to {pair.principal}: "
                f"{status.get('FailureReason', 'no reason given')}",
                "AccountAssignmentFailed",
            )
