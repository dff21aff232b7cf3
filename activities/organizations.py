"""AWS Organizations: check a name/email is free, create the account, place and tag it.

CreateAccount has no idempotency token, so every activity here looks before it acts: an account
or an in-progress creation that this request already started is adopted, never duplicated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.aws_errors import error_code, to_application_error
from activities.heartbeats import beat
from activities.waiting import until

if TYPE_CHECKING:
    from mypy_boto3_organizations import OrganizationsClient

REQUEST_ID_TAG = "vending:request-id"

# An account's lifecycle as Organizations' ``State`` says it (``Status`` is retired: "will be
# retired on September 9, 2026 ... use State"). CLOSED follows SUSPENDED after 90 days.
CLOSING_OR_CLOSED = frozenset({"PENDING_CLOSURE", "SUSPENDED", "CLOSED"})
CLOSED = frozenset({"SUSPENDED", "CLOSED"})


def account_state(account: Mapping[str, Any]) -> str:
    """The account's State (PENDING_ACTIVATION, ACTIVE, SUSPENDED, PENDING_CLOSURE, CLOSED)."""
    return str(account["State"])


# FailureReason values where the same CreateAccount may succeed if sent again.
RETRYABLE_FAILURES = frozenset({"INTERNAL_FAILURE", "CONCURRENT_ACCOUNT_MODIFICATION"})
FAILURE_HINTS = {
    "EMAIL_ALREADY_EXISTS": "another AWS account already uses this email; ask for another one",
    "ACCOUNT_LIMIT_EXCEEDED": "the organization has reached its account quota; "
    "request an increase in Service Quotas",
    "INVALID_EMAIL": "AWS refused the email address",
    "INVALID_ADDRESS": "AWS refused the organization's address",
}


class AvailabilityInput(BaseModel):
    account_name: str
    account_email: str


class AvailabilityResult(BaseModel):
    available: bool
    field: str | None = None
    detail: str | None = None


class CreateAccountInput(BaseModel):
    request_id: str
    account_name: str
    account_email: str


class CreateAccountResult(BaseModel):
    account_id: str
    adopted: bool
    attempt: int
    detail: str | None = None


class MoveToOuInput(BaseModel):
    request_id: str
    account_id: str
    ou_path: str
    tags: dict[str, str]


class MoveToOuResult(BaseModel):
    ou_id: str
    moved: bool
    attempt: int
    detail: str | None = None


class SuspendInput(BaseModel):
    request_id: str
    account_id: str
    suspended_ou_path: str
    close: bool = False


class CompensationResult(BaseModel):
    detail: str
    attempt: int = 1


