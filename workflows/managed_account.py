"""ManagedAccount: one long-lived workflow per managed account, the single writer of its record.

A vend request that completes starts it (``account-<account_id>``); change requests (a
decommission today) ask it for their turn and report what they did when they close. It runs one
change at a time and queues the rest in arrival order, so two changes can never race on the
same account; its record is what ``GET /v1/accounts/{id}`` shows, and its events, with every
request's own trail folded in, are the account's whole history. It continues as new when
Temporal suggests it, carrying the record and the trail, so an account may live for years.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.notifications import Notification, NotificationActivities
    from common import account_contract as contract
    from common import drift
    from common import search_attributes as sa
    from common.managed_account_input import ManagedAccountInput
    from common.models import (
        AccountEvent,
        AccountStatus,
        AuditEvent,
        BaselineRecord,
        ChangeFinished,
        ChangeTurn,
        DriftItem,
        EventWindow,
        ManagedAccount,
        RequestKind,
        RequestStatus,
    )
    from common.rollouts import RolloutApplied

__all__ = ["ManagedAccountInput", "ManagedAccountWorkflow", "first_events"]

SYSTEM = "system"


def _status_during(kind: RequestKind) -> AccountStatus:
    if kind == RequestKind.decommission:
        return AccountStatus.decommissioning
    return AccountStatus.changing


@workflow.defn(name=contract.WORKFLOW, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class ManagedAccountWorkflow:
    @workflow.init
    def __init__(self, inp: ManagedAccountInput) -> None:
        self._account = inp.account
        self._events = inp.events
        self._dropped = inp.events_dropped
        self._turns = inp.turns  # the head runs (``current_change``), the rest wait

    @workflow.run
    async def run(self, inp: ManagedAccountInput) -> ManagedAccount:
        self._publish()
        while True:
            await workflow.wait_condition(
                lambda: workflow.info().is_continue_as_new_suggested() or self._finished()
            )
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._finished():
                return self._account
            workflow.continue_as_new(
                ManagedAccountInput(
                    account=self._account,
                    events=self._events,
                    events_dropped=self._dropped,
                    turns=self._turns,
                )
            )

    def _finished(self) -> bool:
        """A closed account with nothing queued has nothing more to do; its record stays
        readable (a closed workflow still answers queries and lists)."""
        return self._account.status == AccountStatus.closed and not self._turns

    # ------------------------------------------------------------------ changes
    @workflow.signal(name=contract.CHANGE_REQUESTED)
    async def change_requested(self, turn: ChangeTurn) -> None:
        if any(t.request_id == turn.request_id for t in self._turns):
            return  # the same request asking again (a replayed signal): already in line
        self._turns.append(turn)
        self._listed(turn.request_id)
        ahead = len(self._turns) - 1
        detail = f"{turn.kind.value} queued behind {ahead} change(s)" if ahead else turn.kind.value
        self._event(SYSTEM, "change", "queued" if ahead else "started", detail, turn.request_id)
        await self._grant_head()

    @workflow.signal(name=contract.CHANGE_FINISHED)
    async def change_finished(self, done: ChangeFinished) -> None:
        for event in done.events:
            self._append(AccountEvent(**event.model_dump(), request_id=done.request_id))
        self._listed(done.request_id)
        was_head = bool(self._turns) and self._turns[0].request_id == done.request_id
        self._turns = [t for t in self._turns if t.request_id != done.request_id]
        if done.account is not None:  # completed, or cancelled and undone: as it now is
            keep = self._account
            self._account = done.account.model_copy(
                update={
                    "requests": keep.requests,
                    "managed_since": keep.managed_since,
                    "drift": keep.drift,  # the checks' finding, not the request's copy of it
                    "last_checked_at": keep.last_checked_at,
                }
            )
        if done.kind == RequestKind.decommission and done.status == RequestStatus.completed:
            self._account.status = AccountStatus.closed
        self._event(SYSTEM, "change", done.status.value, done.kind.value, done.request_id)
        if was_head:
            await self._grant_head()
        else:
            self._publish()
        closed = self._account.status == AccountStatus.closed
        if self._account.drift and done.status == RequestStatus.completed and not closed:
            await self._check_again(done.request_id)

    async def _check_again(self, request_id: str) -> None:
        """A change (a repair, say) has ended on a drifted account: look at it again now rather
        than show the drift it may have put back until tomorrow's check."""
        await workflow.start_child_workflow(
            drift.WORKFLOW,
            drift.DriftCheckInput(account_ids=[self._account.account_id]),
            id=f"{drift.ID_PREFIX}after-{request_id}",
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )

    async def _grant_head(self) -> None:
        """Give the turn to the first change in line, if it does not already have it."""
        head = self._turns[0] if self._turns else None
        if head is None:
            self._account.current_change = None
            if self._account.status != AccountStatus.closed:
                self._account.status = AccountStatus.active
        elif self._account.current_change != head.request_id:
            self._account.current_change = head.request_id
            self._account.status = _status_during(head.kind)
            await workflow.get_external_workflow_handle(head.workflow_id).signal(
                contract.TURN_SIGNAL, self._account
            )
        self._account.queued_changes = [t.request_id for t in self._turns[1:]]
        self._publish()

    # ------------------------------------------------------------------ rollouts
    @workflow.signal(name=contract.ROLLOUT_APPLIED)
    def rollout_applied(self, note: RolloutApplied) -> None:
        """A rollout changed the account: a baseline its OU gained (the record lists it, so the
        drift checks look at it), or another Workload Security policy (the record's request
        takes it, so a later update or repair keeps it rather than put the old one back)."""
        account = self._account
        if note.policy is not None:
            if account.workload_security_policy == note.policy:
                return  # known already (or a replayed signal)
            account.workload_security_policy = note.policy
            account.request.workload_security.policy = note.policy
            self._event(note.by, "workload_security", "policy", note.policy, None)
        elif note.stack_set is not None:
            known = next((b for b in account.baselines if b.stack_set == note.stack_set), None)
            if known is None:
                account.baselines.append(BaselineRecord(stack_set=note.stack_set, status="CURRENT"))
            elif known.status == "CURRENT":
                return
            else:
                known.status = "CURRENT"  # recorded as not deployed at vend time
            self._event(note.by, "baseline", "deployed", f"{note.stack_set} by rollout", None)
        self._publish()

    # ------------------------------------------------------------------ drift
    @workflow.signal(name=contract.DRIFT_CHECKED)
    async def drift_checked(self, report: drift.DriftReport) -> None:
        """Keep what the check found; tell the operators of what is new, once."""
        if self._account.last_checked_at and report.checked_at < self._account.last_checked_at:
            return  # an older check's report arriving late
        self._account.drift, new = drift.merged(self._account.drift, report)
        self._account.last_checked_at = report.checked_at
        for item in new:
            detail = f"{item.what}: expected {item.expected}, found {item.found}"
            self._event(SYSTEM, "drift", "found", detail, None)
        workflow.upsert_search_attributes(
            [sa.DRIFT.value_set(drift.DRIFTED if self._account.drift else drift.IN_SYNC)]
        )
        self._publish()
        if new:
            await self._notify_drift(report, new)

    async def _notify_drift(self, report: drift.DriftReport, new: list[DriftItem]) -> None:
        account = self._account
        note = Notification(
            event="drift_detected",
            request_id=f"{report.check_id}:{account.account_id}",  # one delivery per account
            account_name=account.request.account_name,
            organizational_unit=account.request.organizational_unit,
            requested_by=account.requested_by,
            status=account.status.value,
            at=report.checked_at,
            step=", ".join(sorted({i.kind for i in new})),
            error="; ".join(f"{i.what}: expected {i.expected}, found {i.found}" for i in new),
            owner_email=account.request.owner_email,
            kind="drift",
        )
        for channel in (NotificationActivities.notify, NotificationActivities.notify_email):
            with contextlib.suppress(ActivityError):  # best effort: the drift is recorded
                await workflow.execute_activity_method(
                    channel,
                    note,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(
                        maximum_attempts=5, maximum_interval=timedelta(seconds=30)
                    ),
                )

    # ------------------------------------------------------------------ the record
    def _listed(self, request_id: str) -> None:
        """Name the request on the record, newest first, keeping the newest REQUEST_WINDOW
        (visibility finds every request of the account by its AccountId)."""
        requests = self._account.requests
        if request_id not in requests:
            requests.insert(0, request_id)
            del requests[contract.REQUEST_WINDOW :]

    def _append(self, event: AccountEvent) -> None:
        """Keep the trail bounded however many changes the account sees: the newest
        EVENT_WINDOW lines, each detail cut at EVENT_DETAIL_CHARS (the request keeps its own
        whole trail). Unbounded, enough changes would carry the state past Temporal's payload
        limit through continue-as-new and wedge the account."""
        limit = contract.EVENT_DETAIL_CHARS
        if event.detail is not None and len(event.detail) > limit:
            event = event.model_copy(update={"detail": event.detail[: limit - 1] + "…"})
        self._events.append(event)
        extra = len(self._events) - contract.EVENT_WINDOW
        if extra > 0:
            del self._events[:extra]
            self._dropped += extra

    def _event(
        self, actor: str, action: str, outcome: str, detail: str | None, request_id: str | None
    ) -> None:
        self._append(
            AccountEvent(
                at=workflow.now(),
                actor=actor,
                action=action,
                outcome=outcome,
                detail=detail,
                request_id=request_id,
            )
        )

    def _publish(self) -> None:
        """Tell visibility what the lists filter on, and record the account for stale reads."""
        account = self._account
        account.updated_at = workflow.now()
        updates = [
            sa.STATUS.value_set(account.status.value),
            sa.OU.value_set(account.request.organizational_unit),
            sa.ACCOUNT_ID.value_set(account.account_id),
            sa.REQUESTER.value_set(account.requested_by),
        ]
        if account.owner_digest:  # keyed by the API; the workflow holds no key to make one
            updates.append(sa.OWNER.value_set(account.owner_digest))
        workflow.upsert_search_attributes(updates)
        workflow.upsert_memo(
            {
                contract.STATE_MEMO: account,
                contract.EVENTS_MEMO: EventWindow(
                    items=self._events[-contract.MEMO_EVENTS :],
                    first=self._dropped + max(0, len(self._events) - contract.MEMO_EVENTS),
                ),
                "account_name": account.request.account_name,
                "organizational_unit": account.request.organizational_unit,
                "environment": account.request.environment.value,
            }
        )

    @workflow.query(name=contract.GET_ACCOUNT)
    def get_account(self) -> ManagedAccount:
        return self._account

    @workflow.query(name=contract.GET_EVENTS)
    def get_events(self) -> EventWindow:
        return EventWindow(items=self._events, first=self._dropped)


def first_events(vend_events: list[AuditEvent], request_id: str) -> list[AccountEvent]:
    """The vend request's trail, as the first lines of the account's."""
    return [AccountEvent(**e.model_dump(), request_id=request_id) for e in vend_events]
