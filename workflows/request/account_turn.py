"""This change request's side of its account's workflow: wait for the turn, report the end.

The account workflow (``managed_account.py``) runs one change at a time. A change request asks
for its turn once it is approved, waits for the account's signal (which carries the account as it
then stands, so the change runs against the latest record, not the one it was asked against), and
tells the account what it did when it closes, whatever the outcome.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from common import account_contract as contract
    from common.models import (
        AuditEvent,
        ChangeFinished,
        ChangeTurn,
        ManagedAccount,
        RequestKind,
        RequestStatus,
    )

Show = Callable[[str], None]


class AccountTurn:
    def __init__(self, request_id: str, account_id: str, kind: RequestKind) -> None:
        self._request_id = request_id
        self._kind = kind
        self._handle_id = contract.account_workflow_id(account_id)
        self.asked = False
        self.account: ManagedAccount | None = None  # set when the turn comes

    def _account(self) -> workflow.ExternalWorkflowHandle[object]:
        return workflow.get_external_workflow_handle(self._handle_id)

    async def wait(self, show: Show) -> ManagedAccount:
        if self.account is not None:
            return self.account
        self.asked = True
        await self._account().signal(
            contract.CHANGE_REQUESTED,
            ChangeTurn(
                request_id=self._request_id,
                workflow_id=workflow.info().workflow_id,
                kind=self._kind,
            ),
        )
        show("waiting for the account's turn: one change at a time per account")
        await workflow.wait_condition(lambda: self.account is not None)
        assert self.account is not None
        return self.account

    def on_turn(self, account: ManagedAccount) -> None:
        self.account = account

    async def finished(
        self, status: RequestStatus, account: ManagedAccount | None, events: list[AuditEvent]
    ) -> None:
        """Tell the account this change is over (it frees the turn, or leaves the line)."""
        if not self.asked:
            return  # never in line (rejected, expired, refused): nothing to tell
        await self._account().signal(
            contract.CHANGE_FINISHED,
            ChangeFinished(
                request_id=self._request_id,
                kind=self._kind,
                status=status,
                account=account,
                events=events,
            ),
        )
