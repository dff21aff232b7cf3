"""AWS Organizations for the rest of an account's life: adopt it, quarantine it, close it.

CloseAccount is asynchronous (PENDING_CLOSURE, then SUSPENDED) and quota-limited; every call here
looks before it acts, so a retried attempt never closes or moves anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.aws_errors import error_code, to_application_error
from activities.member_accounts import MemberAccountAccess
from activities.organizations import (
    CLOSED,
    CLOSING_OR_CLOSED,
    REQUEST_ID_TAG,
    MoveToOuResult,
    OrganizationsActivities,
    account_state,
)
from activities.waiting import until
from common.landing_zone import AdoptionSource

CLOSE_QUOTA_REASONS = ("CLOSE_ACCOUNT_QUOTA_EXCEEDED", "CLOSE_ACCOUNT_REQUESTS_LIMIT_EXCEEDED")
CLOSE_QUOTA_EXCEEDED = "CloseQuotaExceeded"


class QuarantineInput(BaseModel):
    request_id: str
    account_id: str
    expected_ou_path: str  # where the inventory says the account is
    expected_owner: str
    suspended_ou_path: str


class CloseAccountInput(BaseModel):
    request_id: str
    account_id: str


class CloseQuotaInput(BaseModel):
    """Nothing to ask: the organization's size says (or the worker's setting)."""


class CloseQuotaLimit(BaseModel):
    limit: int
    member_accounts: int


class ClosureResult(BaseModel):
    status: str
    attempt: int
    detail: str | None = None


def close_quota_for(member_accounts: int) -> int:
    """AWS's rule (the Organizations model, CloseAccount): the higher of 250 or 20 % of the
    member accounts, in a rolling 30 days, and at most 1,000."""
    return min(1000, max(250, member_accounts // 5))


@dataclass
class LifecycleActivities:
    """The Organizations side of adopting and decommissioning accounts."""

    org: OrganizationsActivities
    close_quota_limit_override: int = 0  # VEND_CLOSE_QUOTA__LIMIT

    @activity.defn(no_thread_cancel_exception=True)
    def quarantine_account(self, inp: QuarantineInput) -> MoveToOuResult:
        """Move the account to the suspended OU, but only if it is where and whose the inventory
        says: an account found elsewhere or with another owner is not touched (the step parks
        with what was found, for an operator to look at)."""
        client = self.org.client
        try:
            target = self.org.resolve_ou(inp.suspended_ou_path)
            expected = self.org.resolve_ou(inp.expected_ou_path)
            current = client.list_parents(ChildId=inp.account_id)["Parents"][0]["Id"]
            tags = self.org._tags(inp.account_id)
            ours = tags.get(DECOMMISSION_TAG) == inp.request_id
            if ours:
                # This request checked and tagged it already: a retry, or Control Tower put the
                # account at the Root when the decommission unmanaged it. Back to quarantine.
                moved = self.org._move(inp.account_id, target)
                return MoveToOuResult(ou_id=target, moved=moved, attempt=activity.info().attempt)
            found: list[str] = []
            if current != expected:
                found.append(f"it is in {current}, not {inp.expected_ou_path} ({expected})")
            owner = tags.get("vending:owner", "")
            if owner.lower() != inp.expected_owner.lower():
                found.append("its vending:owner tag is not the owner the inventory records")
            if found:
                raise ApplicationError(
                    f"account {inp.account_id} is not as the inventory records it: "
                    f"{'; '.join(found)}; nothing was changed. Put it back, or update the "
                    "inventory, then retry",
                    type="AccountNotAsRecorded",
                    non_retryable=True,
                )
            client.tag_resource(
                ResourceId=inp.account_id,
                Tags=[
                    {"Key": DECOMMISSION_TAG, "Value": inp.request_id},
                    {"Key": "vending:status", "Value": "decommissioning"},
                ],
            )
            moved = self.org._move(inp.account_id, target)
        except ClientError as err:
            raise to_application_error(err, action="quarantine") from err
        return MoveToOuResult(
            ou_id=target,
            moved=moved,
            attempt=activity.info().attempt,
            detail=f"moved to {inp.suspended_ou_path}",
        )

    @activity.defn(no_thread_cancel_exception=True)
    def close_quota_limit(self, inp: CloseQuotaInput) -> CloseQuotaLimit:
        members = len(self.org._accounts()) - 1  # the management account is not a member
        limit = self.close_quota_limit_override or close_quota_for(members)
        return CloseQuotaLimit(limit=limit, member_accounts=members)

    @activity.defn(no_thread_cancel_exception=True)
    def close_account(self, inp: CloseAccountInput) -> ClosureResult:
        """CloseAccount once: an account already closing or closed is not asked again."""
        client = self.org.client
        attempt = activity.info().attempt
        try:
            status = account_state(client.describe_account(AccountId=inp.account_id)["Account"])
            if status in CLOSING_OR_CLOSED:
                return ClosureResult(status=status, attempt=attempt, detail=f"already {status}")
            client.close_account(AccountId=inp.account_id)
        except ClientError as err:
            code = error_code(err)
            if code == "AccountAlreadyClosedException":
                return ClosureResult(status="SUSPENDED", attempt=attempt, detail="already closed")
            reason = str(err.response.get("Reason", "") or err.response["Error"].get("Message"))
            if code == "ConstraintViolationException" and any(
                r in reason for r in CLOSE_QUOTA_REASONS
            ):
                raise ApplicationError(
                    f"CloseAccount: {reason}", type=CLOSE_QUOTA_EXCEEDED, non_retryable=True
                ) from err
            raise to_application_error(err, action="CloseAccount") from err
        return ClosureResult(status="PENDING_CLOSURE", attempt=attempt, detail="closing")

    @activity.defn(no_thread_cancel_exception=True)
    def wait_for_closure(self, inp: CloseAccountInput) -> ClosureResult:
        """Wait for AWS to finish closing (PENDING_CLOSURE, then SUSPENDED: minutes on AWS)."""
        client = self.org.client
        status = until(
            lambda: account_state(client.describe_account(AccountId=inp.account_id)["Account"]),
            lambda state: state in CLOSED or state == "ACTIVE",
            self.org.poll_interval_seconds,
            waiting_for=f"closure of {inp.account_id}",
        )
        if status == "ACTIVE":
            raise ApplicationError(
                f"account {inp.account_id} is ACTIVE again: its closure was reverted",
                type="ClosureReverted",
                non_retryable=True,
            )
        return ClosureResult(status=status, attempt=activity.info().attempt, detail="SUSPENDED")


DECOMMISSION_TAG = "vending:decommission-request"


# ------------------------------------------------------------------ adopt
class AdoptableInput(BaseModel):
    account_id: str
    account_name: str
    account_email: str
    # The OUs the account may be adopted out of (the Root always may): the landing zone's.
    sources: list[AdoptionSource] = Field(default_factory=list)


class AdoptableResult(BaseModel):
    refusal_type: str | None = None  # None: it may be adopted
    message: str | None = None
    current_ou_id: str | None = None
    current_ou_path: str | None = None  # "" for the Root
    # What leaving the OU it is in takes; the request needs the stricter of this and its
    # destination's.
    source: AdoptionSource | None = None


class VerifyAccessInput(BaseModel):
    account_id: str


class AccessResult(BaseModel):
    role_arn: str
    attempt: int
    detail: str | None = None


@dataclass
class AdoptionActivities:
    """Whether an existing member account can be adopted, and whether the engine can act in it."""

    org: OrganizationsActivities
    members: MemberAccountAccess

    @activity.defn(no_thread_cancel_exception=True)
    def check_adoptable(self, inp: AdoptableInput) -> AdoptableResult:
        """The account must be an active member (not the management account) and be the one the
        operator named: its name and email, typed, must be what Organizations says."""
        client = self.org.client
        try:
            management = client.describe_organization()["Organization"]["MasterAccountId"]
            if inp.account_id == management:
                return AdoptableResult(
                    refusal_type="Conflict",
                    message=f"{inp.account_id} is the management account: it is never managed",
                )
            try:
                account = client.describe_account(AccountId=inp.account_id)["Account"]
            except ClientError as err:
                if error_code(err) != "AccountNotFoundException":
                    raise
                return AdoptableResult(
                    refusal_type="Conflict",
                    message=f"account {inp.account_id} is not a member of the organization",
                )
            if (state := account_state(account)) != "ACTIVE":
                return AdoptableResult(
                    refusal_type="Conflict",
                    message=f"account {inp.account_id} is {state}, not ACTIVE",
                )
            if account["Name"] != inp.account_name:
                return AdoptableResult(
                    refusal_type="AccountMismatch",
                    message=f"account_name: account {inp.account_id} is named "
                    f"{account['Name']!r} in Organizations",
                )
            if str(account["Email"]).lower() != inp.account_email.lower():
                return AdoptableResult(
                    refusal_type="AccountMismatch",
                    message=f"account_email: account {inp.account_id} has another email",
                )
            parent = client.list_parents(ChildId=inp.account_id)["Parents"][0]["Id"]
            path = self._ou_path(str(parent))
        except ClientError as err:
            raise to_application_error(err, action="check the account to adopt") from err
        source = (
            AdoptionSource(path="")
            if path == ""
            else next((s for s in inp.sources if s.path == path), None)
        )
        if source is None:
            return AdoptableResult(
                refusal_type="Forbidden",
                message=f"account {inp.account_id} is in OU {path}, which is closed for vending "
                "or not the landing zone's: the engine does not adopt accounts out of it (list "
                "the OU in the landing zone's adoptable_from to allow it)",
                current_ou_id=str(parent),
                current_ou_path=path,
            )
        return AdoptableResult(current_ou_id=str(parent), current_ou_path=path, source=source)

    def _ou_path(self, ou_id: str) -> str:
        """The OU's path from the Root by name (``Workloads/Prod``; "" for the Root itself), as
        the landing zone names OUs."""
        names: list[str] = []
        client = self.org.client
        while not ou_id.startswith("r-"):
            names.append(
                client.describe_organizational_unit(OrganizationalUnitId=ou_id)[
                    "OrganizationalUnit"
                ]["Name"]
            )
            ou_id = client.list_parents(ChildId=ou_id)["Parents"][0]["Id"]
        return "/".join(reversed(names))

    @activity.defn(no_thread_cancel_exception=True)
    def verify_access(self, inp: VerifyAccessInput) -> AccessResult:
        """The steps after this one act in the account through its execution role: check that
        it can be assumed now, and say what to create when it cannot."""
        role = f"arn:aws:iam::{inp.account_id}:role/{self.members.role_name}"
        try:
            # An adopted account may be new too (its role not assumable yet): the usual wait,
            # then AccessDenied means the role is missing.
            sts = self.members.client(inp.account_id, "sts", session_name="vend-verify-access")
            sts.get_caller_identity()
        except ClientError as err:
            if error_code(err) in ("AccessDenied", "AccessDeniedException"):
                raise ApplicationError(
                    f"cannot assume {role}: create the role {self.members.role_name} in account "
                    f"{inp.account_id}, trusting the management account (as Organizations does "
                    "for the accounts it creates), then retry",
                    type="ExecutionRoleMissing",
                    non_retryable=True,
                ) from err
            raise to_application_error(err, action="AssumeRole") from err
        return AccessResult(
            role_arn=role, attempt=activity.info().attempt, detail=f"assumed {role}"
        )


# ------------------------------------------------------------------ update
class RenameInput(BaseModel):
    account_id: str
    account_name: str


class RetagInput(BaseModel):
    request_id: str
    account_id: str
    tags: dict[str, str]
    removed: list[str]


class ChangeResult(BaseModel):
    attempt: int
    detail: str | None = None


@dataclass
class UpdateActivities:
    """Renaming (Account API) and retagging (Organizations) an account under management."""

    org: OrganizationsActivities
    account: Any  # the Account API client, from the management account

    @activity.defn(no_thread_cancel_exception=True)
    def rename_account(self, inp: RenameInput) -> ChangeResult:
        """PutAccountName: idempotent (the same name again changes nothing)."""
        try:
            current = self.account.get_account_information(AccountId=inp.account_id)
            if current.get("AccountName") != inp.account_name:
                self.account.put_account_name(
                    AccountId=inp.account_id, AccountName=inp.account_name
                )
        except ClientError as err:
            raise to_application_error(err, action="PutAccountName") from err
        return ChangeResult(attempt=activity.info().attempt, detail=f"named {inp.account_name}")

    @activity.defn(no_thread_cancel_exception=True)
    def retag_account(self, inp: RetagInput) -> ChangeResult:
        client = self.org.client
        try:
            tags = {**inp.tags, REQUEST_ID_TAG: inp.request_id}
            client.tag_resource(
                ResourceId=inp.account_id,
                Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
            )
            if inp.removed:
                client.untag_resource(ResourceId=inp.account_id, TagKeys=sorted(inp.removed))
        except ClientError as err:
            raise to_application_error(err, action="TagResource") from err
        detail = f"tags set; removed {', '.join(inp.removed)}" if inp.removed else "tags set"
        return ChangeResult(attempt=activity.info().attempt, detail=detail)
