"""AccountVending: one workflow per account request, the business process top to bottom.

1. **Validate** while the requester waits on the API: claim the account's name and email, ask
   AWS Organizations and Sunny Pay (``request/validation.py``). A refusal answers the POST.
2. **Approve**: wait for the OU's quorum of approvers (none for some OUs), or expire.
3. **Provision**: run the steps of the table in order (``steps/vend.py``): create the account, move
   it to its OU, enroll it in Control Tower, deploy the baselines, protect it, register billing.
   A step that fails for good parks the request for an operator (``steps/runner.py``), who
   retries it (perhaps with a correction), skips it, or cancels the request; a cancellation
   undoes what was done, newest first (``request/compensation.py``).

Everything a person asks of a request arrives as an update (approve, reject, cancel, retry,
skip), checked by its validator before it is written to history; everything they see is the
state, read by a query. This module holds the process and the handlers; the helpers it calls are
plain, deterministic code in the modules named above.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.workflow_signals import WorkflowSignals
    from common import account_contract
    from common import search_attributes as sa
    from common import vending_contract as contract
    from common.landing_zone import AdoptionSource
    from common.models import (
        AccountRequest,
        ApprovalRecord,
        ApproveInput,
        AuditEvent,
        CancelInput,
        ManagedAccount,
        RejectInput,
        RequestKind,
        RequestState,
        RequestStatus,
        RetryInput,
        SkipInput,
        StepError,
        SubmitInput,
        VendingInput,
    )
    from common.stack_set_batches import NOTICE_SIGNAL as BATCH_NOTICE
    from common.stack_set_batches import BatchNotice
    from workflows.close_quota import CLOSE_NOTICE, CloseNotice
    from workflows.coordinator import NOTICE_SIGNAL, Notice
    from workflows.managed_account import (
        ManagedAccountInput,
        first_events,
    )
    from workflows.request import inventory_records, operator_actions
    from workflows.request.account_turn import AccountTurn
    from workflows.request.close_quota_turn import CloseQuotaTurn
    from workflows.request.compensation import compensate
    from workflows.request.control_tower_slot import ControlTowerSlot
    from workflows.request.operator_actions import OperatorActions
    from workflows.request.record import SYSTEM, RequestRecord
    from workflows.request.stack_set_batch import StackSetBatches
    from workflows.request.validation import (
        TRANSIENT_REFUSALS,
        Claims,
        validate,
        validate_adoption,
        validate_update,
    )
    from workflows.steps.context import StepContext
    from workflows.steps.runner import run_step
    from workflows.steps.tables import table_for


@workflow.defn(name=contract.WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class AccountVending:
    @workflow.init
    def __init__(self, inp: VendingInput) -> None:
        self._input = inp  # as submitted; corrections go to the state
        self._record = RequestRecord(inp, lambda: self._ctx.inp)
        self._state = self._record.state
        self._slot = ControlTowerSlot(inp.request_id, self._record.show)
        self._close_quota = CloseQuotaTurn(inp.request_id)
        self._batches = StackSetBatches(self._record.show)
        self._ctx = StepContext(
            submitted=inp,
            record=self._record,
            slot=self._slot,
            close_quota=self._close_quota,
            batches=self._batches,
        )
        self._table = table_for(inp.kind)
        self._turn = (
            AccountTurn(inp.request_id, inp.account.account_id, inp.kind)
            if inp.account is not None
            else None
        )
        self._claims = Claims(inp.request_id)
        self._operator = OperatorActions()
        self._submitted = False
        self._submit_lock = asyncio.Lock()
        self._approval_window_seconds = inp.ou.approval_window_seconds

    # ------------------------------------------------------------------ the process
    @workflow.run
    async def run(self, inp: VendingInput) -> RequestState:
        await workflow.wait_condition(lambda: self._submitted)
        if self._state.status == RequestStatus.invalid:
            refusal = self._state.refusal
            if refusal is not None and refusal.type in TRANSIENT_REFUSALS:
                # Fail rather than complete, so a retried POST with the same Idempotency-Key
                # validates afresh instead of replaying a passing outage.
                await workflow.wait_condition(workflow.all_handlers_finished)
                raise ApplicationError(refusal.message, type=refusal.type, non_retryable=True)
            return await self._finish()

        if self._state.status == RequestStatus.pending_approval:
            await self._wait_for_decision()
        if self._state.status != RequestStatus.provisioning:
            return await self._finish()  # rejected, expired or cancelled

        if self._turn is not None:  # a change: one at a time per account
            self._rebase(await self._turn.wait(self._show_first_step))
        for name, spec in self._table.items():
            if not await run_step(name, spec, self._ctx, self._operator):
                await compensate(self._ctx, self._table)  # cancelled while parked: undo
                return await self._finish()

        if self._input.kind in (RequestKind.vend, RequestKind.adopt):
            await self._put_in_inventory()
        self._record.event(SYSTEM, "complete", "completed", f"account {self._state.account_id}")
        self._record.set_status(RequestStatus.completed)
        return await self._finish()

    def _rebase(self, latest: ManagedAccount) -> None:
        """Run the change against the account as it is now, not as it was when asked for: a
        change queued behind another must not undo what that one did."""
        before = self._input.account
        facts = ["request", "organizational_unit_id", "workload_security_connector_id"]
        facts += ["billing_registration_id", "baselines"]
        if before is not None and all(getattr(latest, f) == getattr(before, f) for f in facts):
            return
        fixes = self._state.corrections
        fixes.account = latest
        asked = self._input.changes if self._input.kind == RequestKind.update else {}
        fixes.request = AccountRequest.model_validate(
            {
                **latest.request.model_dump(),
                **asked,
                "justification": self._input.request.justification,
            }
        )
        self._state.request = self._ctx.inp.request
        self._state.organizational_unit_id = latest.organizational_unit_id
        self._state.workload_security_connector_id = latest.workload_security_connector_id
        self._state.billing_registration_id = latest.billing_registration_id
        self._record.event(SYSTEM, "rebase", "accepted", "the account changed while this waited")

    def _show_first_step(self, text: str) -> None:
        self._state.steps[0].detail = text
        self._record.touch()

    async def _put_in_inventory(self) -> None:
        """The account is managed from now on: its own workflow keeps it (and outlives us)."""
        account = inventory_records.vended_account(self._ctx)
        events = first_events(self._record.events, self._input.request_id)
        await workflow.execute_local_activity_method(
            WorkflowSignals.start_managed_account,
            ManagedAccountInput(account=account, events=events),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
        )
        self._record.event(SYSTEM, "inventory", "managed", f"account {account.account_id}")

    async def _wait_for_decision(self) -> None:
        """Approvals, a rejection or a cancellation change the status; silence expires it."""
        expires_at = self._state.approval_expires_at
        assert expires_at is not None
        try:
            await workflow.wait_condition(
                lambda: self._state.status != RequestStatus.pending_approval,
                timeout=max(expires_at - workflow.now(), timedelta(seconds=1)),
            )
        except TimeoutError:
            self._record.event(
                SYSTEM, "expire", "expired", f"no decision by {expires_at.isoformat()}"
            )
            self._record.set_status(RequestStatus.expired)

    async def _finish(self) -> RequestState:
        await self._slot.release()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._turn is not None:
            after = self._account_after()
            await self._turn.finished(self._state.status, after, self._record.events)
        await self._record.notifications_sent()
        return self._state

    def _account_after(self) -> ManagedAccount | None:
        """The account as this change leaves it (None: untouched, the record stands)."""
        if self._state.status == RequestStatus.completed:
            if self._input.kind == RequestKind.update:
                return inventory_records.updated_account(self._ctx)
            return inventory_records.decommissioned_account(self._ctx)
        if self._state.status == RequestStatus.cancelled and self._state.compensations:
            return inventory_records.restored_account(self._ctx)
        return None

    # ------------------------------------------------------------------ 1. validate
    @workflow.update(name=contract.SUBMIT)
    async def submit(self, inp: SubmitInput) -> RequestState:
        """Validate once, however many times the API retries (Idempotency-Key replays)."""
        if inp.body_sha256 != self._input.body_sha256:
            raise ApplicationError(
                "this Idempotency-Key was already used with a different request body",
                type="IdempotencyKeyReused",
            )
        async with self._submit_lock:
            if not self._submitted:
                await self._accept_or_refuse()
                self._submitted = True
        refusal = self._state.refusal
        if refusal is not None:
            raise ApplicationError(refusal.message, type=refusal.type)
        return self._state

    async def _accept_or_refuse(self) -> None:
        record, ou = self._record, self._input.ou
        refusal = None
        if self._input.kind == RequestKind.vend:
            refusal = await validate(self._input.request, self._claims)
        elif self._input.kind == RequestKind.adopt:
            assert self._input.account_id
            refusal, source = await validate_adoption(
                self._input.request,
                self._input.account_id,
                self._claims,
                self._input.adoption_sources,
            )
            if source is not None:
                self._leaving(source)
        elif self._input.kind == RequestKind.update and self._input.account is not None:
            refusal = await validate_update(self._input.request, self._input.account.request)
        if refusal is not None:
            kind, message = refusal
            self._state.refusal = StepError(type=kind, message=message)
            record.event(self._state.requested_by, "create", "refused", message)
            record.set_status(RequestStatus.invalid)
            return
        detail = f"OU {ou.path}"
        if self._state.account_id and self._input.kind != RequestKind.vend:
            detail = f"{self._input.kind.value} of account {self._state.account_id}: {detail}"
        record.event(self._state.requested_by, "create", "accepted", detail)
        record.notify("created")
        if self._state.approvals_required == 0:
            record.event(SYSTEM, "approve", "auto-approved", f"OU {ou.path} needs no approval")
            record.set_status(RequestStatus.provisioning)
        else:
            window = timedelta(seconds=self._approval_window_seconds)
            self._state.approval_expires_at = workflow.now() + window
            record.set_status(RequestStatus.pending_approval)

    def _leaving(self, source: AdoptionSource) -> None:
        """An adoption takes its account out of the OU it is in: it needs the stricter of that
        OU's approvals and its destination's, and at least one (adopting is never automatic,
        or an operator could move an account from under its guardrails alone)."""
        required = max(1, self._state.approvals_required, source.approvals_required)
        self._state.approvals_required = self._state.approvals_remaining = required
        if source.approval_window_seconds is not None:
            self._approval_window_seconds = min(
                self._approval_window_seconds, source.approval_window_seconds
            )
        self._record.event(
            SYSTEM,
            "approvals",
            "set",
            f"leaving {source.path or 'the Root'} for {self._input.ou.path}: "
            f"{required} approval(s)",
        )

    # ------------------------------------------------------------------ 2. approve
    @workflow.update(name=contract.APPROVE)
    def approve(self, inp: ApproveInput) -> RequestState:
        self._state.approvals.append(
            ApprovalRecord(by=inp.by, decision="approved", comment=inp.comment, at=workflow.now())
        )
        self._state.approvals_remaining = max(0, self._state.approvals_remaining - 1)
        self._record.event(inp.by, "approve", "approved", inp.comment)
        if self._state.approvals_remaining == 0:
            self._record.notify("approved")
            self._record.set_status(RequestStatus.provisioning)
        else:
            self._record.touch()
            self._record.remember()  # the queue leaves it out for this approver from now on
        return self._state

    @approve.validator
    def _validate_approve(self, inp: ApproveInput) -> None:
        self._check_decidable(inp.by)
        owners = {self._input.request.owner_email.lower()}
        if self._input.account is not None:  # a change: the account's owner as it stands
            owners.add(self._input.account.request.owner_email.lower())
        if inp.email and inp.email.lower() in owners:
            raise ApplicationError(
                "an account's owner may not approve a request about their own account",
                type="SelfApproval",
            )
        if any(a.by == inp.by for a in self._state.approvals):
            raise ApplicationError(f"{inp.by} has already approved this request", type="Duplicate")

    @workflow.update(name=contract.REJECT)
    def reject(self, inp: RejectInput) -> RequestState:
        self._state.approvals.append(
            ApprovalRecord(by=inp.by, decision="rejected", comment=inp.reason, at=workflow.now())
        )
        self._record.event(inp.by, "reject", "rejected", inp.reason)
        self._record.set_status(RequestStatus.rejected)
        return self._state

    @reject.validator
    def _validate_reject(self, inp: RejectInput) -> None:
        self._check_decidable(inp.by)

    def _check_decidable(self, by: str) -> None:
        if self._state.status != RequestStatus.pending_approval:
            raise ApplicationError(
                f"the request is {self._state.status.value}, not waiting for approval",
                type="InvalidState",
            )
        if by == self._state.requested_by:
            raise ApplicationError(
                "nobody may approve or reject a request they made", type="SelfApproval"
            )

    # ------------------------------------------------------------------ 3. operator actions
    @workflow.update(name=contract.CANCEL)
    def cancel(self, inp: CancelInput) -> RequestState:
        self._operator.decide(inp)
        self._record.event(inp.by, "cancel", "cancelled", inp.reason)
        self._record.set_status(RequestStatus.cancelled)
        return self._state

    @cancel.validator
    def _validate_cancel(self, inp: CancelInput) -> None:
        operator_actions.check_cancel(self._state)

    @workflow.update(name=contract.RETRY)
    async def retry(self, inp: RetryInput) -> RequestState:
        fixes, corrected = self._state.corrections, []
        if inp.account_email is not None:
            await self._claims.replace_email(inp.account_email)
            fixes.account_email = inp.account_email
            corrected.append(f"account_email {inp.account_email}")
        if inp.ou is not None:
            fixes.ou = inp.ou
            if inp.protect_workload_security is not None:
                fixes.protect_workload_security = inp.protect_workload_security
            workflow.upsert_search_attributes([sa.OU.value_set(inp.ou.path)])
            corrected.append(f"OU {inp.ou.path}")
        if corrected:
            self._state.request = self._ctx.inp.request  # show the request as it now runs
        self._operator.decide(inp)
        detail = f"step {inp.step}: {inp.reason or ''}".strip()
        if corrected:
            detail += f" (corrected: {', '.join(corrected)})"
        self._record.event(inp.by, "retry", "accepted", detail)
        self._record.set_status(RequestStatus.provisioning)
        return self._state

    @retry.validator
    def _validate_retry(self, inp: RetryInput) -> None:
        operator_actions.check_retry(self._state, inp)

    @workflow.update(name=contract.SKIP)
    def skip(self, inp: SkipInput) -> RequestState:
        self._operator.decide(inp)
        self._record.event(inp.by, "skip", "accepted", f"step {inp.step}: {inp.reason}")
        self._record.set_status(RequestStatus.provisioning)
        return self._state

    @skip.validator
    def _validate_skip(self, inp: SkipInput) -> None:
        operator_actions.check_skip(self._state, self._ctx.inp, inp)

    # ------------------------------------------------------------------ what people see
    @workflow.query(name=contract.GET_STATE)
    def get_state(self) -> RequestState:
        return self._state

    @workflow.query(name=contract.GET_EVENTS)
    def get_events(self) -> list[AuditEvent]:
        return self._record.events

    @workflow.signal(name=account_contract.TURN_SIGNAL)
    def account_turn(self, account: ManagedAccount) -> None:
        """The account's workflow: this change's turn has come."""
        if self._turn is not None:
            self._turn.on_turn(account)

    @workflow.signal(name=CLOSE_NOTICE)
    def close_quota_notice(self, notice: CloseNotice) -> None:
        self._close_quota.on_notice(notice, self._ctx.show)

    @workflow.signal(name=BATCH_NOTICE)
    def stack_set_batch_notice(self, notice: BatchNotice) -> None:
        """The StackSet batcher's answer: this account's instances deployed, failed, or not."""
        self._batches.on_notice(notice)

    @workflow.signal(name=NOTICE_SIGNAL)
    def control_tower_notice(self, notice: Notice) -> None:
        """The coordinator's answers: queue position, a slot granted, an operation's outcome."""
        self._slot.on_notice(notice)