@dataclass
class OrganizationsActivities:
    client: OrganizationsClient
    poll_interval_seconds: float = 10.0
    member_role_name: str = "OrganizationAccountAccessRole"

    # ----------------------------------------------------------------- lookups
    def _accounts(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in self.client.get_paginator("list_accounts").paginate():
            out.extend(page["Accounts"])  # type: ignore[arg-type]
        return out

    def _in_progress(self) -> list[dict[str, Any]]:
        return self._creations("IN_PROGRESS")

    def _creations(self, *states: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("list_create_account_status")
        for page in paginator.paginate(States=list(states)):  # type: ignore[arg-type]
            out.extend(page["CreateAccountStatuses"])  # type: ignore[arg-type]
        return out

    def _tags(self, resource_id: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        for page in self.client.get_paginator("list_tags_for_resource").paginate(
            ResourceId=resource_id
        ):
            tags.update({t["Key"]: t["Value"] for t in page["Tags"]})
        return tags

    # ---------------------------------------------------------- check_availability
    @activity.defn(no_thread_cancel_exception=True)
    def check_account_available(self, inp: AvailabilityInput) -> AvailabilityResult:
        """Refuse at submission a name or email that an existing account already holds.

        The answer names neither the account nor its id: any requester may ask, and another
        team's account id is not theirs to learn (operators find it in Organizations)."""
        try:
            for account in self._accounts():
                if str(account.get("Email", "")).lower() == inp.account_email.lower():
                    return AvailabilityResult(
                        available=False,
                        field="account_email",
                        detail="an AWS account in the organization already uses this email",
                    )
                if account.get("Name") == inp.account_name:
                    return AvailabilityResult(
                        available=False,
                        field="account_name",
                        detail="an AWS account in the organization already has this name",
                    )
            for status in self._in_progress():
                if status.get("AccountName") == inp.account_name:
                    return AvailabilityResult(
                        available=False,
                        field="account_name",
                        detail="an account with this name is being created right now",
                    )
        except ClientError as err:
            raise to_application_error(err, action="ListAccounts") from err
        return AvailabilityResult(available=True)

    # ------------------------------------------------------------ create_account
    @activity.defn(no_thread_cancel_exception=True)
    def create_account(self, inp: CreateAccountInput) -> CreateAccountResult:
        info = activity.info()
        try:
            adopted = self._adopt(inp)
            if isinstance(adopted, CreateAccountResult):
                return adopted
            status_id, created_now = adopted, adopted is None
            if status_id is None:
                activity.logger.info("calling CreateAccount for %s", inp.account_name)
                created = self.client.create_account(
                    Email=inp.account_email,
                    AccountName=inp.account_name,
                    RoleName=self.member_role_name,
                    Tags=[{"Key": REQUEST_ID_TAG, "Value": inp.request_id}],
                )
                status_id = created["CreateAccountStatus"]["Id"]
                beat(status_id)  # at once: a retry must find this creation, not start another
            account_id = self._wait_for_creation(status_id, inp)
        except ClientError as err:
            raise self._create_error(err) from err
        return CreateAccountResult(
            account_id=account_id, adopted=not created_now, attempt=info.attempt
        )

    def _adopt(self, inp: CreateAccountInput) -> CreateAccountResult | str | None:
        """An account or creation this request already started, or None when there is none.

        Returns the finished result for an existing account, or the CreateAccount request id of an
        in-progress creation to keep polling.
        """
        info = activity.info()
        if info.heartbeat_details:
            # A previous attempt heartbeated its CreateAccount request id: resume polling it,
            # unless it ended in a failure that a new CreateAccount may cure.
            status_id = str(info.heartbeat_details[0])
            previous = self.client.describe_create_account_status(CreateAccountRequestId=status_id)[
                "CreateAccountStatus"
            ]
            if previous.get("FailureReason") not in RETRYABLE_FAILURES:
                return status_id
        # In-progress creations first, then the accounts: a creation of ours that finishes
        # between the two calls is then in the account list, so the race needs no look at the
        # creation history (SUCCEEDED: 90 days of every creation, 20 to a page on AWS).
        for creation in self._in_progress():
            if creation.get("AccountName") == inp.account_name:
                activity.logger.info("adopting in-progress creation %s", creation["Id"])
                return str(creation["Id"])
        if (mine := self._ours(inp)) is not None:
            activity.logger.info("adopting account %s created earlier", mine)
            return CreateAccountResult(account_id=mine, adopted=True, attempt=info.attempt)
        return None

    def _ours(self, inp: CreateAccountInput) -> str | None:
        """The account with this email if this request created it (tagged with its id); another
        request's or anyone else's account with this email is a refusal, never adopted."""
        for account in self._accounts():
            if str(account.get("Email", "")).lower() != inp.account_email.lower():
                continue
            if self._tags(account["Id"]).get(REQUEST_ID_TAG) == inp.request_id:
                return str(account["Id"])
            # Which account holds it is not the requester's to know (the message reaches
            # them in the step and their mail): only that the email is taken.
            raise ApplicationError(
                "the account email is already in use by another AWS account; ask for another email",
                type="EMAIL_ALREADY_EXISTS",
                non_retryable=True,
            )
        return None

    def _wait_for_creation(self, status_id: str, inp: CreateAccountInput) -> str:
        beat(status_id)
        status = until(
            lambda: self.client.describe_create_account_status(CreateAccountRequestId=status_id)[
                "CreateAccountStatus"
            ],
            lambda s: s["State"] != "IN_PROGRESS",
            self.poll_interval_seconds,
            waiting_for=f"CreateAccount {status_id}",
        )
        if status["State"] == "SUCCEEDED":
            return str(status["AccountId"])
        reason = str(status.get("FailureReason", "UNKNOWN"))
        if reason == "EMAIL_ALREADY_EXISTS" and (mine := self._ours(inp)):
            # A creation this request started in an earlier attempt won the race.
            activity.logger.info("adopting account %s created by an earlier attempt", mine)
            return mine
        hint = FAILURE_HINTS.get(reason, "AWS refused to create the account")
        raise ApplicationError(
            f"CreateAccount failed: {reason}: {hint}",
            type=reason,
            non_retryable=reason not in RETRYABLE_FAILURES,
        )

    @staticmethod
    def _create_error(err: ClientError) -> ApplicationError:
        code = error_code(err)
        if code == "ConstraintViolationException":
            reason = str(err.response.get("Reason", "") or err.response["Error"].get("Message"))
            # The in-progress limit clears by itself; the account-number limit never does.
            retryable = "ACCOUNT_CREATION_RATE_LIMIT_EXCEEDED" in reason
            return ApplicationError(
                f"CreateAccount: {reason}", type=code, non_retryable=not retryable
            )
        return to_application_error(err, action="CreateAccount")

    # --------------------------------------------------------------- move_to_ou
    @activity.defn(no_thread_cancel_exception=True)
    def move_to_ou(self, inp: MoveToOuInput) -> MoveToOuResult:
        try:
            target = self.resolve_ou(inp.ou_path)
            moved = self._move(inp.account_id, target)
            tags = {**inp.tags, REQUEST_ID_TAG: inp.request_id}
            self.client.tag_resource(
                ResourceId=inp.account_id,
                Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
            )
        except ClientError as err:
            raise to_application_error(err, action="MoveAccount") from err
        return MoveToOuResult(ou_id=target, moved=moved, attempt=activity.info().attempt)

    def resolve_ou(self, path: str) -> str:
        parent = self.client.list_roots()["Roots"][0]["Id"]
        walked: list[str] = []
        for name in path.split("/"):
            walked.append(name)
            found = None
            paginator = self.client.get_paginator("list_organizational_units_for_parent")
            for page in paginator.paginate(ParentId=parent):
                found = next(
                    (ou["Id"] for ou in page["OrganizationalUnits"] if ou["Name"] == name), None
                )
                if found:
                    break
            if found is None:
                raise ApplicationError(
                    f"OU {'/'.join(walked)!r} does not exist in the organization",
                    type="OrganizationalUnitNotFound",
                    non_retryable=True,
                )
            parent = found
        return parent

    def _move(self, account_id: str, target: str) -> bool:
        current = self.client.list_parents(ChildId=account_id)["Parents"][0]["Id"]
        if current == target:
            return False
        try:
            self.client.move_account(
                AccountId=account_id, SourceParentId=current, DestinationParentId=target
            )
        except ClientError as err:
            # Another attempt got there first; verify rather than trust the error.
            if error_code(err) == "DuplicateAccountException":
                now = self.client.list_parents(ChildId=account_id)["Parents"][0]["Id"]
                if now == target:
                    return False
            raise
        return True

    # ------------------------------------------------------------- compensation
    @activity.defn(no_thread_cancel_exception=True)
    def suspend_account(self, inp: SuspendInput) -> CompensationResult:
        """Park a cancelled request's account in the Suspended OU and, if configured, close it
        (CloseAccount is quota-limited: the higher of 250 or 20 % of the members per 30 days)."""
        try:
            target = self.resolve_ou(inp.suspended_ou_path)
            self._move(inp.account_id, target)
            self.client.tag_resource(
                ResourceId=inp.account_id,
                Tags=[
                    {"Key": "vending:status", "Value": "cancelled"},
                    {"Key": REQUEST_ID_TAG, "Value": inp.request_id},
                ],
            )
            if not inp.close:
                return CompensationResult(detail=f"moved to {inp.suspended_ou_path}")
            status = account_state(
                self.client.describe_account(AccountId=inp.account_id)["Account"]
            )
            if status in CLOSING_OR_CLOSED:
                return CompensationResult(detail=f"moved to {inp.suspended_ou_path}, {status}")
            self.client.close_account(AccountId=inp.account_id)
        except ClientError as err:
            if error_code(err) == "AccountAlreadyClosedException":
                return CompensationResult(detail=f"moved to {inp.suspended_ou_path}, closed")
            raise to_application_error(err, action="suspend account") from err
        return CompensationResult(detail=f"moved to {inp.suspended_ou_path}, closing")
