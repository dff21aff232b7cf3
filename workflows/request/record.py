"""The request's record: its state, its audit trail, and what every change of them sets off.

One object owns both so that a status change always does the same four things (state, metric,
search attributes, the person's notification) and no code path can do three of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NoticeBatch, Notification, NotificationActivities
    from common import search_attributes as sa
    from common import vending_contract as contract
    from common.models import (
        AuditEvent,
        RequestState,
        RequestStatus,
        StepState,
        StepStatus,
        VendingInput,
    )
    from common.pricing import summary as cost_summary
    from common.step_registry import step_names
    from workflows.request import metrics

SYSTEM = "system"

# Status changes that matter to a person, and the notification each sends.
NOTIFY_ON = {
    RequestStatus.pending_approval: "needs_approval",
    RequestStatus.rejected: "rejected",
    RequestStatus.expired: "expired",
    RequestStatus.waiting_for_operator: "waiting_for_operator",
    RequestStatus.completed: "completed",
    RequestStatus.cancelled: "cancelled",
}


class RequestRecord:
    def __init__(self, inp: VendingInput, current: Callable[[], VendingInput]) -> None:
        self.state = RequestState(
            id=inp.request_id,
            status=RequestStatus.validating,
            request=inp.request,
            requested_by=inp.requested_by.sub,
            created_at=inp.created_at,
            updated_at=inp.created_at,
            approvals_required=inp.ou.approvals_required,
            approvals_remaining=inp.ou.approvals_required,
            steps=[StepState(name=name) for name in step_names(inp.kind)],
            cost_estimate=inp.cost_estimate,
            kind=inp.kind,
            plan=inp.plan,
        )
        if inp.account_id is not None:  # an adoption: the account exists already
            self.state.account_id = inp.account_id
        if inp.account is not None:  # a change request: the account it changes, as it is
            self.state.account_id = inp.account.account_id
            self.state.organizational_unit_id = inp.account.organizational_unit_id
            self.state.workload_security_connector_id = inp.account.workload_security_connector_id
            self.state.billing_registration_id = inp.account.billing_registration_id
        self.events: list[AuditEvent] = []
        self.current_step: str | None = None
        self._current = current  # the request as corrected so far, for notifications
        self._notifications: list[_Pending] = []
        self._batch: list[Notification] = []  # notices of the running workflow task, unsent

    def step(self, name: str) -> StepState:
        return next(s for s in self.state.steps if s.name == name)

    def failed_step(self) -> StepState | None:
        return next((s for s in self.state.steps if s.status == StepStatus.failed), None)

    def event(self, actor: str, action: str, outcome: str, detail: str | None) -> None:
        self.events.append(
            AuditEvent(
                at=workflow.now(), actor=actor, action=action, outcome=outcome, detail=detail
            )
        )

    def set_status(self, status: RequestStatus) -> None:
        self.state.status = status
        metrics.request_status(status.value)
        self.touch()
        self.remember()
        event = NOTIFY_ON.get(status)
        if event is not None:
            self.notify(event)

    def remember(self) -> None:
        """Record the state in the memo (encrypted like any payload): what the API answers while
        no worker can, and what the approvers' queue reads, so listing it queries no worker."""
        workflow.upsert_memo(
            {
                contract.STATE_MEMO: self.state,
                contract.EVENTS_MEMO: self.events[-contract.MEMO_EVENTS :],
            }
        )

    def touch(self, step: str | None = None) -> None:
        """Mark the state changed, and tell visibility what the lists filter on."""
        self.state.updated_at = workflow.now()
        updates = [sa.STATUS.value_set(self.state.status.value)]
        if step is not None:
            updates.append(sa.STEP.value_set(step))
        if self.state.account_id:
            updates.append(sa.ACCOUNT_ID.value_set(self.state.account_id))
        workflow.upsert_search_attributes(updates)

    def show(self, text: str, position: int | None = None) -> None:
        """Say what the running step is doing now (e.g. its place in a queue)."""
        if self.current_step is None:
            return
        step = self.step(self.current_step)
        step.detail, step.queue_position = text, position
        self.state.updated_at = workflow.now()

    def notify(self, event: str) -> None:
        """Best effort and in the background: a notification never holds up or parks a request."""
        inp, state = self._current(), self.state
        failed = self.failed_step() if event == "waiting_for_operator" else None
        note = Notification(
            event=event,
            request_id=inp.request_id,
            account_name=inp.request.account_name,
            organizational_unit=inp.ou.path,
            requested_by=state.requested_by,
            status=state.status.value,
            at=workflow.now(),
            step=failed.name if failed else None,
            error=f"{failed.error.type}: {failed.error.message}"
            if failed and failed.error
            else None,
            requester_email=inp.requested_by.email,
            owner_email=inp.request.owner_email,
            kind=inp.kind.value,
            cost=cost_summary(state.cost_estimate)
            if state.cost_estimate is not None and event == "needs_approval"
            else None,
        )
        if event not in LAST_WORDS:
            # Held until the code running now yields, so that every notice this workflow task
            # decides goes out in one activity (``deliver``).
            if not self._batch:
                asyncio.get_running_loop().call_soon(self._send_batch)
            self._batch.append(note)
            return
        for channel in (NotificationActivities.notify, NotificationActivities.notify_email):
            handle = workflow.start_local_activity_method(
                channel,
                note,
                start_to_close_timeout=timedelta(seconds=5),
                retry_policy=RetryPolicy(maximum_attempts=2),
            )
            self._notifications.append(_Pending(handle, channel, note))

    def _send_batch(self) -> None:
        if not self._batch:
            return
        batch, self._batch = NoticeBatch(notes=self._batch), []
        handle = workflow.start_activity_method(
            NotificationActivities.deliver,
            batch,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=_RETRIES,
        )
        self._notifications.append(_Pending(handle))

    async def notifications_sent(self) -> None:
        """Let the last notifications go out before the workflow closes. A last word sent in a
        local activity that failed is sent again as an ordinary activity, with its retries."""
        self._send_batch()
        for pending in self._notifications:
            try:
                await pending.handle
            except ActivityError:
                if pending.channel is not None:
                    with contextlib.suppress(ActivityError):
                        await workflow.start_activity_method(
                            pending.channel,
                            pending.note,
                            start_to_close_timeout=timedelta(seconds=30),
                            retry_policy=_RETRIES,
                        )


# A request's last words: the workflow closes right after them. Sent as local activities, inside
# the workflow task that decided them, they let that same task close the workflow instead of
# waiting one more task for two activities' completions (patch ``last-notices-local``).
LAST_WORDS = frozenset({"completed", "cancelled", "rejected", "expired"})


_RETRIES = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=30))


@dataclass
class _Pending:
    handle: Awaitable[Any]
    channel: Callable[..., Any] | None = None  # a last word's: sent again by itself if it failed
    note: Notification | None = None
