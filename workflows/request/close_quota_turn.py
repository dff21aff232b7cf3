"""This request's side of the close quota (``workflows/close_quota.py``): its place in line,
and the notices that move it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.close_quota import (
        CLOSE_QUOTA_ID,
        CloseNotice,
        CloseOutcome,
        CloseQuotaQueue,
        CloseTurn,
    )

Show = Callable[[str, int | None], None]  # what the running step says it is doing


class CloseQuotaTurn:
    """This request's place in the close quota's line, and the notices that move it."""

    def __init__(self, request_id: str) -> None:
        self._request_id = request_id
        self._granted = False
        self.position: int | None = None
        self.next_free_at: datetime | None = None

    def _queue(self) -> workflow.ExternalWorkflowHandle[CloseQuotaQueue]:
        return workflow.get_external_workflow_handle_for(CloseQuotaQueue.run, CLOSE_QUOTA_ID)

    async def wait(self, show: Show, limit: int) -> None:
        self._granted = False
        turn = CloseTurn(
            request_id=self._request_id, workflow_id=workflow.info().workflow_id, limit=limit
        )
        await self._queue().signal(CloseQuotaQueue.ask, turn)
        show("waiting for a place in the organization's close quota", None)
        await workflow.wait_condition(lambda: self._granted)
        show("closing the account", None)

    async def done(self, outcome: str) -> None:
        await self._queue().signal(
            CloseQuotaQueue.done, CloseOutcome(request_id=self._request_id, outcome=outcome)
        )

    def on_notice(self, notice: CloseNotice, show: Show) -> None:
        if notice.kind == "granted":
            self._granted = True
            self.position = None
        elif not self._granted:
            self.position, self.next_free_at = notice.position, notice.next_free_at
            when = notice.next_free_at.isoformat() if notice.next_free_at else "unknown"
            show(
                f"queued for the close quota (position {notice.position}; the window next "
                f"frees a place at {when})",
                notice.position,
            )
