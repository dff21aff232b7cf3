"""Where moto is kinder than AWS, make it behave like AWS.

moto answers CreateAccount SUCCEEDED at once, accepts duplicate emails and lets MoveAccount move
an account from a parent it is not in. Real AWS creates accounts asynchronously, fails duplicates
with EMAIL_ALREADY_EXISTS and checks the source parent. The engine's idempotency only means
something against the second behaviour, so the sandbox patches moto's Organizations backend.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.organizations.exceptions import AWSOrganizationsNotInUseException
from moto.organizations.exceptions import OrganizationsClientError as RESTError
from moto.organizations.models import FakeAccount, OrganizationsBackend

from sandbox.aws.faults import FaultPlan, release


@dataclass
class Creation:
    id: str
    backend: OrganizationsBackend
    kwargs: dict[str, Any]
    requested_at: float
    ready_at: float
    failure_reason: str | None = None
    held: bool = False
    account_id: str | None = None

    @property
    def state(self) -> str:
        if self.failure_reason and time.time() >= self.ready_at:
            return "FAILED"
        if self.account_id:
            return "SUCCEEDED"
        return "IN_PROGRESS"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Id": self.id,
            "AccountName": self.kwargs["AccountName"],
            "State": self.state,
            "RequestedTimestamp": self.requested_at,
        }
        if out["State"] != "IN_PROGRESS":
            out["CompletedTimestamp"] = self.ready_at
        if self.account_id:
            out["AccountId"] = self.account_id
        if out["State"] == "FAILED":
            out["FailureReason"] = self.failure_reason
        return out


@dataclass
class OrganizationsRealism:
    faults: FaultPlan
    create_account_seconds: float = 2.0
    creations: dict[str, Creation] = field(default_factory=dict)
    on_move: Callable[[str, str], None] | None = None  # (account id, destination OU id)
    # CloseAccount: PENDING_CLOSURE for this long, then SUSPENDED; at most ``close_quota``
    # closures (None: AWS's rule, the higher of 250 or 20 % of the members, at most 1,000) in
    # ``close_window_seconds``.
    close_account_seconds: float = 2.0
    close_quota: int | None = None
    close_window_seconds: float = 30 * 86400.0
    closures: dict[str, float] = field(default_factory=dict)  # account id -> when asked

    def __post_init__(self) -> None:
        self._lock = threading.RLock()

    # --------------------------------------------------------------- lifecycle
    def tick(self) -> bool:
        """Turn creations whose time has come into real (moto) accounts; say whether any did."""
        created = False
        with self._lock:
            now = time.time()
            for c in self.creations.values():
                if c.account_id or c.failure_reason or c.held or now < c.ready_at:
                    continue
                _ORIGINAL_CREATE(c.backend, **c.kwargs)
                account = c.backend.accounts[-1]
                account.create_account_status_id = c.id
                c.account_id = account.id
                created = True
        return created

    def tick_closures(self, backend: OrganizationsBackend) -> None:
        now = time.time()
        for account in backend.accounts:
            asked = self.closures.get(account.id)
            pending = account.status == "PENDING_CLOSURE" and asked is not None
            if pending and now >= (asked or 0.0) + self.close_account_seconds:
                account.status = account.state = "SUSPENDED"

    def close_account(self, backend: OrganizationsBackend, **kwargs: Any) -> None:
        """As AWS: asynchronous, refused for the management account, for an account already
        closing or closed, and past the organization's rolling close quota."""
        if backend.org is None:
            raise AWSOrganizationsNotInUseException
        account_id = str(kwargs["AccountId"])
        if account_id == backend.org.master_account_id:
            raise JsonRESTError(
                "ConstraintViolationException",
                "You cannot close the management account with CloseAccount.",
            )
        account = backend.get_account_by_id(account_id)
        with self._lock:
            self.tick_closures(backend)
            if account.status in ("PENDING_CLOSURE", "SUSPENDED"):
                raise JsonRESTError(
                    "AccountAlreadyClosedException",
                    "You attempted to close an account that is already closed.",
                )
            now = time.time()
            recent = [t for t in self.closures.values() if t > now - self.close_window_seconds]
            members = len(backend.accounts) - 1
            quota = self.close_quota or min(1000, max(250, members // 5))
            if len(recent) >= quota:
                err = JsonRESTError(
                    "ConstraintViolationException",
                    "You have exceeded close account quota for the past 30 days.",
                )
                err.description = json.dumps(
                    {
                        "__type": "ConstraintViolationException",
                        "Message": "You have exceeded close account quota for the past 30 days.",
                        "Reason": "CLOSE_ACCOUNT_QUOTA_EXCEEDED",
                    }
                )
                raise err
            self.closures[account_id] = now
            account.status = account.state = "PENDING_CLOSURE"

    def release_holds(self) -> int:
        with self._lock:
            released = release(self.creations.values())
        self.tick()
        return released

    # --------------------------------------------------------------- patched calls
    def create_account(self, backend: OrganizationsBackend, **kwargs: Any) -> dict[str, Any]:
        if backend.org is None:
            raise AWSOrganizationsNotInUseException
        body = repr(kwargs)
        email = str(kwargs["Email"]).lower()
        with self._lock:
            now = time.time()
            creation = Creation(
                id="car-" + secrets.token_hex(12),
                backend=backend,
                kwargs=kwargs,
                requested_at=now,
                ready_at=now + self.create_account_seconds,
            )
            if any(a.email.lower() == email for a in backend.accounts):
                creation.failure_reason = "EMAIL_ALREADY_EXISTS"
            elif any(
                c.kwargs["Email"].lower() == email and c.state == "IN_PROGRESS"
                for c in self.creations.values()
            ):
                creation.failure_reason = "CONCURRENT_ACCOUNT_MODIFICATION"
            elif rule := self.faults.take("organizations", "CreateAccount", body, "failure_reason"):
                creation.failure_reason = rule.failure_reason
            if self.faults.take("organizations", "CreateAccount", body, "hold"):
                creation.held = True
            self.creations[creation.id] = creation
            return {"CreateAccountStatus": creation.describe()}

    def describe_create_account_status(
        self, backend: OrganizationsBackend, **kwargs: Any
    ) -> dict[str, Any]:
        self.tick()
        creation = self.creations.get(kwargs["CreateAccountRequestId"])
        if creation is None:
            raise JsonRESTError(
                "CreateAccountStatusNotFoundException",
                "We can't find an create account request with the CreateAccountRequestId that "
                "you specified.",
            )
        return {"CreateAccountStatus": creation.describe()}

    def list_create_account_status(
        self, backend: OrganizationsBackend, **kwargs: Any
    ) -> dict[str, Any]:
        self.tick()
        states = kwargs.get("States") or ["IN_PROGRESS", "SUCCEEDED", "FAILED"]
        statuses = [
            c.describe()
            for c in self.creations.values()
            if c.backend is backend and c.state in states
        ]
        start = int(kwargs.get("NextToken") or 0)
        asked = kwargs.get("MaxResults")
        size = page_size(int(asked) if asked is not None else None)
        page = statuses[start : start + size]
        token = str(start + size) if start + size < len(statuses) else None
        return {"CreateAccountStatuses": page, "NextToken": token}

    def move_account(self, backend: OrganizationsBackend, **kwargs: Any) -> None:
        account = backend.get_account_by_id(kwargs["AccountId"])
        source, dest = kwargs["SourceParentId"], kwargs["DestinationParentId"]
        for parent, code in ((dest, "Destination"), (source, "Source")):
            try:
                backend.validate_parent_id(parent)
            except RESTError as err:
                raise JsonRESTError(
                    f"{code}ParentNotFoundException", f"We can't find the {code.lower()} parent"
                ) from err
        if account.parent_id == dest:
            raise JsonRESTError(
                "DuplicateAccountException", "That account is already present in the destination"
            )
        if account.parent_id != source:
            raise JsonRESTError(
                "SourceParentNotFoundException",
                "We can't find a source root or OU with the ParentId that you specified.",
            )
        account.parent_id = dest
        if self.on_move is not None:
            self.on_move(account.id, dest)


PAGE_MAX = 20  # Organizations' list pages: MaxResults 1-20 (its model), 20 when not asked


def page_size(asked: int | None) -> int:
    """moto pages ListAccounts by 100 when not asked and takes any MaxResults: kinder than AWS,
    where listing 10,000 accounts takes 500 calls, not 100. Out of range is refused as AWS
    refuses it."""
    if asked is None:
        return PAGE_MAX
    if not 1 <= asked <= PAGE_MAX:
        reason = "MAX_VALUE_EXCEEDED" if asked > PAGE_MAX else "MIN_VALUE_EXCEEDED"
        message = f"MaxResults must be between 1 and {PAGE_MAX}; you asked for {asked}."
        err = JsonRESTError("InvalidInputException", message)
        err.description = json.dumps(
            {"__type": "InvalidInputException", "Message": message, "Reason": reason}
        )
        raise err
    return asked


# The other lists moto pages (at 20 when not asked, as AWS does) but with any MaxResults.
_PAGED_LISTS = (
    "list_accounts_for_parent",
    "list_organizational_units_for_parent",
    "list_policies",
    "list_policies_for_target",
)


def _refusing_oversized_pages(original: Any) -> Any:
    def listed(self: OrganizationsBackend, *args: Any, **kw: Any) -> Any:
        kw["max_results"] = page_size(kw.get("max_results"))
        return original(self, *args, **kw)

    return listed


_ORIGINAL_CREATE = OrganizationsBackend.create_account
_ORIGINAL_DESCRIBE_ACCOUNT = OrganizationsBackend.describe_account
_ORIGINAL_ACCOUNT_DESCRIBE = FakeAccount.describe
_ORIGINAL_LIST_ACCOUNTS = OrganizationsBackend.list_accounts


def install(realism: OrganizationsRealism) -> None:
    """Patch moto's backend class (the sandbox server is its own process)."""

    def create_account(self: OrganizationsBackend, **kw: Any) -> dict[str, Any]:
        return realism.create_account(self, **kw)

    def describe(self: OrganizationsBackend, **kw: Any) -> dict[str, Any]:
        return realism.describe_create_account_status(self, **kw)

    def list_status(self: OrganizationsBackend, **kw: Any) -> dict[str, Any]:
        return realism.list_create_account_status(self, **kw)

    def move_account(self: OrganizationsBackend, **kw: Any) -> None:
        realism.move_account(self, **kw)

    def close_account(self: OrganizationsBackend, **kw: Any) -> None:
        realism.close_account(self, **kw)

    def describe_account(self: OrganizationsBackend, **kw: Any) -> dict[str, Any]:
        realism.tick_closures(self)
        return _ORIGINAL_DESCRIBE_ACCOUNT(self, **kw)

    def list_accounts(self: OrganizationsBackend, **kw: Any) -> Any:
        realism.tick_closures(self)
        kw["max_results"] = page_size(kw.get("max_results"))
        return _ORIGINAL_LIST_ACCOUNTS(self, **kw)

    def account_without_status(self: FakeAccount) -> dict[str, Any]:
        """``Account.Status`` is retired (the Organizations model: "will be retired on September
        9, 2026 ... use State"): the sandbox answers State alone, so nothing may read Status."""
        described = _ORIGINAL_ACCOUNT_DESCRIBE(self)
        described.pop("Status", None)
        return described

    FakeAccount.describe = account_without_status  # type: ignore[method-assign]

    patches = {
        "create_account": create_account,
        "describe_create_account_status": describe,
        "list_create_account_status": list_status,
        "move_account": move_account,
        "close_account": close_account,
        "describe_account": describe_account,
        "list_accounts": list_accounts,
    }
    for name in _PAGED_LISTS:
        patches[name] = _refusing_oversized_pages(getattr(OrganizationsBackend, name))
    for name, fn in patches.items():
        setattr(OrganizationsBackend, name, fn)
