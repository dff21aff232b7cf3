"""Fake activities for workflow specifications: each records what it was asked, answers what a
healthy AWS and vendors would, and can be told to fail. Registered under the real activities'
names, so the workflow under test cannot tell them apart."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.account_lifecycle import (
    AccessResult,
    AdoptableInput,
    AdoptableResult,
    ChangeResult,
    CloseAccountInput,
    CloseQuotaInput,
    CloseQuotaLimit,
    ClosureResult,
    QuarantineInput,
    RenameInput,
    RetagInput,
    VerifyAccessInput,
)
from activities.billing import (
    BillingInput,
    BillingResult,
    CustomerInput,
    CustomerResult,
    RegistrationInput,
)
from activities.notifications import Delivered, NoticeBatch, Notification
from activities.organizations import (
    AvailabilityInput,
    AvailabilityResult,
    CompensationResult,
    CreateAccountInput,
    CreateAccountResult,
    MoveToOuInput,
    MoveToOuResult,
    SuspendInput,
)
from activities.workload_security import WorkloadSecurityInput, WorkloadSecurityResult
from common.claims import ClaimInput, ClaimOutcome
from common.landing_zone import AdoptionSource
from common.managed_account_input import ManagedAccountInput


@dataclass
class Fakes:
    """What each fake was asked, in order; ``failing[name]`` makes that activity fail for good
    (non-retryable) with the given error type, until removed."""

    calls: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # the events delivered in batches
    failing: dict[str, str] = field(default_factory=dict)
    inventory: list[ManagedAccountInput] = field(default_factory=list)
    close_quota: int = 250  # what close_quota_limit answers

    def _asked(self, name: str) -> None:
        self.calls.append(name)
        if name in self.failing:
            raise ApplicationError(f"{name} refused", type=self.failing[name], non_retryable=True)

    def steps(self) -> list[str]:
        """The step activities called, in order (not the checks and notices around them)."""
        quiet = {"take_claims", "check_account_available", "check_billing_customer"}
        quiet |= {"check_adoptable"}
        quiet |= {"notify", "notify_email", "deliver", "start_managed_account"}
        quiet |= {"close_quota_limit"}
        return [c for c in self.calls if c not in quiet]

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="take_claims")
        async def take_claims(inp: ClaimInput) -> ClaimOutcome:
            self._asked("take_claims")
            return ClaimOutcome(refused=[])

        @activity.defn(name="check_account_available")
        async def check_account_available(inp: AvailabilityInput) -> AvailabilityResult:
            self._asked("check_account_available")
            return AvailabilityResult(available=True)

        @activity.defn(name="check_billing_customer")
        async def check_billing_customer(inp: CustomerInput) -> CustomerResult:
            self._asked("check_billing_customer")
            return CustomerResult(known=True)

        @activity.defn(name="notify")
        async def notify(note: Notification) -> Delivered:
            self.calls.append("notify")
            return Delivered(delivered=True, detail="fake")

        @activity.defn(name="notify_email")
        async def notify_email(note: Notification) -> Delivered:
            self.calls.append("notify_email")
            return Delivered(delivered=True, detail="fake")

        @activity.defn(name="deliver")
        async def deliver(batch: NoticeBatch) -> list[Delivered]:
            self.calls.append("deliver")
            self.notices.extend(note.event for note in batch.notes)
            return [Delivered(delivered=True, detail="fake") for _ in batch.notes]

        @activity.defn(name="start_managed_account")
        async def start_managed_account(inp: ManagedAccountInput) -> None:
            self.calls.append("start_managed_account")
            self.inventory.append(inp)

        @activity.defn(name="create_account")
        async def create_account(inp: CreateAccountInput) -> CreateAccountResult:
            self._asked("create_account")
            return CreateAccountResult(account_id="111122223333", adopted=False, attempt=1)

        @activity.defn(name="move_to_ou")
        async def move_to_ou(inp: MoveToOuInput) -> MoveToOuResult:
            self._asked("move_to_ou")
            return MoveToOuResult(ou_id="ou-fake-1", moved=True, attempt=1)

        @activity.defn(name="enroll_workload_security")
        async def enroll_workload_security(inp: WorkloadSecurityInput) -> WorkloadSecurityResult:
            self._asked("enroll_workload_security")
            return WorkloadSecurityResult(
                connector_id=7,
                role_arn="arn:aws:iam::111122223333:role/ws",
                policy_id=1,
                associations=[],
                computers_assigned=0,
                detail="fake",
            )

        @activity.defn(name="register_billing")
        async def register_billing(inp: BillingInput) -> BillingResult:
            self._asked("register_billing")
            return BillingResult(
                registration_id="reg-1", status="active", adopted=False, detail="fake"
            )

        @activity.defn(name="suspend_account")
        async def suspend_account(inp: SuspendInput) -> CompensationResult:
            self._asked("suspend_account")
            return CompensationResult(detail=f"moved to {inp.suspended_ou_path}")

        @activity.defn(name="remove_workload_security")
        async def remove_workload_security(inp: WorkloadSecurityInput) -> WorkloadSecurityResult:
            self._asked("remove_workload_security")
            return WorkloadSecurityResult(
                connector_id=7,
                role_arn="",
                policy_id=1,
                associations=[],
                computers_assigned=0,
                detail="removed",
            )

        @activity.defn(name="deregister_billing")
        async def deregister_billing(inp: RegistrationInput) -> BillingResult:
            self._asked("deregister_billing")
            return BillingResult(
                registration_id=inp.registration_id, status="ended", adopted=False, detail="fake"
            )

        @activity.defn(name="check_adoptable")
        async def check_adoptable(inp: AdoptableInput) -> AdoptableResult:
            self._asked("check_adoptable")
            return AdoptableResult(
                current_ou_id="r-root", current_ou_path="", source=AdoptionSource(path="")
            )

        @activity.defn(name="verify_access")
        async def verify_access(inp: VerifyAccessInput) -> AccessResult:
            self._asked("verify_access")
            return AccessResult(role_arn=f"arn:aws:iam::{inp.account_id}:role/r", attempt=1)

        @activity.defn(name="quarantine_account")
        async def quarantine_account(inp: QuarantineInput) -> MoveToOuResult:
            self._asked("quarantine_account")
            return MoveToOuResult(ou_id="ou-suspended", moved=True, attempt=1)

        @activity.defn(name="close_quota_limit")
        async def close_quota_limit(inp: CloseQuotaInput) -> CloseQuotaLimit:
            self.calls.append("close_quota_limit")
            return CloseQuotaLimit(limit=self.close_quota, member_accounts=10)

        @activity.defn(name="close_account")
        async def close_account(inp: CloseAccountInput) -> ClosureResult:
            self._asked("close_account")
            return ClosureResult(status="PENDING_CLOSURE", attempt=1)

        @activity.defn(name="wait_for_closure")
        async def wait_for_closure(inp: CloseAccountInput) -> ClosureResult:
            self._asked("wait_for_closure")
            return ClosureResult(status="SUSPENDED", attempt=1)

        @activity.defn(name="rename_account")
        async def rename_account(inp: RenameInput) -> ChangeResult:
            self._asked("rename_account")
            return ChangeResult(attempt=1, detail=f"named {inp.account_name}")

        @activity.defn(name="retag_account")
        async def retag_account(inp: RetagInput) -> ChangeResult:
            self._asked("retag_account")
            return ChangeResult(attempt=1)

        return [
            rename_account,
            retag_account,
            quarantine_account,
            close_quota_limit,
            close_account,
            wait_for_closure,
            check_adoptable,
            verify_access,
            suspend_account,
            remove_workload_security,
            deregister_billing,
            take_claims,
            check_account_available,
            check_billing_customer,
            notify,
            notify_email,
            deliver,
            start_managed_account,
            create_account,
            move_to_ou,
            enroll_workload_security,
            register_billing,
        ]
